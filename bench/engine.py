"""Benchmark: persons evaluated per second on one core with the shipped rules.

Prints one JSON object. Inputs are built before timing; only ``evaluate`` is timed, in a
single thread (one core), over ``--rounds`` rounds: ``persons_per_second`` is the best round
(the least disturbed by other processes), ``persons_per_second_median`` the median.
Run: ``python bench/engine.py [--persons N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syncagent.engine import (  # noqa: E402 - after the path tweak for running from a checkout
    AccountContext,
    Activity,
    CrmFacts,
    EngineState,
    PersonInput,
    RoutingState,
    User,
    UserDirectory,
    evaluate,
    load_rules,
)

KINDS = ["page_view", "page_view", "page_view", "page_view", "email_open", "email_click",
         "form_submission", "file_download", "webinar_registered", "webinar_attended",
         "call_attempted", "call_connected", "meeting_set", "unsubscribe", "campaign_response"]
# ~600 distinct pages, so text matchers see realistic variety rather than a handful of URLs
URLS = [f"https://example.com/{section}/{n}" for section in ("blog", "docs", "customers")
        for n in range(200)] + ["https://example.com/pricing", "https://example.com/demo",
                                "https://example.com/pricing?plan=team", "https://example.com/"]
TITLES = ["VP Marketing", "Marketing Manager", "Head of Sales", "Software Engineer", "CEO",
          "Student", "Director of Revenue Operations", ""]
TITLE_SUFFIXES = ["", "", "EMEA", "North America", "II", "(interim)", "- Platform", "- Growth",
                  "and Partnerships", "Senior"]
INDUSTRIES = ["Software", "Financial Services", "Retail", "Healthcare", None]
COUNTRIES = ["US", "GB", "DE", "BR", "CA", "IN", None]
DOMAINS = ["northwind.io", "gmail.com", "acme.com", "rivalcrm.com", "globex.net"]


def make_people(count: int, activities: int, now: datetime, seed: int) -> list[PersonInput]:
    rng = random.Random(seed)
    people = []
    for i in range(count):
        acts = tuple(
            Activity(kind=rng.choice(KINDS),
                     occurred_at=now - timedelta(seconds=rng.randint(0, 90 * 86_400)),
                     details={"url": rng.choice(URLS if rng.random() < 0.8 else URLS[-4:]),
                              "form": "Contact us"}, id=f"a{i}-{j}")
            for j in range(activities))
        title = f"{rng.choice(TITLES)} {rng.choice(TITLE_SUFFIXES)}".strip()
        profile = {"email": f"p{i}@{rng.choice(DOMAINS)}", "title": title,
                   "employees": rng.choice([5, 60, 250, 1200, 8000, None]),
                   "industry": rng.choice(INDUSTRIES), "country": rng.choice(COUNTRIES),
                   "company": f"Company {i % 500}"}
        crm = CrmFacts(owner_id=None, lead_status=rng.choice(
            ["Open - Not Contacted", "Open - Not Contacted", "Working - Contacted",
             "Unqualified", "Accepted"]), disqualified_reason=rng.choice(["Timing", None]))
        account = AccountContext("001A", "005000000000004AAA", "acme.com", "Acme") \
            if i % 7 == 0 else None
        previous = EngineState(stage=rng.choice(["Lead", "MQL", None]),
                               evaluated_at=now - timedelta(hours=1))
        people.append(PersonInput(f"person-{i}", profile, acts, crm, account, previous))
    return people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--activities", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; best is reported")
    parser.add_argument("--mappings", type=Path, default=ROOT / "mappings")
    args = parser.parse_args()
    rules = load_rules(args.mappings)
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    users = UserDirectory.of([
        User("005000000000001AAA", "cara.smb@example.com", territory="EMEA"),
        User("005000000000002AAA", "dan.smb@example.com", out_of_office=True),
        User("005000000000003AAA", "eve.smb@example.com", territory="EMEA"),
        User("005000000000004AAA", "ava.ent@example.com"),
        User("005000000000005AAA", "ben.ent@example.com"),
    ])
    people = make_people(args.persons, args.activities, now, seed=7)
    for person in people[:200]:  # warm up
        evaluate(person, rules, now, RoutingState(), users)
    rounds = []
    stages: dict[str, int] = {}
    for _ in range(args.rounds):
        state = RoutingState()
        stages = {}
        started = time.perf_counter()
        for person in people:
            decision, state = evaluate(person, rules, now, state, users)
            stages[decision.stage.stage] = stages.get(decision.stage.stage, 0) + 1
        rounds.append(time.perf_counter() - started)
    best = min(rounds)
    print(json.dumps({
        "benchmark": "engine.evaluate",
        "persons_per_second": round(args.persons / best),
        "persons_per_second_median": round(args.persons / statistics.median(rounds)),
        "persons": args.persons,
        "activities_per_person": args.activities,
        "rounds": args.rounds,
        "seconds_best_round": round(best, 3),
        "microseconds_per_person": round(best / args.persons * 1e6, 1),
        "target_persons_per_second": 20_000,
        "meets_target": args.persons / best >= 20_000,
        "cores": 1,
        "stages": dict(sorted(stages.items())),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
