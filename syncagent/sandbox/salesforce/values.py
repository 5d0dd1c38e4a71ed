"""Converting field values between JSON, storage and Salesforce's wire formats."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from syncagent.sandbox.salesforce.schema import NUMBER_TYPES, STRING_TYPES, FieldDef
from syncagent.sandbox.salesforce.soql import parse_datetime


class RequestError(Exception):
    """A whole request Salesforce refuses: status plus one ``{message, errorCode}`` body."""

    def __init__(self, status: int, code: str, message: str,
                 fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]


def format_datetime(value: datetime) -> str:
    """Salesforce's datetime wire format: milliseconds and a +0000 offset without a colon."""
    return value.isoformat(timespec="milliseconds")[:-6] + "+0000"


def wire(f: FieldDef, value: Any) -> Any:
    """A stored value as the REST API serialises it."""
    if value is None:
        return None
    if f.type == "datetime":
        return format_datetime(value)
    if f.type == "date":
        return value.isoformat()
    if f.type in ("double", "currency", "percent"):
        return float(value)
    return value


def _parser_error(f: FieldDef, raw: Any, expected: str) -> RequestError:
    kind = "VALUE_STRING" if isinstance(raw, str) else "VALUE_TRUE" if raw is True else \
        "VALUE_FALSE" if raw is False else "START_OBJECT" if isinstance(raw, dict) else \
        "START_ARRAY" if isinstance(raw, list) else "VALUE_NUMBER_INT"
    return RequestError(400, "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of {expected} from {kind} value {raw} "
                        f"or request may be missing a required field")


def coerce(f: FieldDef, raw: Any) -> Any:
    """A JSON value as stored for this field; raises RequestError(JSON_PARSER_ERROR)."""
    if raw is None:
        return None
    t = f.type
    if t in STRING_TYPES or t in ("id", "reference"):
        if isinstance(raw, (dict, list)):
            raise _parser_error(f, raw, "string")
        text = raw if isinstance(raw, str) else str(raw).lower() if isinstance(raw, bool) \
            else str(raw)
        return text or None           # Salesforce stores an empty string as null
    if t == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _parser_error(f, raw, "boolean")
    if t in NUMBER_TYPES:
        if isinstance(raw, (bool, dict, list)):
            raise _parser_error(f, raw, "double")
        try:
            number = float(raw) if raw != "" else None
        except ValueError:
            raise _parser_error(f, raw, "double") from None
        if number is None:
            return None
        return round(number) if t == "int" else round(number, f.scale)
    if t == "datetime":
        if not isinstance(raw, str):
            raise _parser_error(f, raw, "datetime")
        if raw == "":
            return None
        try:
            value = parse_datetime(raw)
        except ValueError:
            raise _parser_error(f, raw, "datetime") from None
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if t == "date":
        if not isinstance(raw, str):
            raise _parser_error(f, raw, "date")
        if raw == "":
            return None
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            raise _parser_error(f, raw, "date") from None
    return raw


SYSTEM_STAMPS = frozenset({"CreatedDate", "LastModifiedDate", "SystemModstamp"})


def seed_value(f: FieldDef, raw: Any) -> Any:
    """A value given to SalesforceOrg.insert/update by Python code (seeding, simulation).

    Datetimes keep Salesforce's precision: whole seconds for the audit stamps, milliseconds
    for other datetime fields.
    """
    if raw is None:
        return None
    if f.type == "datetime":
        if isinstance(raw, datetime):
            if raw.tzinfo is None:
                raise ValueError(f"{f.name}: naive datetime {raw!r}; pass an aware UTC datetime")
            value = raw.astimezone(UTC)
        else:
            value = coerce(f, raw)
        if f.name in SYSTEM_STAMPS:
            return value.replace(microsecond=0)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if f.type == "date":
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, date):
            return raw
        return coerce(f, raw)
    return raw
