"""Problems found in mapping files, and the one error that reports all of them at once.

An admin fixing YAML wants every mistake in one run, each pointing at a file and a line
with what to do, rather than one traceback per attempt.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from syncagent.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake: where it is and what to do about it."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        # line 0: the problem is the path itself (a missing folder), not a line in it
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class MappingError(ConfigError):
    """The mapping files have one or more problems; ``problems`` lists every one."""

    default_hint = "Fix each line named above, then run `syncagent check --mappings DIR` again."

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems), key=lambda p: (p.file, p.line,
                                                                           p.message))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the mapping files"
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{head}:\n{body}", problems=[str(p) for p in self.problems])


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` suffix when a close choice exists, else the allowed list."""
    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if not options:
        return ""
    shown = ", ".join(f"'{o}'" for o in options[:12])
    more = ", ..." if len(options) > 12 else ""
    return f" (allowed: {shown}{more})"
