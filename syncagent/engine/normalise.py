"""Value coercion and normalisation for canonical fields (pure, tolerant of messy input)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers

from syncagent.engine.countries import country_code

_RANGE = re.compile(r"^\s*([\d.,]+)\s*(?:-|\u2013|to)\s*([\d.,]+)\s*$")  # hyphen, en dash
_SUFFIX = {"k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
_NUMBER = re.compile(r"^([\d.]+)\s*(k|m|mm|b|bn)?\+?$")
# Salesforce number fields hold at most 18 digits (precision 18), HubSpot numbers are doubles:
# a value beyond this cannot be stored on either side, so it reads as blank (and the pipeline
# reports it as a poison value) instead of overflowing.
MAX_ABS_NUMBER = 10.0 ** 18
_MAX_NUMBER_TEXT = 64
_DIGITS = re.compile(r"^\s*-?\d+\s*$")  # longer digit strings are not amounts anyone typed


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
    """Country name or code to ISO 3166 alpha-2 (see countries.py); unknown names are kept as
    written (trimmed)."""
    if blank(value):
        return None
    text = str(value).strip()
    return country_code(text) or text


def to_number(value: Any) -> float | None:
    """Numbers from text: "1,200", "$1.5M", "51-200" (a range reads as its lower bound).
    NaN, infinity and magnitudes beyond MAX_ABS_NUMBER read as blank."""
    return _in_range(_parse_number(value))


def _in_range(number: float | None) -> float | None:
    if number is None or not math.isfinite(number) or abs(number) > MAX_ABS_NUMBER:
        return None
    return number


def _parse_number(value: Any) -> float | None:
    if blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= MAX_ABS_NUMBER else None  # float() may overflow
    if isinstance(value, float):
        return value
    if not isinstance(value, str) or len(value) > _MAX_NUMBER_TEXT:
        return None
    text = value.strip().lower().replace("$", "").replace("€", "").replace("£", "")
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
    except (ValueError, OverflowError):
        return None
    return number * _SUFFIX.get(matched.group(2) or "", 1)


def to_integer(value: Any) -> int | None:
    if isinstance(value, str) and _DIGITS.match(value) and len(value) <= _MAX_NUMBER_TEXT:
        value = int(value)  # exact: a float would round 18-digit values
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) <= MAX_ABS_NUMBER else None
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
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat()
        except (ValueError, OverflowError, OSError):  # NaN, or beyond the calendar
            return None
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
    if _NANP_E164.fullmatch(text) is not None or ("+" not in text and "\uff0b" not in text):
        return text   # what the parse below gives these shapes (see _NANP_E164)
    return _parsed_phone(text)


# Shapes whose answer is known without a parse (~12 µs; ~0.3 µs this way), by how
# phonenumbers 9.0.43 reads them (tests/engine/test_eval_phone.py checks its answers):
# - "+1" and ten digits, the first 2-9: country code 1 reads with the US metadata, whose
#   national prefix "1" cannot start such a number (nothing stripped), ten digits are a
#   possible length and there is no extension: its E.164 form is the text itself.
# - no plus sign (its two spellings, phonenumbers' _PLUS_CHARS) anywhere: with no region
#   the parse needs one at the start of the number it extracts (a slice of the text), so it
#   raises, and the text is kept.
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")


def _parsed_phone(text: str) -> str:
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
    if blank(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return str(value).strip() if not isinstance(value, int | float) else str(value)


COERCE = {
    "string": normalise_text, "picklist": normalise_text, "email": normalise_email,
    "integer": to_integer, "number": to_number, "date": to_date, "country": normalise_country,
    "phone": normalise_phone, "url": normalise_url, "boolean": to_boolean,
}


def value_problem(kind: str, value: Any) -> str | None:
    """Why a present value of a field of type ``kind`` cannot be used (so it reads as blank),
    or None. The pipeline records such values as data-quality items; the engine only blanks
    them. Text that simply does not look like a number is not a problem: it is left alone."""
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number (NaN or infinity)"
    if kind not in ("integer", "number"):
        return None
    if isinstance(value, bool) or blank(value):
        return None
    if isinstance(value, int) and abs(value) > MAX_ABS_NUMBER:
        return "a number beyond the 18 digits a Salesforce or HubSpot number field can hold"
    if isinstance(value, str) and len(value) > _MAX_NUMBER_TEXT and value.strip()[:1].isdigit():
        return f"a number of {len(value.strip())} characters, beyond any field's precision"
    parsed = _parse_number(value)
    if parsed is not None and _in_range(parsed) is None:
        return "a number beyond the 18 digits a Salesforce or HubSpot number field can hold"
    return None
