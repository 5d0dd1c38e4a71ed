"""Salesforce-shaped record ids: 15-char case-sensitive ids and their 18-char checksummed form."""

from __future__ import annotations

import itertools
import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
POD = "8c"   # the two "instance" characters after the key prefix


def checksum(id15: str) -> str:
    """The 3-char suffix that makes a 15-char id case-insensitively unique (Salesforce's rule)."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def to18(record_id: str) -> str:
    """18-char form of a 15- or 18-char id (18-char input is normalised, not trusted)."""
    id15 = record_id[:15]
    return id15 + checksum(id15)


def is_valid(record_id: str) -> bool:
    """Whether the text is a well-formed id (15 chars, or 18 with the right checksum)."""
    if not _ID_RE.match(record_id):
        return False
    return len(record_id) == 15 or record_id[15:] == checksum(record_id[:15])


def _base62(n: int, width: int) -> str:
    chars = []
    for _ in range(width):
        n, rem = divmod(n, 62)
        chars.append(_BASE62[rem])
    return "".join(reversed(chars))


class IdFactory:
    """Sequential ids per key prefix; sequential ids sort in creation order (ASCII order)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._counter = itertools.count(1)

    def next(self) -> str:
        id15 = f"{self.prefix}{POD}0000{_base62(next(self._counter), 6)}"
        return id15 + checksum(id15)
