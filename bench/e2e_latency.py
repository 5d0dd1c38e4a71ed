"""Where the form-fill latency goes (bench/e2e.py's latency part): one change's steps.

From the state DB, after the lead was seen as MQL: the `run` cycles around the fill (start,
end, records pulled, calls) and the outbox rows that wrote the lead (queued: the decision was
committed; done: the push recorded Salesforce's answer), each in seconds after the fill. A
cycle that started before the fill cannot have seen it; the first one after it should pull,
decide and push the change, so ``queued`` and ``done`` fall inside that cycle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text


def steps(state_url: str, lead_id: str, filled: datetime) -> dict[str, Any]:
    """The cycles and the lead's writes from 30 s before the fill on, relative to it."""
    engine = create_engine(state_url)
    try:
        with engine.connect() as db:
            runs = db.execute(text(
                "SELECT started_at, finished_at, counts, api_calls FROM runs "
                "ORDER BY id DESC LIMIT 12")).all()
            writes = db.execute(text(
                "SELECT created_at, updated_at, status, fields FROM outbox "
                "WHERE system = 'salesforce' AND object = 'Lead' AND remote_id = :rid "
                "ORDER BY id"), {"rid": lead_id}).all()
    finally:
        engine.dispose()

    def after(moment: Any) -> float | None:
        when = _parsed(moment)
        return None if when is None else round((when - filled).total_seconds(), 2)

    cycles = [{"start": after(r[0]), "end": after(r[1]),
               "pulled": _json(r[2]).get("pulled"), "planned": _json(r[2]).get("planned"),
               "calls": _json(r[3])}
              for r in reversed(runs) if (after(r[1]) or 0) > -30]
    lead = [{"queued": after(w[0]), "done": after(w[1]), "status": w[2],
             "fields": sorted(k for k in _json(w[3]) if not k.startswith("__"))}
            for w in writes if (after(w[1]) or 0) > -30]
    return {"cycles": cycles, "lead_writes": lead,
            "hubspot_own_writes": own_writes(state_url, filled)}


def own_writes(state_url: str, filled: datetime) -> dict[str, Any]:
    """The intervals in which the agent's HubSpot writes stamped contacts (a sweep's
    re-read window leaves out at most MAX_SKIPS of them: connectors/hubspot/own_writes.py),
    in seconds after the fill, with their count and the gaps between them."""
    from state.runs import Key
    from state.store import StateStore

    usage = StateStore(state_url).runs.get_value(Key.API_USAGE, {}) or {}
    spans = (usage.get("hubspot") or {}).get("own_writes", {}).get("contacts", [])
    at = filled.timestamp()
    rel = [(round(a / 1000 - at, 1), round(b / 1000 - at, 1)) for a, b in spans]
    return {"count": len(rel), "first": rel[:3], "last": rel[-3:],
            "longest_s": sorted((round(b - a, 1) for a, b in rel), reverse=True)[:6]}


def _parsed(value: Any) -> datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when   # SQLite: naive UTC


def _json(value: Any) -> dict[str, Any]:
    import json
    if isinstance(value, dict):
        return value
    return dict(json.loads(value)) if value else {}


def calls_now(ctx: Any) -> dict[tuple[str, str, str], int]:
    """The sandbox's call counters (taken under its lock)."""
    out: dict[tuple[str, str, str], int] = {}
    for (system, method, path, _status), n in ctx.stats.calls.items():
        out[(system, method, path)] = out.get((system, method, path), 0) + n
    return out


def calls_since(before: dict[tuple[str, str, str], int], ctx: Any) -> dict[str, int]:
    """Calls made since ``before``, by "system method path", most first."""
    now = calls_now(ctx)
    grown = {" ".join(key): n - before.get(key, 0) for key, n in now.items()
             if n > before.get(key, 0)}
    return dict(sorted(grown.items(), key=lambda kv: -kv[1]))
