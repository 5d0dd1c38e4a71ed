"""Settings: one typed object built from `syncagent.yaml`, `SYNCAGENT_*` variables and CLI flags.

Precedence, strongest first: explicit overrides (CLI flags), environment variables
(`SYNCAGENT_STATE_URL`, nested with a double underscore: `SYNCAGENT_SALESFORCE__PASSWORD`),
the YAML config file, then the defaults below. Every secret is a `SecretStr`, so it prints as
`**********` in reprs, logs and errors.

A bad or missing setting fails at start-up with one line per problem naming the setting, where
it can be set, and the fix (`load_settings` raises `ConfigError`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from syncagent.defaults import default_mappings_dir
from syncagent.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("syncagent.yaml")
DEFAULT_STATE_URL = "sqlite:///syncagent-state.db"
ENV_PREFIX = "SYNCAGENT_"

SalesforceAuth = Literal["password", "oauth_password", "jwt", "client_credentials", "session"]


class _Section(BaseModel):
    """A nested settings section: an unknown key is a typo to report, never to ignore (a
    misspelt `passwrod` would otherwise leave the real password unset without a word)."""

    model_config = ConfigDict(extra="forbid")


class SalesforceSettings(_Section):
    """How to reach one Salesforce org."""

    # JWT bearer: SOAP login() is gone from API v65 and new orgs block the OAuth password flow
    auth: SalesforceAuth = "jwt"
    domain: str = Field("login", description="'login', 'test' or the My Domain prefix")
    login_url: str | None = Field(
        None, description="Send logins to this base URL instead of https://{domain}.salesforce.com"
    )
    instance_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key: SecretStr | None = Field(None, description="PEM text of the JWT signing key")
    private_key_file: Path | None = None
    session_id: SecretStr | None = None
    api_version: str = "59.0"
    daily_budget_share: float = Field(0.20, gt=0, le=1)
    lookback_seconds: int = Field(300, ge=0, le=3600)
    timeout_seconds: float = Field(30.0, gt=0)
    unassigned_owners: list[str] = Field(
        default_factory=list,
        description="User ids or e-mails whose ownership means 'nobody yet' (a default lead "
                    "owner); the integration user and queues always count as such")


class HubSpotSettings(_Section):
    """How to reach one HubSpot portal (private-app token)."""

    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr | None = None
    daily_budget_share: float = Field(0.50, gt=0, le=1)
    requests_per_10s: int = Field(100, ge=1, description="the app's ten-secondly limit")
    searches_per_second: int = Field(4, ge=1, le=5)
    lookback_seconds: int = Field(120, ge=0, le=3600)
    timeout_seconds: float = Field(30.0, gt=0)


class HealthSettings(_Section):
    """When `syncagent status --check` calls the agent unhealthy (see README "Run status")."""

    stale_intervals: int = Field(
        3, ge=1, description="unhealthy when no cycle completed within this many intervals")
    max_rejected: int = Field(
        0, ge=0, description="unhealthy when the last cycle rejected more records than this")


class WebSettings(_Section):
    """Who may read `syncagent serve` (see README "Web dashboard"). Bound to 127.0.0.1 it
    needs neither; any other bind needs at least one, and once either is set every page asks
    for it."""

    token: SecretStr | None = Field(
        None, description="A bearer token (`Authorization: Bearer ...`), for scrapers and curl")
    username: str | None = Field(None, description="HTTP basic auth user, for browsers")
    password: SecretStr | None = Field(None, description="HTTP basic auth password")

    @field_validator("token", "password")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # A blank secret would let an empty header in; refuse it rather than ignore it.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be blank; remove the setting or give a real secret")
        return value

    @model_validator(mode="after")
    def _user_and_password_together(self) -> WebSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set web.username and web.password together (basic auth needs "
                             "both)")
        return self

    @property
    def has_auth(self) -> bool:
        return self.token is not None or self.password is not None


class Settings(BaseSettings):
    """Everything the agent needs to run; see README "Configuration"."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        yaml_file=None,
    )

    state_url: str = DEFAULT_STATE_URL
    mappings_dir: Path = Field(
        default_factory=default_mappings_dir,
        description="Folder of the mapping files; when not set: ./mappings if it holds *.yaml "
                    "files, else the mappings shipped with syncagent")
    ca_bundle: Path | None = Field(None, description="PEM CA bundle trusted for both APIs")
    interval_seconds: int = Field(60, ge=5)
    jitter_seconds: int = Field(5, ge=0)
    lease_seconds: int = Field(60, ge=5)
    retention_days: int = Field(
        180, ge=0, le=36_500,
        description="Days of run history and change-latency samples kept in the state DB "
                    "(sync health reads them); older rows are pruned once a day. 0 keeps them "
                    "for good.")
    eval_workers: int | None = Field(
        None, ge=0, le=64,
        description="Processes that evaluate and plan a cycle's persons beside the agent's "
                    "own, which commits them in order (a rescore or a backfill of many "
                    "chunks); not set: one per CPU core but one (a rescore: one per core), "
                    "at most 4; 0: none, all in the agent's process.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    salesforce: SalesforceSettings = SalesforceSettings()
    hubspot: HubSpotSettings = HubSpotSettings()
    health: HealthSettings = HealthSettings()
    web: WebSettings = WebSettings()

    @field_validator("state_url")
    @classmethod
    def _state_url_is_supported(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError(
                "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
            )
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, value: Path | None) -> Path | None:
        try:
            found = value is None or value.is_file()
        except OSError:  # a name too long for the file system, say (found by the fuzz suite)
            found = False
        if not found:
            shown = str(value) if len(str(value)) <= 200 else str(value)[:200] + "..."
            raise ValueError(f"no file at {shown}; give the path of a PEM CA bundle")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file_in_use()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file,
                                                    yaml_file_encoding="utf-8"))
        return tuple(sources)


# The YAML source is chosen inside pydantic's class hook, which takes no arguments, so the
# file for this load is handed over through this module-level slot (set only by load_settings).
_config_file_for_load: Path | None = None


def _config_file_in_use() -> Path | None:
    return _config_file_for_load


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise ConfigError naming every bad setting and its fix.

    `config_file` defaults to `$SYNCAGENT_CONFIG`, else `./syncagent.yaml` when it exists.
    `overrides` are CLI flags; a value of None means "not given" and is ignored.
    """
    global _config_file_for_load
    path = _resolve_config_file(config_file)
    if path is not None:
        _check_yaml_readable(path)
    given = {key: value for key, value in overrides.items() if value is not None}
    _config_file_for_load = path
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(
            _describe_validation_error(exc, path),
            hint="Fix the setting(s) named above, then run again.",
            config_file=str(path) if path else None,
        ) from None
    finally:
        _config_file_for_load = None


def _resolve_config_file(config_file: Path | None) -> Path | None:
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(
                f"config file {config_file} does not exist",
                hint="Give the path of a syncagent.yaml, or leave --config out.",
            )
        return config_file
    from_env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if from_env:
        return _resolve_config_file(Path(from_env))
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _check_yaml_readable(path: Path) -> None:
    """Turn a YAML syntax error into one line with the file and line number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}",
                          hint="Check the path and its permissions.") from None
    try:
        content = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte {exc.start})",
            hint="Save the config file as UTF-8 (any editor's 'Save with encoding').",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{path}: nested too deeply to be a config file",
            hint="Settings nest at most two levels (e.g. salesforce: {username: ...}).",
        ) from None
    except yaml.YAMLError as exc:
        if not isinstance(exc, yaml.MarkedYAMLError):
            raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})",
                              hint="Fix the YAML syntax of the file.") from None
        where = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(
            f"{path}:{where}: not valid YAML ({exc.problem})",
            hint="Fix the YAML syntax at that line (indentation, a missing colon or quote).",
        ) from None
    if content is not None and (not isinstance(content, dict)
                                or not all(isinstance(key, str) for key in content)):
        raise ConfigError(
            f"{path}:1: the config file must be a mapping of setting names to values",
            hint="Start the file with settings such as `state_url: sqlite:///state.db`.",
        )
    if _holds_broken_text(content):
        raise ConfigError(
            f"{path}: holds text that is not valid Unicode (an escape such as \\ud800 that "
            "stands for half a character)",
            hint="Retype the value; paths, URLs and names must be whole characters.",
        )


def _holds_broken_text(content: Any) -> bool:
    """A lone surrogate (YAML's "\\ud800" escape) cannot become a path or a URL."""
    todo, seen = [content], set()
    while todo:
        item = todo.pop()
        if isinstance(item, dict | list):
            if id(item) in seen:  # YAML aliases can make a list contain itself
                continue
            seen.add(id(item))
            todo += [*item.keys(), *item.values()] if isinstance(item, dict) else item
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = f"{path} or " if path else ""
    lines = []
    for error in exc.errors():
        parts = [_printable(part) for part in error["loc"]]
        dotted = ".".join(parts)
        env_name = ENV_PREFIX + "__".join(parts).upper()
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting; " + _closest_setting(error["loc"])
        lines.append(f"setting '{dotted}' ({where}{env_name}): {message}")
    return "; ".join(lines)


def _printable(part: int | str) -> str:
    """A key as it can be shown on one line (a key may hold a newline or a control)."""
    text = str(part)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _closest_setting(loc: tuple[int | str, ...]) -> str:
    """'did you mean X?' from the valid names at the unknown key's level."""
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        annotation = model.model_fields.get(str(part))
        nested = annotation.annotation if annotation else None
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            break
        model = nested
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]).lower(), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "valid names here: " + ", ".join(names)
