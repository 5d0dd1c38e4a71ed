"""YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python data from them ourselves so
each path (``("rules", 3, "when", 0, "op")``) maps to its 1-based line. Duplicate keys, which
PyYAML would silently overwrite, are reported as problems. Only the safe tag set is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from syncagent.engine.problems import Problem

PathKey = tuple[str | int, ...]

# Aliases can expand exponentially ("billion laughs"); mapping files are small.
_MAX_NODES = 200_000


@dataclass
class LoadedYaml:
    """A file's data plus the line of each path in it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        """Line of the deepest known prefix of ``path`` (the parent when a key is missing)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), message)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, loaded: LoadedYaml) -> None:
        self.loader = loader
        self.loaded = loaded
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooBig(node)
        self.loaded.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self.active:
            raise _Recursive(node)
        if isinstance(node, yaml.MappingNode):
            self.active.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self.active.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.active.add(id(node))
            try:
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.loaded.file, line,
                                             "a key must be a plain word, not a list or mapping"))
                continue
            key = self.loader.construct_object(key_node)
            if key is None or isinstance(key, bool | float):
                key = key_node.value  # `yes:` or `1.0:` as a key means the word itself
            if key in result:
                self.problems.append(Problem(
                    self.loaded.file, line,
                    f"duplicate key '{key}' (first at line {self.loaded.lines[(*path, key)]}); "
                    "remove one of them"))
                continue
            self.loaded.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        return result


class _TooBig(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class _Recursive(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def load_yaml(text: str, file: str) -> tuple[LoadedYaml, list[Problem]]:
    """Parse one document; syntax errors and duplicate keys come back as problems."""
    loaded = LoadedYaml(file=file, data=None)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return loaded, []
            builder = _Builder(loader, loaded)
            loaded.data = builder.build(node, ())
            return loaded, builder.problems
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = error.problem or error.context or "invalid YAML"
        where = ""
        if error.context and error.context_mark is not None and error.problem:
            where = f", {error.context} started at line {error.context_mark.line + 1}"
        return loaded, [Problem(file, line, f"YAML syntax error: {what}{where} "
                                            "(check the indentation, colons and quotes here)")]
    except yaml.YAMLError as error:
        return loaded, [Problem(file, 1, f"YAML error: {error}")]
    except _TooBig as error:
        return loaded, [Problem(file, error.node.start_mark.line + 1,
                                "the file expands to too many values (aliases?); "
                                "write the values out instead")]
    except _Recursive as error:
        return loaded, [Problem(file, error.node.start_mark.line + 1,
                                "an alias refers to itself; remove the recursive '*' alias")]
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # PyYAML's constructors raise these for e.g. out-of-range timestamps.
        return loaded, [Problem(file, 1, f"YAML value error: {error}")]
