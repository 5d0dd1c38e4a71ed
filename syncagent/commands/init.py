"""`syncagent init [DIR]`: a working layout for a new install, without a checkout.

It writes a commented `syncagent.yaml` generated from the settings model (so it lists every
setting and its default, and cannot drift from the code), the shipped mapping files with their
JSON Schemas, a `.env.example` naming the secret variables, and `NEXT-STEPS.md`. It never
overwrites a file unless told to with `--force`.
"""

from __future__ import annotations

import textwrap
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer
import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from syncagent import __version__
from syncagent.defaults import packaged_mappings_dir
from syncagent.errors import ConfigError
from syncagent.settings import ENV_PREFIX, Settings

# Settings that `init` sets on purpose (uncommented); every other one is its default, shown
# commented out. The mappings folder is the one init writes next to the config file.
CHOSEN = {"mappings_dir": "mappings"}
MAPPING_FILES = ("*.yaml", "README.md", "schema/*.json", "examples/*.json")
WIDTH = 98


@dataclass(frozen=True)
class _Field:
    env: str
    info: FieldInfo


# ------------------------------------------------------------------ syncagent.yaml
def settings_yaml() -> str:
    """The commented config file: every setting of `Settings`, its default and its variable."""
    header = (
        f"# syncagent.yaml, written by `syncagent init` (syncagent {__version__}).\n"
        "# Every setting is listed with its default. A line `# name: value` is a default left\n"
        "# commented out: remove the `# ` (and that of its section) to change it.\n"
        f"# Environment variables win over this file: {ENV_PREFIX}<NAME>, nested with `__`,\n"
        f"# e.g. {ENV_PREFIX}SALESFORCE__USERNAME. Secrets belong in the environment (see\n"
        "# .env.example), never in this file. Relative paths are relative to the directory\n"
        "# you run syncagent from.\n"
    )
    return header + "\n".join(_model_lines(Settings, ENV_PREFIX, depth=0)) + "\n"


def _model_lines(model: type[BaseModel], env_prefix: str, depth: int) -> list[str]:
    lines: list[str] = []
    for name, info in model.model_fields.items():
        field = _Field(env=f"{env_prefix}{name.upper()}", info=info)
        lines.append("")
        nested = _nested_model(info.annotation)
        if nested is not None:
            lines += _comment(_describe(field, nested=True), depth)
            lines.append("# " + "  " * depth + f"{name}:")
            lines += _model_lines(nested, field.env + "__", depth + 1)
            continue
        lines += _comment(_describe(field), depth)
        if depth == 0 and name in CHOSEN:
            lines.append(f"{name}: {_render(CHOSEN[name])}")
        else:
            lines.append("# " + "  " * depth + f"{name}: {_render(_default(info))}")
    return lines


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _comment(text: str, depth: int) -> list[str]:
    indent = "# " + "  " * depth
    return [indent + line for line in textwrap.wrap(text, WIDTH - len(indent))]


def _describe(field: _Field, nested: bool = False) -> str:
    info = field.info
    parts: list[str] = []
    if info.description:
        parts.append(info.description[0].upper() + info.description[1:].rstrip(".") + ".")
    if nested:
        parts.append(f"Section; its settings are {field.env}__<NAME> in the environment.")
        return " ".join(parts)
    parts.append(_kind(info) + ".")
    if _is_secret(info.annotation):
        parts.append(f"Secret: set {field.env} in the environment, not here.")
    else:
        parts.append(f"Env: {field.env}.")
    return " ".join(parts)


def _kind(info: FieldInfo) -> str:
    """A short human description of the type and its bounds, e.g. 'Number > 0 and <= 1'."""
    annotation = info.annotation
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = len(options) < len(typing.get_args(annotation))
    base = options[0] if optional and len(options) == 1 else annotation
    if typing.get_origin(base) is Literal:
        text = "One of " + ", ".join(str(choice) for choice in typing.get_args(base))
    else:
        text = _TYPE_WORDS.get(typing.get_origin(base) or base, "Value")
    bounds = [f"{symbol} {getattr(meta, attr)}" for meta in info.metadata
              for attr, symbol in _BOUNDS if getattr(meta, attr, None) is not None]
    if bounds:
        text += " " + " and ".join(bounds)
    return text + (" (or null)" if optional else "")


_TYPE_WORDS: dict[Any, str] = {str: "Text", int: "Whole number", float: "Number",
                               bool: "true or false", Path: "Path", list: "List",
                               SecretStr: "Text"}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _default(info: FieldInfo) -> Any:
    value = info.get_default(call_default_factory=True, validated_data={})
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _render(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    dumped = yaml.safe_dump({"v": value}, default_flow_style=True, width=1000, sort_keys=False)
    return dumped.strip()[len("{v: "):-1]


# ------------------------------------------------------------------ .env.example
def secret_variables() -> list[tuple[str, str]]:
    """(variable, description) of every secret setting, nested sections included."""
    found: list[tuple[str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            nested = _nested_model(info.annotation)
            if nested is not None:
                walk(nested, f"{prefix}{name.upper()}__")
            elif _is_secret(info.annotation):
                found.append((f"{prefix}{name.upper()}", info.description or ""))

    walk(Settings, ENV_PREFIX)
    return found


def env_example() -> str:
    lines = [
        "# Secrets for syncagent: copy to .env, fill in those your auth flow needs, keep .env",
        "# out of version control. syncagent reads the environment, not this file: load it with",
        "# `set -a; . ./.env; set +a`, or `env_file: .env` in compose. Any other setting can be",
        f"# set here too as {ENV_PREFIX}<NAME> (see syncagent.yaml).",
        "",
    ]
    for variable, description in secret_variables():
        if description:
            lines.append(f"# {description}")
        lines.append(f"{variable}=")
    lines += ["", "# A Postgres state DB's password (libpq reads it; keep it out of state_url):",
              "# PGPASSWORD=", ""]
    return "\n".join(lines)


NEXT_STEPS = """\
# Next steps

Run these from this directory (syncagent reads ./syncagent.yaml and ./mappings).

1. **Check the rules.** Edit the files in `mappings/` (their guide is `mappings/README.md`;
   editors validate them with the JSON Schemas in `mappings/schema/`), then run
   `syncagent check`: it exits 0 when they are valid and names file and line otherwise.
2. **Try it without credentials.** `pip install 'syncagent[sandbox]'`, then
   `syncagent sandbox` in one terminal; in another, `syncagent db upgrade` and
   `syncagent sync --once --sandbox https://127.0.0.1:8765`.
3. **Give it credentials.** Copy `.env.example` to `.env`, fill in the secrets for your
   Salesforce auth flow and the HubSpot private-app token, and load them into the environment
   (`set -a; . ./.env; set +a`). Put the other settings (username, auth flow, state DB) in
   `syncagent.yaml`.
4. **Create the state DB.** `syncagent db upgrade` (safe to run again; the container image does
   it on start).
5. **See before writing.** `syncagent dry-run` pulls from both systems and lists every field it
   would write, writing nothing.
6. **Sync.** `syncagent sync --once` for one cycle, then `syncagent run` to keep going on the
   schedule; `syncagent status` and `syncagent errors` show how it goes.

`syncagent doctor` (checks credentials, permissions and fields) and `syncagent setup` (creates
the fields the rules need) are planned but not in this version yet: until then, `syncagent
check` validates the rules and the first `dry-run` reports a credential or permission problem
with a hint.
"""


# ------------------------------------------------------------------ the command
def planned_files() -> dict[Path, bytes]:
    """Every file `init` writes, by path relative to DIR."""
    files = {Path("syncagent.yaml"): settings_yaml().encode(),
             Path(".env.example"): env_example().encode(),
             Path("NEXT-STEPS.md"): NEXT_STEPS.encode()}
    source = packaged_mappings_dir()
    for pattern in MAPPING_FILES:
        for path in sorted(source.glob(pattern)):
            files[Path("mappings") / path.relative_to(source)] = path.read_bytes()
    return files


def init(directory: Path = typer.Argument(Path("."), help="Where to write (default: here)."),
         force: bool = typer.Option(False, "--force", help="Overwrite files that exist.")
         ) -> None:
    """Write syncagent.yaml, the shipped mappings, .env.example and NEXT-STEPS.md into DIR."""
    files = planned_files()
    existing = sorted(str(directory / rel) for rel in files if (directory / rel).exists())
    if existing and not force:
        others = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ConfigError(f"{existing[0]} already exists{others}; nothing was written",
                          hint="Pass --force to overwrite, or give another DIR.")
    try:
        for relative, content in files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    except OSError as error:
        raise ConfigError(f"cannot write into {directory}: {error.strerror} "
                          f"({error.filename})",
                          hint="Pick a folder you can write to.") from None
    typer.echo(f"wrote {len(files)} files into {directory}; read {directory / 'NEXT-STEPS.md'}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)


__all__ = ["env_example", "planned_files", "secret_variables", "settings_yaml"]
