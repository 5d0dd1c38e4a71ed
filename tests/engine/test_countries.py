"""Countries: pycountry's codes, names and translations, plus the aliases CRMs are full of."""

from __future__ import annotations

from typing import Any

import pycountry
import pytest

from syncagent.engine.countries import ALIASES, country_code
from syncagent.engine.normalise import normalise_country


@pytest.mark.parametrize(("raw", "expected"), [
    ("de", "DE"), ("De", "DE"), (" gb ", "GB"),                     # two-letter codes, any case
    ("DEU", "DE"), ("deu", "DE"), ("usa", "US"), ("Chn", "CN"),     # three-letter codes
    ("GERMANY", "DE"), ("united KINGDOM", "GB"), ("  the   Netherlands ", "NL"),
    ("Germany.", "DE"), ("usa.", "US"), ("U.S.A.", "US"),
    ("Korea, Republic of", "KR"), ("Republic of Korea", "KR"), ("South Korea", "KR"),
    ("Viet Nam", "VN"), ("Vietnam", "VN"), ("Czech Republic", "CZ"), ("Czechia", "CZ"),
    ("Turkey", "TR"), ("Türkiye", "TR"), ("TURKIYE", "TR"),         # accents optional
    ("Côte d'Ivoire", "CI"), ("cote d'ivoire", "CI"), ("Ivory Coast", "CI"),
    ("UK", "GB"), ("England", "GB"), ("Holland", "NL"), ("UAE", "AE"),
    ("Deutschland", "DE"), ("España", "ES"), ("ESPANA", "ES"), ("Österreich", "AT"),
    ("Allemagne", "DE"), ("Vereinigte Staaten", "US"), ("Brasil", "BR"), ("México", "MX"),
    ("日本", "JP"), ("Россия", "RU"), ("Suomi", "FI"), ("Magyarország", "HU"),
])
def test_codes_names_and_native_names_become_alpha_2(raw: str, expected: str) -> None:
    assert normalise_country(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("Narnia", "Narnia"), ("  Narnia ", "Narnia"),   # unknown: kept as written, trimmed
    ("EU", "EU"), ("ZZ", "ZZ"), ("XYZ", "XYZ"),      # not ISO 3166 countries
    ("NA", "NA"), ("n/a", "n/a"),                     # "not available", not Namibia
    ("U.S.A", "U.S.A"), ("840", "840"),               # half an abbreviation, a numeric code
    ("", None), ("   ", None), (None, None),
    (49, "49"), ("x" * 5_000, "x" * 5_000),
])
def test_what_names_no_country_is_kept_as_written(raw: Any, expected: str | None) -> None:
    assert normalise_country(raw) == expected


def test_namibia_by_name_and_code_still_reads() -> None:
    assert normalise_country("Namibia") == "NA" and normalise_country("NAM") == "NA"


def test_every_iso_country_reads_by_its_codes_and_english_name() -> None:
    for country in pycountry.countries:
        if country.alpha_2 == "NA":
            continue
        assert country_code(country.alpha_2.lower()) == country.alpha_2
        assert country_code(country.alpha_3) == country.alpha_2
        assert country_code(country.name.upper()) == country.alpha_2, country.name


def test_aliases_name_real_iso_codes() -> None:
    for alias, code in ALIASES.items():
        assert pycountry.countries.get(alpha_2=code) is not None, alias
        assert country_code(alias) == code
