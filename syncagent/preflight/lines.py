"""Where each value of the mapping files is: file and line, for errors an admin can act on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from syncagent.engine.yamlload import LoadedYaml, PathKey, load_yaml


@dataclass(frozen=True)
class Where:
    """A place in a mapping file."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class MappingLines:
    """The line of each path in the mapping files of one folder (read once)."""

    def __init__(self, docs: dict[str, LoadedYaml]) -> None:
        self.docs = docs

    @classmethod
    def read(cls, folder: Path) -> MappingLines:
        """Lines of the files in ``folder``; a file that cannot be read gives no lines (the
        loader has already reported it)."""
        docs: dict[str, LoadedYaml] = {}
        for path in sorted(Path(folder).glob("*.yaml")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            doc, problems = load_yaml(text, str(path))
            if not problems:
                docs[path.name] = doc
        return cls(docs)

    def at(self, file: str, path: PathKey) -> Where | None:
        doc = self.docs.get(file)
        return Where(doc.file, doc.line_of(path)) if doc is not None else None

    def find(self, file: str, path: PathKey, value: str) -> Where | None:
        """The line of ``value`` in the list at ``path`` (the list's line when absent)."""
        doc = self.docs.get(file)
        if doc is None:
            return None
        node = doc.data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list) and value in node:
            return Where(doc.file, doc.line_of((*path, node.index(value))))
        return Where(doc.file, doc.line_of(path))
