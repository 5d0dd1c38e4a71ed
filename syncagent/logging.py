"""structlog set-up: JSON off a terminal, readable console output on one, secrets redacted.

Redaction works three ways, because a secret can reach a log line in any of them:
1. by key: a value logged under a name such as `password`, `access_token` or `authorization`;
2. by shape: bearer tokens, `token=`/`sid=`-style URL parameters, credentials in URL user-info,
   Salesforce session ids and HubSpot private-app tokens inside any string;
3. by value: every secret the settings hold is registered at start-up (`register_secret`), and
   any occurrence of it, anywhere in any string, is masked.
Standard-library loggers (urllib3, requests, simple-salesforce) go through the same processors.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

import structlog
from pydantic import SecretStr

MASK = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|authorization|session_?id|private_?key|api_?key|sid|cookie)",
    re.IGNORECASE,
)
_SECRET_SHAPES = [
    # Authorization headers and bare bearer tokens.
    re.compile(r"(?i)\b(bearer|oauth|basic)\s+[A-Za-z0-9._~+/=!\-]{8,}"),
    # Query/body parameters that carry credentials.
    re.compile(
        r"(?i)\b(access_token|refresh_token|token|sid|session_id|password|client_secret|"
        r"security_token|api_key|hapikey)=[^&\s\"']+"
    ),
    # user:password@ in URLs.
    re.compile(r"(?i)(?<=://)[^/\s:@]+:[^/\s@]+@"),
    # Salesforce session ids: org id, '!', then a long opaque token (which may hold '-', '+',
    # '/' or '=': the whole run is masked, never only the part before the first dash).
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-+/=]{20,}"),
    # Credentials inside XML elements (the SOAP login body, SOAP faults, session answers).
    re.compile(r"(?i)(<(?:\w+:)?(?:password|session_?id|client_?secret|access_?token|"
               r"security_?token|private_?key)\b[^>]*>)[^<]+"),
    # HubSpot private-app tokens.
    re.compile(r"\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}", re.IGNORECASE),
]

_known_secrets: set[str] = set()


def register_secret(value: str | SecretStr | None) -> None:
    """Mask every later occurrence of this value in any log line, also as it appears inside
    a URL or form body (percent-encoded), an XML/HTML document (escaped) or a JSON string."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    # Very short values would mask ordinary words; nothing real is that short.
    if raw and len(raw) >= 6:
        _known_secrets.update(_spellings(raw))


def _spellings(raw: str) -> set[str]:
    """The forms a secret takes on the wire; longest first matters not, each is replaced."""
    forms = {raw, quote(raw, safe=""), quote_plus(raw, safe=""), quote(raw),
             xml_escape(raw), xml_escape(raw, {'"': "&quot;", "'": "&apos;"}),
             html.escape(raw), json.dumps(raw)[1:-1]}
    return {form for form in forms if form}


def register_secrets(values: Iterable[str | SecretStr | None]) -> None:
    for value in values:
        register_secret(value)


def redact_text(text: str) -> str:
    """Mask every secret this module knows of, by value and by shape, in one string."""
    # Longest first: a secret's escaped spelling may contain its shorter plain spelling.
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _SECRET_SHAPES:
        text = pattern.sub(_mask_match, text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    found = match.group(0)
    if found.startswith("<"):
        return match.group(1) + MASK
    if found.startswith("00D"):  # a session id; its tail may hold '=' (base64 padding)
        return MASK
    if found.endswith("@"):
        return MASK + "@"
    if "=" in found and not found.startswith(("http", "//")):
        return found.split("=", 1)[0] + "=" + MASK
    if found.lower().startswith(("bearer", "oauth", "basic")):
        return found.split(None, 1)[0] + " " + MASK
    return MASK


def redact_value(key: str | None, value: Any) -> Any:
    """Redact one logged value, recursing into mappings and sequences."""
    if isinstance(value, SecretStr):
        return MASK
    if key is not None and _SECRET_KEY.search(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value(None, item) for item in value]
    if isinstance(value, BaseException):
        return redact_text(repr(value))
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the last stop before rendering, so nothing skips it."""
    for key in list(event_dict):
        if key in ("event", "exception"):
            event_dict[key] = redact_value(None, event_dict[key])
        else:
            event_dict[key] = redact_value(key, event_dict[key])
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and the standard library once, for the CLI and the scheduler."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not _is_terminal(stream))
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Connection chatter from the HTTP stacks is noise at info level.
    for noisy in ("urllib3", "requests", "uvicorn.access", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
