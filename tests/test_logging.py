"""Log redaction: a secret handed to a logger never reaches the output."""

from __future__ import annotations

import io
import logging

import pytest
import structlog
from pydantic import SecretStr

from syncagent.logging import configure_logging, register_secret

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
SESSION = "00D5e000000abcd!AQ4AQFakeSessionIdValueThatIsLong.0123456789"
PASSWORD = "correct-horse-battery"


def _capture(fmt: str) -> io.StringIO:
    out = io.StringIO()
    configure_logging("debug", fmt, stream=out)
    return out


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_never_reach_the_output(fmt: str) -> None:
    out = _capture(fmt)
    register_secret(SecretStr(PASSWORD))
    log = structlog.get_logger("test")
    log.info("calling api", access_token=TOKEN, headers={"Authorization": f"Bearer {TOKEN}"})
    log.info(f"GET https://api.example.com/x?access_token={TOKEN}&limit=10")
    log.info("login", url=f"https://admin:{PASSWORD}@db.example.com/state")
    log.warning("session expired", detail=f"sid {SESSION} rejected")
    log.error("auth failed", error=RuntimeError(f"bad password {PASSWORD}"))
    log.info("settings", token=SecretStr("s3cr3t-value-xyz"))
    text = out.getvalue()
    for secret in (TOKEN, SESSION, PASSWORD, "s3cr3t-value-xyz"):
        assert secret not in text
    assert "[REDACTED]" in text
    assert "limit=10" in text, "redaction must keep the harmless parts of a URL"


def test_stdlib_loggers_are_redacted_too() -> None:
    out = _capture("json")
    logging.getLogger("simple_salesforce").warning("Authorization: Bearer %s", SESSION)
    assert SESSION not in out.getvalue()
    assert "[REDACTED]" in out.getvalue()


def test_json_output_when_not_on_a_terminal() -> None:
    out = _capture("auto")
    structlog.get_logger("t").info("hello", count=3)
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith("{") and '"count": 3' in line
