"""Which records are people, and their match order, read from the registered profiles: the
plain loop `person_object` searches with answers as the profile's own `person_object` does,
for every registered object and for none at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.profile import PersonObject, SystemProfile
from connectors.registry import profile_of, register, registered, unregister
from syncagent.pipeline.records import is_person, match_rank, person_object

ODD = ["", "\x00", "lead", "LEAD", "Lead ", "contacts\x00", "é", "x" * 10_000, "Account"]


@pytest.fixture
def twin() -> Iterator[str]:
    """A system whose two person objects share a name: the first listed is the one meant."""
    first, second = PersonObject("Person", "mail", 7), PersonObject("Person", "email", 9)
    register(SystemProfile("twin", "Twin", (first, second), {}, 10))
    try:
        yield "twin"
    finally:
        unregister("twin")


@pytest.mark.parametrize("object_name", ODD)
@pytest.mark.parametrize("system", ["salesforce", "hubspot", "", "nosuch", "\x00"])
def test_no_other_object_is_a_person(system: str, object_name: str) -> None:
    profile = profile_of(system)
    assert person_object(system, object_name) is (
        profile.person_object(object_name) if profile is not None else None)
    assert not is_person(system, object_name)
    assert match_rank(system, object_name) == len(registered()) * 10


def test_each_registered_person_object_is_its_profiles_own() -> None:
    for system, profile in registered().items():
        for person in profile.person_objects:
            assert person_object(system, person.object) is person
            assert is_person(system, person.object)
            assert match_rank(system, person.object) == person.match_rank


def test_the_first_person_object_of_a_name_is_the_one_found(twin: str) -> None:
    assert person_object(twin, "Person") == PersonObject("Person", "mail", 7)
    assert match_rank(twin, "Person") == 7
    unregister(twin)
    assert person_object(twin, "Person") is None, "an unregistered system has no people"
