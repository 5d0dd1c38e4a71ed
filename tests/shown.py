"""What a person reads for one of our errors: the CLI prints its message, then its hint."""

from __future__ import annotations

from syncagent.errors import SyncAgentError


def shown(error: SyncAgentError) -> str:
    """The message and the hint as ``cli.py`` prints them, so a test can check both at once."""
    return f"error: {error.message}\nhint: {error.hint}"


def one_line_each(error: SyncAgentError) -> bool:
    """True when neither the message nor the hint breaks the `error:`/`hint:` lines."""
    return "\n" not in error.message and "\n" not in error.hint
