"""`syncagent serve`: the read-only web dashboard over the state DB."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from state.common import missing_sqlite_file
from state.store import StateStore
from syncagent.commands.common import ConfigOption, StateOption, settings_for_command
from syncagent.errors import ConfigError
from syncagent.web import require_web_extra


def serve(
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but a "
                             "loopback address needs web.token or web.username/password."),
    mappings: Path | None = typer.Option(None, "--mappings", help="Folder of the mapping "
                                         "files (default: the setting mappings_dir)."),
    config: Path | None = ConfigOption,
    state: str | None = StateOption,
) -> None:
    """Serve the reports as web pages (an overview and one page per report), their JSON,
    and /healthz, /readyz, /metrics. Read-only: it never writes or calls an API."""
    require_web_extra()
    from syncagent.web.auth import require_auth_for_bind

    settings = settings_for_command(config, state)
    require_auth_for_bind(host, settings.web)
    store = _store(settings.state_url)
    import uvicorn

    from syncagent.web.app import create_app

    app = create_app(settings, store, mappings=mappings)
    listening = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    auth = "token or basic auth" if settings.web.has_auth else "no auth (loopback only)"
    typer.echo(f"syncagent dashboard on http://{shown}:{listening.getsockname()[1]}/ "
               f"({auth}); Ctrl-C stops it")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listening])


def _store(url: str) -> StateStore:
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise ConfigError(f"there is no state DB at {missing}",
                          hint="Pass --state (or set state_url), or run `syncagent sync "
                               "--once` first (after `make demo`: --state "
                               "sqlite:///.syncagent/demo-state.db).")
    store = StateStore(url)
    store.require_schema()
    return store


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear error (uvicorn would
    log it and exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror or error})",
                          hint="Pick a free port with --port, or another --host.") from None
    listening.listen(128)
    return listening


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("serve")(serve)
