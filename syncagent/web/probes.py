"""`/healthz`, `/readyz` and `/metrics`.

`/readyz` judges the agent by the rules of `syncagent status --check` (`syncagent.health`):
the state DB must answer and the last cycle must be recent and healthy. `/metrics` is the
exposition of the collector `run --metrics-port` serves (`syncagent.reports.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from syncagent.errors import SyncAgentError
from syncagent.health import unhealthy_reasons
from syncagent.reports.metrics import exposition

if TYPE_CHECKING:
    from syncagent.web.app import Dashboard

router = APIRouter()


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: list[str]


def readiness(dashboard: Dashboard) -> Readiness:
    try:
        summary = dashboard.store.status_summary()
    except (SyncAgentError, SQLAlchemyError) as error:
        message = error.message if isinstance(error, SyncAgentError) else type(error).__name__
        return Readiness(False, [f"the state DB cannot be read: {message}"])
    reasons = unhealthy_reasons(summary, dashboard.clock(), dashboard.settings.interval_seconds,
                                dashboard.settings.health)
    return Readiness(not reasons, reasons)


@router.get("/healthz")
def healthz() -> Response:
    """The process is up and answering (nothing else is checked)."""
    return PlainTextResponse("ok\n")


@router.get("/readyz")
def readyz(request: Request) -> Response:
    judged = readiness(request.app.state.dashboard)
    return JSONResponse({"ready": judged.ready, "reasons": judged.reasons},
                        status_code=200 if judged.ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(exposition(request.app.state.dashboard.store),
                    media_type=CONTENT_TYPE_LATEST)
