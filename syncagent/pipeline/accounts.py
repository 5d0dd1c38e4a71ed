"""The CRM's accounts by e-mail domain, packed so that a cycle's world stays small.

A cycle evaluates persons chunk by chunk, but routing and grading look up a person's
account by domain, so every account must be at hand. A dict of frozen objects costs about
300 bytes per account (the object, its four strings, the dict slot); an org with 50,000
accounts then holds 15 MB in the main process and in every worker. Here an account is one
UTF-8 record in a shared byte buffer ("domain, id, owner, name", split by a unit separator)
and the table that finds it holds one 8-byte integer per slot: about 100 bytes per account.

An account is rebuilt as an `AccountContext` on each lookup; the few accounts whose values
are not plain strings, or contain the separators, are kept as the objects they are.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

from syncagent.engine import AccountContext

_SEP = "\x1f"           # ASCII unit separator: never in a domain, an id or a name we pack
_NONE = "\x00"          # stands for None; a value that holds it is kept as an object
_SEP_BYTE = 0x1F
_MIN_SLOTS = 8


def _plain(value: object) -> bool:
    return isinstance(value, str) and _SEP not in value and _NONE not in value


def _packable(account: AccountContext) -> bool:
    """Domain and id plain strings, owner and name plain strings or None."""
    return (_plain(account.domain) and _plain(account.account_id)
            and all(v is None or _plain(v) for v in (account.owner_id, account.name)))


def _record(account: AccountContext) -> bytes:
    owner = _NONE if account.owner_id is None else account.owner_id
    name = _NONE if account.name is None else account.name
    return _SEP.join((account.domain or "", account.account_id, owner, name)).encode()


class AccountIndex(Mapping[str, AccountContext]):
    """A read-only mapping of domain -> AccountContext, built once per cycle.

    Slots of the open-addressing table hold 0 (empty), k + 1 for the k-th packed record, or
    -(j + 1) for the j-th account kept as an object. When a domain repeats, the last account
    wins, as with a dict's assignment."""

    __slots__ = ("_blob", "_count", "_objects", "_starts", "_table")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._starts = array("Q", [0])   # record k spans _blob[_starts[k]:_starts[k + 1]]
        self._table = array("q", bytes(8 * _MIN_SLOTS))
        self._objects: list[AccountContext] = []
        self._count = 0

    @classmethod
    def build(cls, accounts: Iterable[AccountContext]) -> AccountIndex:
        """Index accounts by their `domain`; those without a domain are skipped."""
        index = cls()
        for account in accounts:
            if account.domain:
                index._add(account)
        return index

    # -- Mapping ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for entry in self._table:
            if entry:
                yield self._key_of(entry)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._slot(key)[1] != 0

    def __getitem__(self, key: str) -> AccountContext:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    @overload
    def get(self, key: str, /) -> AccountContext | None: ...
    @overload
    def get(self, key: str, default: Any, /) -> Any: ...

    def get(self, key: str, default: Any = None, /) -> Any:
        if not isinstance(key, str):
            return default
        entry = self._slot(key)[1]
        if entry == 0:
            return default
        return self._objects[-entry - 1] if entry < 0 else self._unpack(entry - 1)

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed buffers and the table (objects not counted)."""
        return (len(self._blob) + self._starts.itemsize * len(self._starts)
                + self._table.itemsize * len(self._table))

    # -- building --------------------------------------------------------------------------

    def _add(self, account: AccountContext) -> None:
        domain = account.domain or ""
        position, entry = self._slot(domain)
        if _packable(account):
            self._blob += _record(account)
            self._starts.append(len(self._blob))
            new_entry = len(self._starts) - 1          # record k is stored as k + 1
        else:
            self._objects.append(account)
            new_entry = -len(self._objects)
        self._table[position] = new_entry
        if entry == 0:
            self._count += 1
            if 2 * self._count > len(self._table):   # keep the table at most half full
                self._grow()

    def _grow(self) -> None:
        entries = [entry for entry in self._table if entry]
        self._table = array("q", bytes(8 * 2 * len(self._table)))
        for entry in entries:
            position, _ = self._slot(self._key_of(entry))
            self._table[position] = entry

    # -- lookup ----------------------------------------------------------------------------

    def _slot(self, key: str) -> tuple[int, int]:
        """The slot that holds `key`, or the empty slot where it would go, and its entry."""
        encoded = key.encode()
        table = self._table
        mask = len(table) - 1
        position = zlib.crc32(encoded) & mask
        while True:
            entry = table[position]
            if entry == 0 or self._holds(entry, key, encoded):
                return position, entry
            position = (position + 1) & mask

    def _holds(self, entry: int, key: str, encoded: bytes) -> bool:
        if entry < 0:
            return self._objects[-entry - 1].domain == key
        if _SEP_BYTE in encoded:     # a packed domain never holds it: the key would run on
            return False             # into the record's id ("acme.com\x1f001A")
        start = self._starts[entry - 1]
        end = start + len(encoded)
        # the record starts with the domain and a separator follows it
        return (end < len(self._blob)    # a key longer than the last record stops here
                and self._blob[end] == _SEP_BYTE and self._blob[start:end] == encoded)

    def _key_of(self, entry: int) -> str:
        if entry < 0:
            return self._objects[-entry - 1].domain or ""
        start = self._starts[entry - 1]
        return self._blob[start:self._blob.index(_SEP_BYTE, start)].decode()

    def _unpack(self, record: int) -> AccountContext:
        text = self._blob[self._starts[record]:self._starts[record + 1]].decode()
        domain, account_id, owner, name = text.split(_SEP)
        return AccountContext(account_id, None if owner == _NONE else owner, domain,
                              None if name == _NONE else name)
