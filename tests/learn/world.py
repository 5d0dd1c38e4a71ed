"""Synthetic persons files for the learn tests: buyers with a hidden propensity that
depends on fit and on recent, weighty activity, so a good scorer can be told from a poor one.
The tests read only the files, never the propensity."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TITLES = (("VP Marketing", 1.0), ("Director of Sales", 0.8), ("Marketing Manager", 0.4),
          ("Analyst", 0.1), ("Student", -0.8))
INDUSTRIES = (("Software", 0.6), ("Banking", 0.5), ("Education", -0.3), ("Retail", 0.0))
COUNTRIES = (("US", 0.4), ("DE", 0.2), ("BR", -0.5))
KINDS = (("page_view", 0.02, 6.0), ("form_submission", 0.5, 0.6), ("email_click", 0.1, 1.5),
         ("meeting_completed", 1.4, 0.15), ("webinar_attended", 0.4, 0.3),
         ("unsubscribe", -1.5, 0.05))


CREATED = NOW - timedelta(days=40)   # every person's creation, in a world that gives it
EARLY_KINDS = ("form_submission", "meeting_completed")


def _activities(rng: random.Random, heat: float, early: float = 0.0
                ) -> tuple[list[dict[str, Any]], float]:
    """The activities and their pull on the outcome; ``early`` adds to the pull of each form
    or meeting within 14 days of CREATED (it draws nothing from ``rng``)."""
    acts, pull = [], 0.0
    for kind, weight, rate in KINDS:
        for _ in range(int(rng.expovariate(1.0) * rate * (0.3 + 2 * heat))):
            age = rng.uniform(0, 60) * (1.2 - heat)
            url = "/pricing" if kind == "page_view" and rng.random() < heat else "/blog"
            acts.append({"kind": kind, "occurred_at": (NOW - timedelta(days=age)).isoformat(),
                         "details": {"url": "https://vendor.example" + url},
                         "id": f"a{len(acts)}"})
            pull += weight * math.exp(-age / 20)
            if early and kind in EARLY_KINDS and age >= (NOW - CREATED).days - 14:
                pull += early
    return acts, pull


def person(rng: random.Random, number: int, strength: float = 1.0,
           early: float | None = None) -> dict[str, Any]:
    """A person document; with ``early`` (even 0) it has a creation time, and forms and
    meetings soon after it pull the outcome by that much more."""
    title, t_fit = rng.choice(TITLES)
    industry, i_fit = rng.choice(INDUSTRIES)
    country, c_fit = rng.choice(COUNTRIES)
    employees = int(math.exp(rng.uniform(2, 9)))
    fit = t_fit + i_fit + c_fit + (0.5 if 200 <= employees <= 5000 else 0.0)
    heat = min(1.0, max(0.0, 0.3 * fit + rng.random() * 0.7))
    acts, pull = _activities(rng, heat, early or 0.0)
    logit = strength * (0.9 * fit + 0.8 * pull) - 2.2
    outcome = rng.random() < 1 / (1 + math.exp(-logit))
    created = {} if early is None else {"created_at": CREATED.isoformat()}
    return {"person_id": f"p{number}", "now": NOW.isoformat(), "outcome": outcome, **created,
            "profile": {"email": f"p{number}@corp{number % 97}.example", "title": title,
                        "industry": industry, "country": country, "employees": employees},
            "activities": acts}


def write_world(path: Path, n: int, seed: int, strength: float = 1.0,
                early: float | None = None) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps(person(rng, i, strength, early)) + "\n")
    return path
