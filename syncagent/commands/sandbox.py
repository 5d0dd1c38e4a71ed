"""CLI commands of the sandbox area; registered on the main app by syncagent.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
