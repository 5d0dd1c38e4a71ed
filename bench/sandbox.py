"""Sandbox benchmark: prints JSON figures (not a timed test).

- seconds and peak memory (ru_maxrss) to seed 100,000 leads with 90 days of activity and
  serve them (targets: < 60 s, < 2 GB);
- time to serve one 2,000-row SOQL query page and one 200-row HubSpot search page with no
  injected latency, at 2,000 and at 100,000 leads (target: < 200 ms each).

Usage: .venv/bin/python bench/sandbox.py [--leads 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests

from syncagent.sandbox.common import FaultProfile
from syncagent.sandbox.server import RunningSandbox, start_sandbox

NO_LIMITS = FaultProfile(hubspot_requests_per_10s=1_000_000, hubspot_searches_per_second=1_000_000,
                         hubspot_daily_limit=100_000_000, salesforce_daily_quota=100_000_000)


def _median_ms(call: Callable[[], Any], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def _soql_page(running: RunningSandbox, session: requests.Session) -> Callable[[], Any]:
    """First page of an incremental Lead query: 2,000 rows with a parent field."""
    since = (running.ctx.clock.now() - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soql = ("SELECT Id, Email, FirstName, LastName, Company, Title, Status, OwnerId, "
            "Owner.Email, NumberOfEmployees, Industry, Country, SystemModstamp FROM Lead "
            f"WHERE SystemModstamp >= {since} ORDER BY SystemModstamp, Id")
    headers = {"Authorization": f"Bearer {running.info['salesforce']['session_id']}"}

    def call() -> None:
        answer = session.get(f"{running.url}/services/data/v59.0/query", params={"q": soql},
                             headers=headers, verify=running.ca_cert)
        answer.raise_for_status()
        assert len(answer.json()["records"]) == 2000, "expected a full 2,000-row page"
    return call


def _search_page(running: RunningSandbox, session: requests.Session) -> Callable[[], Any]:
    """A keyset search page: modified since 400 days ago, hs_object_id > 0, 200 rows."""
    since = int((running.ctx.clock.now() - timedelta(days=400)).timestamp() * 1000)
    body = {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)},
        {"propertyName": "hs_object_id", "operator": "GT", "value": "0"}]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": ["email", "firstname", "lastname", "lifecyclestage", "salesforceleadid",
                       "hs_analytics_num_page_views"], "limit": 200}
    headers = {"Authorization": f"Bearer {running.info['hubspot']['access_token']}"}

    def call() -> None:
        answer = session.post(f"{running.url}/crm/v3/objects/contacts/search", json=body,
                              headers=headers, verify=running.ca_cert)
        answer.raise_for_status()
        assert len(answer.json()["results"]) == 200
    return call


def _pages(running: RunningSandbox) -> dict[str, float]:
    # verify= per request: REQUESTS_CA_BUNDLE in the environment overrides session.verify.
    session = requests.Session()
    return {"soql_2000_row_page_ms": _median_ms(_soql_page(running, session)),
            "hubspot_200_row_search_page_ms": _median_ms(_search_page(running, session))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    small = start_sandbox(leads=2000, seed=7, faults=NO_LIMITS)
    try:
        out["at_2000_leads"] = _pages(small)
    finally:
        small.stop()
    began = time.perf_counter()
    big = start_sandbox(leads=args.leads, seed=7, faults=NO_LIMITS)
    out["leads"] = args.leads
    out["seed_and_start_seconds"] = round(time.perf_counter() - began, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["records"] = {"sf_leads": sum(1 for _ in big.ctx.sf.records("Lead")),
                      "sf_tasks": sum(1 for _ in big.ctx.sf.records("Task")),
                      "hubspot_contacts": len(big.ctx.hs.store("contacts").records),
                      "hubspot_events": len(big.ctx.hs.events)}
    try:
        out[f"at_{args.leads}_leads"] = _pages(big)
    finally:
        big.stop()
    out["targets"] = {"seed_seconds": 60, "peak_rss_mb": 2048, "page_ms": 200}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
