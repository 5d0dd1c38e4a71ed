"""Settings: sources, precedence, secrets, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.errors import ConfigError
from syncagent.settings import load_settings
from tests.shown import one_line_each, shown


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray syncagent.yaml or SYNCAGENT_* variable from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("SYNCAGENT_"):
            monkeypatch.delenv(name)


def test_defaults_use_sqlite_in_the_working_directory() -> None:
    settings = load_settings()
    assert settings.state_url == "sqlite:///syncagent-state.db"
    assert settings.salesforce.daily_budget_share == pytest.approx(0.20)


def test_environment_overrides_file_and_flags_override_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_text("interval_seconds: 120\nsalesforce:\n  username: ops@example.com\n")
    monkeypatch.setenv("SYNCAGENT_INTERVAL_SECONDS", "90")
    assert load_settings().interval_seconds == 90
    assert load_settings().salesforce.username == "ops@example.com"
    assert load_settings(interval_seconds=30).interval_seconds == 30


def test_secrets_are_secretstr_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCAGENT_HUBSPOT__ACCESS_TOKEN", "pat-na1-0123456789abcdef0123")
    settings = load_settings()
    assert settings.hubspot.access_token is not None
    assert settings.hubspot.access_token.get_secret_value() == "pat-na1-0123456789abcdef0123"
    assert "0123456789abcdef" not in repr(settings)


def test_bad_value_names_the_setting_the_variable_and_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCAGENT_SALESFORCE__DAILY_BUDGET_SHARE", "3")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "salesforce.daily_budget_share" in message
    assert "SYNCAGENT_SALESFORCE__DAILY_BUDGET_SHARE" in message
    assert "less than or equal to 1" in message
    assert "\n" not in message


def test_unknown_setting_in_file_is_reported_with_the_file(tmp_path: Path) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_text("intervall_seconds: 10\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "intervall_seconds" in caught.value.message
    assert str(config) in caught.value.message
    assert "unknown setting" in caught.value.message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("state_url: sqlite:///a.db\nsalesforce:\n  username: [oops\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert caught.value.message.startswith(f"{config}:")
    assert "not valid YAML" in caught.value.message


def test_unsupported_state_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="state_url"):
        load_settings(state_url="mysql://root@localhost/db")


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_a_misspelt_nested_key_in_the_file_is_refused_with_the_closest_name(
        tmp_path: Path) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_text("salesforce:\n  username: ops@example.com\n  passwrod: hunter2-secret\n"
                      "hubspot:\n  acces_token: pat-x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = caught.value.message
    assert "salesforce.passwrod" in message and "did you mean 'password'" in message
    assert "hubspot.acces_token" in message and "did you mean 'access_token'" in message
    assert "hunter2-secret" not in shown(caught.value)
    assert one_line_each(caught.value)


def test_a_misspelt_nested_variable_is_refused_with_the_closest_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCAGENT_SALESFORCE__PASSWROD", "hunter2-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "SYNCAGENT_SALESFORCE__PASSWROD" in message and "'password'" in message
    assert "hunter2-secret" not in shown(caught.value)


def test_an_unknown_key_without_a_close_name_lists_the_valid_ones(tmp_path: Path) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_text("hubspot:\n  zzzzqqq: 1\n")
    with pytest.raises(ConfigError, match="valid names here: base_url, access_token"):
        load_settings(config)


@pytest.mark.parametrize(("content", "expected"), [
    (b"state_url: sqlite:///ok.db\nlog_level: \xff\xfe\n", ":2: not UTF-8 text"),
    (b"a: " + b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested too deeply"),
    (b"".join(b"  " * i + b"k%d:\n" % i for i in range(3_000)), "nested too deeply"),
    (b"\x00\x01", "not valid YAML"),
])
def test_unreadable_config_files_give_one_line_naming_the_file(
        tmp_path: Path, content: bytes, expected: str) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(config) in caught.value.message and expected in caught.value.message
    assert one_line_each(caught.value)


@pytest.mark.parametrize("content", ["?\n", "1: 2\n", "null: x\n", "2026-01-01: x\n"])
def test_a_config_file_whose_keys_are_not_names_gives_one_line(
        tmp_path: Path, content: str) -> None:
    """Found by the config fuzz suite: YAML keys that are not text crashed pydantic-settings."""
    config = tmp_path / "syncagent.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError, match="mapping of setting names"):
        load_settings(config)


def test_a_config_value_with_half_a_character_gives_one_line(tmp_path: Path) -> None:
    """Found by the config fuzz suite: `ca_bundle: "\\ud800"` crashed the path check."""
    config = tmp_path / "syncagent.yaml"
    config.write_text('ca_bundle: "\\ud800"\n')
    with pytest.raises(ConfigError, match="not valid Unicode"):
        load_settings(config)


def test_a_ca_bundle_path_too_long_for_the_file_system_gives_one_line(tmp_path: Path) -> None:
    """Found by the config fuzz suite: the path check raised OSError (name too long)."""
    config = tmp_path / "syncagent.yaml"
    config.write_text("ca_bundle: " + "é" * 30_000 + "\n")
    with pytest.raises(ConfigError, match="ca_bundle"):
        load_settings(config)
