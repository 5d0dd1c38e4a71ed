"""Small builders for engine inputs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from syncagent.engine import (
    AccountContext,
    Activity,
    CrmFacts,
    EngineState,
    PersonInput,
    User,
    UserDirectory,
)

from .conftest import NOW

FIT = {"email": "maria@northwind.io", "title": "VP Marketing", "employees": 250,
       "industry": "Software", "country": "US", "company": "Northwind"}
POOR_FIT = {"email": "sam@gmail.com", "title": "Student", "employees": 3,
            "industry": "Retail", "country": "BR"}


def act(kind: str, days_ago: float = 0.0, **details: Any) -> Activity:
    return Activity(kind, NOW - timedelta(days=days_ago), details, id=f"{kind}-{days_ago}")


def person(profile: dict[str, Any] | None = None, activities: list[Activity] | None = None,
           crm: CrmFacts | None = None, previous: EngineState | None = None,
           account: AccountContext | None = None, person_id: str = "p1") -> PersonInput:
    return PersonInput(person_id, dict(FIT if profile is None else profile),
                       tuple(activities or ()), crm or CrmFacts(), account, previous)


def hot_activities() -> list[Activity]:
    """Enough recent interest to pass an MQL score of 100."""
    return [act("form_submission", 0.1, form="Demo request"),
            act("form_submission", 1, form="Ebook"),
            act("page_view", 0.2, url="https://x.com/pricing"),
            act("meeting_set", 0.5)]


USERS = UserDirectory.of([
    User("005A", "cara.smb@example.com", "Cara"),
    User("005B", "dan.smb@example.com", "Dan"),
    User("005C", "eve.smb@example.com", "Eve"),
    User("005D", "ava.ent@example.com", "Ava", manager_id="005M"),
    User("005E", "ben.ent@example.com", "Ben"),
    User("005F", "fay.emea@example.com", "Fay", territory="EMEA"),
    User("005G", "gus.emea@example.com", "Gus", territory="EMEA"),
    User("005Z", "zed@example.com", "Zed", active=False),
])
