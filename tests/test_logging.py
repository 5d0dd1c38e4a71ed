"""Log redaction: a secret handed to a logger never reaches the output."""

from __future__ import annotations

import io
import json
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


DASHED_SESSION = "00D5e000000wxyz!AQ4AQ-dashed.session-TAILTAILTAIL-0123456789/+="
AWKWARD_PASSWORD = "p@ss w&rd<\"x\">'%/"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_session_id_with_dashes_is_masked_to_its_end(fmt: str) -> None:
    out = _capture(fmt)
    structlog.get_logger("test").warning("session", detail=f"sid {DASHED_SESSION} rejected")
    text = out.getvalue()
    assert "TAILTAILTAIL" not in text and "0123456789" not in text
    assert "rejected" in text


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_url_encoded_xml_escaped_and_json_escaped_passwords_are_masked(fmt: str) -> None:
    from html import escape
    from urllib.parse import quote, quote_plus
    from xml.sax.saxutils import escape as xml_escape

    out = _capture(fmt)
    register_secret(SecretStr(AWKWARD_PASSWORD))
    log = structlog.get_logger("test")
    spellings = [quote(AWKWARD_PASSWORD, safe=""), quote_plus(AWKWARD_PASSWORD),
                 xml_escape(AWKWARD_PASSWORD), escape(AWKWARD_PASSWORD),
                 xml_escape(AWKWARD_PASSWORD, {'"': "&quot;", "'": "&apos;"})]
    log.info("login body", body=f"grant_type=password&password={spellings[0]}&x=1")
    log.info("form", body=f"a=1&pw={spellings[1]}&b=2")
    for form in spellings[2:]:
        log.info("soap", body=f"<n:pass>{form}</n:pass><n:other>keep-me</n:other>")
    log.info("json", body=json.dumps({"pw": AWKWARD_PASSWORD}))
    text = out.getvalue()
    for form in spellings:
        assert form not in text, form
    assert "p@ss" not in text and "w&amp;rd" not in text and "p%40ss" not in text
    assert "keep-me" in text and "x=1" in text and "b=2" in text


def test_xml_credential_elements_are_masked_by_shape() -> None:
    out = _capture("json")
    structlog.get_logger("test").info(
        "soap login", body="<urn:password>unregistered-Secret9</urn:password>"
                           "<sessionId>00Dabc!opaque</sessionId><name>Ana</name>")
    text = out.getvalue()
    assert "unregistered-Secret9" not in text and "opaque" not in text
    assert "Ana" in text
