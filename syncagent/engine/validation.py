"""A mapping file's document against its pydantic model: every error becomes a Problem that
names the file, the line and the fix (unknown keys get a did-you-mean, literals their options).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from syncagent.engine.problems import Problem, did_you_mean
from syncagent.engine.yamlload import LoadedYaml, PathKey


def validate(doc: LoadedYaml, model: type[BaseModel]) -> tuple[BaseModel | None, list[Problem]]:
    """The parsed model, or None and one problem per pydantic error."""
    if doc.data is None:
        return None, [Problem(doc.file, 1, "file is empty; copy the shipped default and edit it")]
    if not isinstance(doc.data, dict):
        return None, [Problem(doc.file, 1, "the file must be a mapping of keys such as "
                              f"'version:' (found a {type(doc.data).__name__})")]
    try:
        return model.model_validate(doc.data), []
    except ValidationError as error:
        return None, [_problem_from(doc, model, e) for e in error.errors()]
    except (RecursionError, TypeError, ValueError) as error:
        return None, [Problem(doc.file, 1, f"cannot read this file's structure: {error}")]


def _walk(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """The part of a pydantic error location that exists in the data (drops union tags)."""
    path: list[str | int] = []
    current = data
    for segment in loc:
        in_dict = isinstance(current, dict) and segment in current
        in_list = isinstance(current, list) and isinstance(segment, int) \
            and 0 <= segment < len(current)
        if in_dict or in_list:
            current = current[segment]
            path.append(segment)
    return tuple(path)


def _model_at(model: Any, loc: Iterable[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc``."""
    current: Any = model
    for segment in loc:
        current = _unwrap(current)
        if isinstance(segment, int):
            continue  # list items: _unwrap already stepped into the item type
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(segment))
            if info is None:
                return None
            current = info.annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    for _ in range(8):
        origin = typing.get_origin(tp)
        if origin is typing.Annotated or origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(tp)
                      if isinstance(a, type) and issubclass(a, BaseModel)]
            if not models:
                return tp
            tp = models[0]
        else:
            return tp
    return tp


def _allowed_literals(expected: str) -> list[str]:
    return re.findall(r"'((?:[^'\\]|\\.)*)'", expected)


def _problem_from(doc: LoadedYaml, model: type[BaseModel], error: Any) -> Problem:
    loc = tuple(error.get("loc", ()))
    path = _walk(doc.data, loc)
    kind = error.get("type", "")
    key = next((str(s) for s in reversed(loc) if isinstance(s, str)), "")
    given = error.get("input")
    shown = given if isinstance(given, str | int | float | bool) or given is None else \
        type(given).__name__
    if kind == "extra_forbidden":
        owner = _model_at(model, path[:-1])
        allowed = list(owner.model_fields) if owner else []
        message = f"unknown key '{key}'{did_you_mean(key, allowed)}; remove or rename it"
    elif kind == "literal_error" and not isinstance(given, str | int | float | bool):
        allowed = _allowed_literals(str(error.get("ctx", {}).get("expected", "")))
        options = ", ".join(allowed[:13])
        message = f"'{key}' must be one value, one of: {options} (found a {shown})"
    elif kind == "literal_error":
        allowed = _allowed_literals(str(error.get("ctx", {}).get("expected", "")))
        what = "" if key == "op" else f" for '{key}'"
        noun = "operator" if key == "op" else "value"
        message = f"unknown {noun} '{shown}'{what}{did_you_mean(str(shown), allowed)}"
        if key == "version":
            message = f"unknown version '{shown}'; this agent reads version: 1"
    elif kind == "missing":
        message = f"missing required key '{key}'; add it"
    elif kind in ("value_error", "assertion_error"):
        message = str(error.get("msg", "")).removeprefix("Value error, ")
    elif kind == "model_type" or kind == "dict_type":
        message = f"'{key or 'file'}' must be a mapping of keys (found {shown})"
    elif kind == "list_type":
        message = f"'{key}' must be a list (items starting with '- '), found {shown!r}"
    elif kind == "too_short":
        message = f"'{key}' must not be empty; add at least one entry"
    else:
        message = f"'{key}': {error.get('msg', 'invalid')} (found {shown!r})"
    return doc.problem(path, message)
