"""Value coercion and normalisation for canonical fields (pure, tolerant of messy input)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import phonenumbers

_COUNTRIES: dict[str, str] = {
    "united states": "US", "united states of america": "US", "usa": "US", "u.s.": "US",
    "u.s.a.": "US", "america": "US", "united kingdom": "GB", "uk": "GB", "u.k.": "GB",
    "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "germany": "DE", "deutschland": "DE", "france": "FR",
    "spain": "ES", "españa": "ES", "italy": "IT", "italia": "IT", "netherlands": "NL",
    "the netherlands": "NL", "holland": "NL", "belgium": "BE", "switzerland": "CH",
    "austria": "AT", "ireland": "IE", "portugal": "PT", "sweden": "SE", "norway": "NO",
    "denmark": "DK", "finland": "FI", "iceland": "IS", "poland": "PL", "czech republic": "CZ",
    "czechia": "CZ", "hungary": "HU", "romania": "RO", "greece": "GR", "turkey": "TR",
    "türkiye": "TR", "israel": "IL", "united arab emirates": "AE", "uae": "AE",
    "saudi arabia": "SA", "south africa": "ZA", "nigeria": "NG", "kenya": "KE", "egypt": "EG",
    "canada": "CA", "mexico": "MX", "méxico": "MX", "brazil": "BR", "brasil": "BR",
    "argentina": "AR", "chile": "CL", "colombia": "CO", "peru": "PE", "india": "IN",
    "china": "CN", "japan": "JP", "south korea": "KR", "korea": "KR", "singapore": "SG",
    "australia": "AU", "new zealand": "NZ", "indonesia": "ID", "malaysia": "MY",
    "philippines": "PH", "thailand": "TH", "vietnam": "VN", "hong kong": "HK", "taiwan": "TW",
    "russia": "RU", "ukraine": "UA", "luxembourg": "LU", "estonia": "EE", "latvia": "LV",
    "lithuania": "LT",
}
_ISO2 = frozenset(_COUNTRIES.values())
_ISO3 = {"USA": "US", "GBR": "GB", "DEU": "DE", "FRA": "FR", "ESP": "ES", "ITA": "IT",
         "NLD": "NL", "CAN": "CA", "AUS": "AU", "IND": "IN", "JPN": "JP", "BRA": "BR",
         "MEX": "MX", "CHE": "CH", "SWE": "SE", "IRL": "IE"}
_RANGE = re.compile(r"^\s*([\d.,]+)\s*(?:-|\u2013|to)\s*([\d.,]+)\s*$")  # hyphen, en dash
_SUFFIX = {"k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
_NUMBER = re.compile(r"^([\d.]+)\s*(k|m|mm|b|bn)?\+?$")


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalise_email(value: Any) -> str | None:
    if blank(value):
        return None
    text = str(value).strip().strip("<>").lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:"):]
    return text if "@" in text else None


def email_domain(email: Any) -> str | None:
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower() or None


def normalise_country(value: Any) -> str | None:
    """Country name or code to ISO 3166 alpha-2; unknown names are kept as written."""
    if blank(value):
        return None
    text = str(value).strip()
    upper = text.upper()
    if upper in _ISO2:
        return upper
    if upper in _ISO3:
        return _ISO3[upper]
    return _COUNTRIES.get(text.casefold().rstrip("."), _COUNTRIES.get(text.casefold(), text))


def to_number(value: Any) -> float | None:
    """Numbers from text: "1,200", "$1.5M", "51-200" (a range reads as its lower bound)."""
    if blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace("$", "").replace("€", "").replace("£", "")
    text = text.replace(" ", "") if _RANGE.match(text) is None else text
    ranged = _RANGE.match(text)
    if ranged:
        text = ranged.group(1)
    text = text.replace(",", "")
    matched = _NUMBER.match(text)
    if not matched:
        return None
    try:
        number = float(matched.group(1))
    except ValueError:
        return None
    return number * _SUFFIX.get(matched.group(2) or "", 1)


def to_integer(value: Any) -> int | None:
    number = to_number(value)
    return None if number is None else int(number)


def to_date(value: Any) -> str | None:
    """ISO date text; datetimes keep their time, epoch milliseconds (HubSpot) are read too."""
    if blank(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        from datetime import UTC
        return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat()
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text


def to_boolean(value: Any) -> bool | None:
    if blank(value):
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "1", "y", "on")


def normalise_phone(value: Any) -> str | None:
    """E.164 (``+442079460958``), the extension kept in RFC 3966 form (``;ext=12``), which
    both Salesforce's and HubSpot's phone fields accept as text. A number without a country
    code, or anything phonenumbers cannot parse, is left as written (trimmed): guessing a
    country would change a rep's data."""
    if blank(value):
        return None
    text = str(value).strip()
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{e164};ext={number.extension}" if number.extension else e164


def normalise_url(value: Any) -> str | None:
    if blank(value):
        return None
    text = str(value).strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("www."):
        text = text[4:]
    return text.rstrip("/") or None


def normalise_text(value: Any) -> str | None:
    if blank(value):
        return None
    return str(value).strip() if not isinstance(value, int | float) else str(value)


COERCE = {
    "string": normalise_text, "picklist": normalise_text, "email": normalise_email,
    "integer": to_integer, "number": to_number, "date": to_date, "country": normalise_country,
    "phone": normalise_phone, "url": normalise_url, "boolean": to_boolean,
}
