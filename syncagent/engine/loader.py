"""Load and check the six mapping files; compile them into fast, immutable rules.

Every problem is collected (YAML syntax, types, unknown keys and operators, bad regexes,
duplicate names, broken references, thresholds no one can reach) and raised at once as a
:class:`MappingError`, each problem naming file, line and the fix. Reading and compiling are
here; ``validation.py`` turns pydantic errors into problems, ``checks.py`` checks across
entries and files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from syncagent.engine.checks import check_all
from syncagent.engine.grading import CompiledGrading, compile_grading
from syncagent.engine.lifecycle import CompiledLifecycle, compile_lifecycle
from syncagent.engine.mapping import CompiledField, compile_field
from syncagent.engine.nurture import CompiledNurture, compile_nurture
from syncagent.engine.problems import MappingError, Problem
from syncagent.engine.routing import CompiledRouting, compile_routing
from syncagent.engine.rule_files import (
    FILES,
    FieldsFile,
    GradingFile,
    LifecycleFile,
    NurtureFile,
    RoutingFile,
    ScoringFile,
)
from syncagent.engine.scoring import CompiledScoring, compile_scoring
from syncagent.engine.validation import validate
from syncagent.engine.yamlload import LoadedYaml, load_yaml

MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class CompiledRules:
    """The six files compiled for the hot path: matchers built, regexes compiled, ranks set."""

    fields: tuple[CompiledField, ...]
    grading: CompiledGrading
    scoring: CompiledScoring
    lifecycle: CompiledLifecycle
    routing: CompiledRouting
    nurture: CompiledNurture


@dataclass(frozen=True)
class Rules:
    """Validated mapping files (``fields`` … ``nurture``, as written) plus their compiled form."""

    source: str
    fields: FieldsFile
    grading: GradingFile
    scoring: ScoringFile
    lifecycle: LifecycleFile
    routing: RoutingFile
    nurture: NurtureFile
    compiled: CompiledRules
    fingerprint: str = ""   # sha256 of the six files: changes when any rule text changes


def load_rules(mappings_dir: Path | str) -> Rules:
    """Read, validate and compile ``mappings_dir``; raise MappingError listing every problem."""
    directory = Path(mappings_dir)
    problems: list[Problem] = []
    loaded: dict[str, LoadedYaml] = {}
    models: dict[str, BaseModel] = {}
    digest = hashlib.sha256()
    if not directory.is_dir():
        raise MappingError([Problem(str(directory), 0, "no such directory; pass the folder "
                                    "holding fields.yaml, grading.yaml, ... with --mappings")])
    for name, model in FILES.items():
        path = directory / name
        file_label = str(path)
        text, problem = _read(path)
        if problem is not None:
            problems.append(problem)
            continue
        assert text is not None
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
        doc, yaml_problems = load_yaml(text, file_label)
        if yaml_problems:
            problems.extend(yaml_problems)
            continue
        loaded[name] = doc
        parsed, model_problems = validate(doc, model)
        problems.extend(model_problems)
        if parsed is not None:
            models[name] = parsed
    problems.extend(check_all(loaded, models))
    if problems:
        raise MappingError(problems)
    fields_file: FieldsFile = models["fields.yaml"]  # type: ignore[assignment]
    lines = [loaded["fields.yaml"].line_of(("fields", i)) for i in range(len(fields_file.fields))]
    return _compile(str(directory), models, digest.hexdigest(), lines)


def _read(path: Path) -> tuple[str | None, Problem | None]:
    if not path.is_file():
        return None, Problem(str(path), 1, f"file is missing; copy mappings/{path.name} from "
                             "the shipped defaults and edit it")
    try:
        data = path.read_bytes()
    except OSError as error:
        return None, Problem(str(path), 1, f"cannot read the file ({error.strerror}); check "
                                           "its permissions")
    if len(data) > MAX_FILE_BYTES:
        return None, Problem(str(path), 1, "file is larger than 1 MB; mapping files are short")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return None, Problem(str(path), line, "not UTF-8 text; save the file as UTF-8")


def _compile(source: str, m: dict[str, Any], fingerprint: str, lines: list[int]) -> Rules:
    fields, grading, scoring = m["fields.yaml"], m["grading.yaml"], m["scoring.yaml"]
    lifecycle, routing, nurture = m["lifecycle.yaml"], m["routing.yaml"], m["nurture.yaml"]
    compiled = CompiledRules(
        tuple(compile_field(f, line) for f, line in zip(fields.fields, lines, strict=True)),
        compile_grading(grading), compile_scoring(scoring), compile_lifecycle(lifecycle),
        compile_routing(routing), compile_nurture(nurture))
    return Rules(source, fields, grading, scoring, lifecycle, routing, nurture, compiled,
                 fingerprint)
