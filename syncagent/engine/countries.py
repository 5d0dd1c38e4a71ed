"""Country names and codes to ISO 3166-1 alpha-2, from pycountry's ISO tables.

pycountry gives every current country's codes, its English names (short, official and
common) and their translations, of which we read the languages CRM users most often type
in (``Deutschland``, ``Allemagne``, ``日本``). What people write beyond those (``UK``,
``England``, ``Ivory Coast``) is the small table below. Lookups are plain dict reads: the tables
are built once, on first use, so importing the engine stays cheap.
"""

from __future__ import annotations

import functools
import gettext
import unicodedata
from collections.abc import Iterator

import pycountry

# Names and abbreviations pycountry does not carry; keys are written as _key() leaves them
# (case-folded, accents dropped, no leading "the").
ALIASES: dict[str, str] = {
    "u.s.": "US", "u.s.a.": "US", "us of a": "US", "america": "US",
    "uk": "GB", "u.k.": "GB", "britain": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "turkey": "TR", "uae": "AE", "korea": "KR", "россия": "RU", "ivory coast": "CI",
    "macedonia": "MK",
}
# pycountry's translations read; a translated name that means two countries in two of these
# languages is dropped rather than guessed.
LANGUAGES = ("de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "fi", "pl", "cs", "hu",
             "tr", "ru", "ja", "zh_CN", "ko", "ar")
# Two letters that are a code in ISO 3166 but in a CRM far more often mean "not available".
NOT_CODES = frozenset({"NA"})


def _key(text: str) -> str:
    """Case-folded, accents dropped, spaces collapsed, no leading "the": "  The  Türkiye" and
    "turkiye" are one key."""
    folded = " ".join(text.casefold().split())
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return folded.removeprefix("the ")


def _names(country: object) -> Iterator[str]:
    for attr in ("name", "official_name", "common_name"):
        name = getattr(country, attr, None)
        if name:
            yield name


def _keys(name: str) -> Iterator[str]:
    yield _key(name)
    head, comma, tail = name.partition(", ")
    if comma:  # "Korea, Republic of" is also written "Republic of Korea"
        yield _key(f"{tail} {head}")


@functools.cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    """(alpha-2 and alpha-3 code -> alpha-2, name key -> alpha-2)."""
    codes: dict[str, str] = {}
    english: dict[str, str] = {}
    for country in pycountry.countries:
        codes[country.alpha_2] = codes[country.alpha_3] = country.alpha_2
        english.update((key, country.alpha_2) for name in _names(country) for key in _keys(name))
    for code in NOT_CODES:
        codes.pop(code, None)
    return codes, {**_translated(), **english, **ALIASES}


def load() -> None:
    """Build the tables now: before forking evaluation workers, so they share one copy
    (~17 MB and 0.6 s of CPU, each worker otherwise builds its own on first use)."""
    _tables()


def _translated() -> dict[str, str]:
    found: dict[str, str] = {}
    ambiguous: set[str] = set()
    for language in LANGUAGES:
        try:
            catalogue = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, [language])
        except OSError:  # a pycountry without this language: its names are simply not read
            continue
        for country in pycountry.countries:
            for name in _names(country):
                for key in _keys(catalogue.gettext(name)):
                    if found.setdefault(key, country.alpha_2) != country.alpha_2:
                        ambiguous.add(key)
    return {key: code for key, code in found.items() if key not in ambiguous}


def country_code(text: str) -> str | None:
    """The alpha-2 code for a code (``de``, ``DEU``) or name (``Germany``, ``Deutschland``),
    or None when the text names no country we know."""
    codes, names = _tables()
    stripped = text.strip()
    found = codes.get(stripped.upper()) if len(stripped) in (2, 3) else None
    if found is not None:
        return found
    key = _key(stripped)
    found = names.get(key)
    if found is None:  # "Germany." or "usa."
        key = key.rstrip(".")
        found = names.get(key) or (codes.get(key.upper()) if len(key) in (2, 3) else None)
    return found
