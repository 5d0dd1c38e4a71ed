"""Building frozen slotted dataclasses without their __init__: the engine's inputs, made
per person and per activity (engine/model.py `build_activity`, `build_person`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

_Frozen = TypeVar("_Frozen")
_UNSET = object()   # a builder's argument left out, where the class calls a default factory


def builder(cls: type[_Frozen]) -> Callable[..., _Frozen]:
    """``cls(...)`` for a frozen slotted dataclass (fields by position or name),
    without its __init__, which sets each field through object.__setattr__ (frozen: its own
    setter refuses); this sets each slot through the slot's descriptor, as that call ends up
    doing, at less than half the cost (an Activity: ~1.0 -> ~0.45 µs, measured). A field
    left out takes its default as the class gives it (a field added with a default later
    leaves every call working). Only for a class with no __post_init__ and every field in
    __init__ (tests/engine/test_eval_model.py compares what both build)."""
    names = [f.name for f in fields(cls)]   # type: ignore[arg-type]
    # the decorator's arguments as dataclasses records them (CPython 3.11's dataclasses: not
    # documented; tests/engine/test_eval_model.py fails if a mutable class got past this)
    params = cls.__dataclass_params__   # type: ignore[attr-defined]
    if not (params.frozen and "__slots__" in cls.__dict__ and not hasattr(cls, "__post_init__")
            and all(f.init for f in fields(cls))   # type: ignore[arg-type]
            and not {"new", "cls", "obj"} & set(names)):
        raise TypeError(f"{cls.__name__} is not built alike without its __init__")
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls, "unset": _UNSET}
    scope |= {f"set_{name}": getattr(cls, name).__set__ for name in names}
    params_text, body = [], ""
    for f in fields(cls):   # type: ignore[arg-type]
        if f.default is not MISSING:
            scope[f"default_{f.name}"] = f.default
            params_text.append(f"{f.name}=default_{f.name}")
        elif f.default_factory is not MISSING:
            scope[f"factory_{f.name}"] = f.default_factory
            params_text.append(f"{f.name}=unset")
            body += f"    if {f.name} is unset:\n        {f.name} = factory_{f.name}()\n"
        else:
            params_text.append(f.name)
    body += "".join(f"    set_{name}(obj, {name})\n" for name in names)
    exec(f"def build({', '.join(params_text)}):\n    obj = new(cls)\n{body}    return obj\n",
         scope)
    built: Callable[..., _Frozen] = scope["build"]
    return built
