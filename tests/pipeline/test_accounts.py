"""The packed accounts-by-domain index answers as the dict it replaces would, whatever the
accounts hold, and stays small; load_world fills it from the mirror."""

from __future__ import annotations

import pickle
import random
import zlib
from datetime import UTC, datetime

import pytest

from state.store import MirrorRow, StateStore
from syncagent.engine import AccountContext
from syncagent.pipeline.accounts import AccountIndex
from syncagent.pipeline.decide import load_world

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

AWKWARD = [
    AccountContext("001A", "005A", "acme.com", "Acme"),
    AccountContext("001B", None, "bare.io", None),
    AccountContext("001C", "005C", "münchen.de", "Bäckerei Müller 🥨"),
    AccountContext("001D", "005D", "sep.com", "A\x1fB"),            # the separator itself
    AccountContext("001E", "\x00", "nul.com", "owner is the None marker"),
    AccountContext("001K", "005K", "odd\x1fdomain.com", "kept as an object"),
    AccountContext("001F", "005F", "num.com", 12345),               # type: ignore[arg-type]
    AccountContext("001G", "", "empty.com", ""),                    # empty, not None
    AccountContext("001H", "005H", "a.co", "x" * 10_000),
    AccountContext("001I", "005I", "acme.co", "prefix of acme.com's domain"),
    AccountContext("001J", "005J", "acme.com.au", "acme.com is its prefix"),
]


def _as_dict(accounts: list[AccountContext]) -> dict[str, AccountContext]:
    return {a.domain: a for a in accounts if a.domain}


def _check_same(index: AccountIndex, expected: dict[str, AccountContext]) -> None:
    assert len(index) == len(expected)
    assert sorted(index) == sorted(expected)
    for domain, account in expected.items():
        assert index.get(domain) == account
        assert index[domain] == account
        assert domain in index


def test_awkward_values_come_back_as_they_went_in() -> None:
    index = AccountIndex.build(AWKWARD)
    _check_same(index, _as_dict(AWKWARD))
    assert index.get("num.com").name == 12345  # type: ignore[union-attr]
    assert index.get("empty.com").owner_id == ""  # type: ignore[union-attr]


@pytest.mark.parametrize("missing", ["", "acme", "acme.c", "acme.comx", "ACME.COM", "nope.org"])
def test_a_domain_not_indexed_is_missing(missing: str) -> None:
    index = AccountIndex.build(AWKWARD)
    assert index.get(missing) is None
    assert index.get(missing, "default") == "default"
    assert missing not in index
    with pytest.raises(KeyError):
        index[missing]


def test_a_key_that_is_not_text_is_missing() -> None:
    index = AccountIndex.build(AWKWARD)
    assert index.get(None) is None  # type: ignore[call-overload]
    assert 5 not in index


def test_the_last_account_of_a_domain_wins_packed_or_not() -> None:
    first = AccountContext("001A", "005A", "acme.com", "Acme")
    odd = AccountContext("001B", "005B", "acme.com", "Acme\x1fodd")
    last = AccountContext("001C", None, "acme.com", "Acme again")
    for order in ([first, odd, last], [odd, first], [first, odd], [last, first, last]):
        index = AccountIndex.build(order)
        assert len(index) == 1
        assert list(index) == ["acme.com"]
        assert index.get("acme.com") == order[-1]


def test_accounts_without_a_domain_are_left_out() -> None:
    index = AccountIndex.build([AccountContext("001A", "005A", None, "x"),
                                AccountContext("001B", "005B", "", "y")])
    assert len(index) == 0 and list(index) == [] and index.get("") is None


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 1_000, 20_011])
def test_any_number_of_accounts_answers_as_a_dict(count: int) -> None:
    """Sizes around the table's growth, with repeated domains and a share of odd values,
    on a seed no other test uses."""
    rng = random.Random(count * 7919 + 3)
    accounts = []
    for n in range(count):
        domain = f"d{rng.randrange(max(1, count))}.example"          # ~1/3 repeat
        name = rng.choice([f"Company {n}", None, f"odd\x1f{n}", n])
        owner = rng.choice(["005A", "005B", None])
        accounts.append(AccountContext(f"001{n:06d}", owner, domain, name))  # type: ignore[arg-type]
    index = AccountIndex.build(accounts)
    _check_same(index, _as_dict(accounts))
    for n in range(50):
        assert index.get(f"x{n}.example") is None


def test_an_index_survives_pickling() -> None:
    index = AccountIndex.build(AWKWARD)
    _check_same(pickle.loads(pickle.dumps(index)), _as_dict(AWKWARD))


def test_the_index_is_small_per_account() -> None:
    """Realistic values: well under the ~300 bytes a dict of frozen objects costs."""
    accounts = [AccountContext(f"001{n:015d}", f"005{n % 40:015d}", f"company{n}.com",
                               f"Company Number {n} Ltd") for n in range(50_000)]
    index = AccountIndex.build(accounts)
    assert index.nbytes / len(accounts) < 120
    assert index.get("company49999.com") == accounts[-1]


@pytest.fixture
def store(sqlite_url: str) -> StateStore:
    store = StateStore(sqlite_url)
    store.upgrade()
    return store


def test_load_world_indexes_live_accounts_by_website_domain(store: StateStore) -> None:
    def account(rid: str, **fields: object) -> MirrorRow:
        return MirrorRow("salesforce", "Account", rid, dict(fields), NOW)
    rows = [account("001A", Website="https://www.Acme.com/about", OwnerId="005A", Name="Acme"),
            account("001B", Website="  ", OwnerId="005B", Name="no site"),
            account("001C", Website="gone.com", OwnerId="005C", Name="Gone"),
            account("001D", Website="beta.io", Name=7)]
    store.mirror.upsert(rows, NOW)
    store.mirror.upsert([MirrorRow("salesforce", "Account", "001C", {"Website": "gone.com"},
                                   NOW, deleted=True)], NOW)
    accounts = load_world(store).accounts
    assert dict(accounts) == {"acme.com": AccountContext("001A", "005A", "acme.com", "Acme"),
                              "beta.io": AccountContext("001D", None, "beta.io", 7)}  # type: ignore[arg-type]


def test_a_domain_that_a_longer_one_starts_with_is_not_taken_for_it() -> None:
    """White-box: find a domain whose prefix probes the very slot that holds it (a table of
    8 slots, crc32-addressed), so the lookup must tell "acme.co" from "acme.com"."""
    for n in range(10_000):
        domain = f"acme{n}.com"
        prefix = domain[:-1]
        if _same_slot(prefix, domain):
            break
    else:
        pytest.fail("no key in 10,000 probes the slot this test needs")
    index = AccountIndex.build([AccountContext("001A", "005A", domain, "Acme")])
    assert index.get(prefix) is None and index.get(domain) is not None


def _same_slot(key: str, of: str) -> bool:
    return zlib.crc32(key.encode()) & 7 == zlib.crc32(of.encode()) & 7


def test_a_key_that_runs_on_into_a_record_is_not_taken_for_its_domain() -> None:
    """White-box, as above: a key holding the separator ("acme.com" + SEP + the account's id)
    that probes the slot of the account it spells out must not match it."""
    for n in range(10_000):
        domain = f"acme{n}.com"
        key = f"{domain}\x1f001A"
        if _same_slot(key, domain):
            break
    else:
        pytest.fail("no key in 10,000 probes the slot this test needs")
    index = AccountIndex.build([AccountContext("001A", "005A", domain, "Acme")])
    assert index.get(key) is None and key not in index


def test_a_key_longer_than_the_last_record_is_missing() -> None:
    """White-box, as above: a long key that probes the slot of a short last record."""
    for n in range(10_000):
        key = f"a-much-longer-domain-than-any-record-{n}.example"
        if _same_slot(key, "b.io"):
            break
    else:
        pytest.fail("no key in 10,000 probes the slot this test needs")
    index = AccountIndex.build([AccountContext("1", None, "b.io", None)])
    assert index.get(key) is None and key not in index
