"""A SOQL subset: tokenizer, recursive-descent parser and a compiler to Python closures.

Supported: ``SELECT f1, Parent.f2 | COUNT() FROM Object [WHERE cond] [GROUP BY f, ...]
[ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``; aggregate functions
(COUNT, COUNT_DISTINCT, MIN, MAX, SUM, AVG, with or without an alias, evaluated in
``aggregate.py``); conditions with AND / OR / NOT and parentheses (mixing AND and OR at one
level needs parentheses, as in Salesforce), the comparison operators, IN / NOT IN, LIKE, and
typed literals (strings with SOQL escapes, numbers, true/false, null, unquoted ISO 8601
datetimes and dates, TODAY / YESTERDAY / LAST_N_DAYS:n). Nothing is ever evaluated with
eval: conditions become closures.

Errors carry Salesforce's codes and wording (``MALFORMED_QUERY``, ``INVALID_FIELD``,
``INVALID_TYPE``, ``INVALID_QUERY_FILTER_OPERATOR``) with the row/column banner Salesforce
prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

from syncagent.sandbox.salesforce import ids
from syncagent.sandbox.salesforce.schema import (
    ID_TYPES,
    NUMBER_TYPES,
    STRING_TYPES,
    FieldDef,
    SObjectDef,
    sobject,
)

Record = dict[str, Any]
Lookup = Callable[[str | None], Record | None]
ObjectLookup = Callable[[str], SObjectDef | None]     # the running user's view of an object
AGGREGATES = frozenset({"count", "count_distinct", "min", "max", "sum", "avg"})
Predicate = Callable[[Record], bool]


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is the errorCode of the 400 body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


KEYWORDS = frozenset({"select", "from", "where", "and", "or", "not", "in", "like", "order",
                      "by", "asc", "desc", "nulls", "first", "last", "limit", "offset",
                      "true", "false", "null", "includes", "excludes", "group", "having",
                      "with", "for", "using"})
_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?![\w.]))
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
""", re.VERBOSE)
# Escaped LIKE wildcards become private-use characters, so "\\%" (a backslash, then the
# wildcard) and "\%" (a literal percent sign) stay distinguishable after unescaping.
LITERAL_PERCENT, LITERAL_UNDERSCORE = "\ue000", "\ue001"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'",
            "\\": "\\", "%": LITERAL_PERCENT, "_": LITERAL_UNDERSCORE}
DATE_LITERALS = frozenset({"today", "yesterday", "tomorrow", "last_n_days", "next_n_days",
                           "n_days_ago", "this_week", "last_week", "this_month", "last_month"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str      # ident, string, number, datetime, date, op, punct, eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    def shown(self) -> str:
        return "<EOF>" if self.kind == "eof" else self.text


def error_banner(soql: str, pos: int, message: str) -> str:
    """Salesforce's error text: the query line, a caret, ERROR at Row:r:Column:c, message."""
    line_start = soql.rfind("\n", 0, pos) + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start:line_end if line_end >= 0 else len(soql)]
    row = soql.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}"


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(soql):
        match = _TOKEN_RE.match(soql, pos)
        if match is None:
            if soql[pos] == "'":
                raise SoqlError("MALFORMED_QUERY", error_banner(
                    soql, pos, f"line 1:{pos} mismatched character '<EOF>' expecting '''"))
            raise SoqlError("MALFORMED_QUERY", error_banner(
                soql, pos, f"unexpected token: {soql[pos]}"))
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(soql)))
    return tokens


def unescape_string(raw: str, soql: str, pos: int) -> str:
    """The value of a quoted literal; escaped LIKE wildcards stay marked for the LIKE matcher."""
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
            continue
        if nxt not in _ESCAPES:
            raise SoqlError("MALFORMED_QUERY", error_banner(
                soql, pos, f"Invalid string literal '{body}'. Illegal character sequence "
                f"'\\{nxt}' in string literal."))
        out.append(_ESCAPES[nxt])
        i += 2
    return "".join(out)


# ---------------------------------------------------------------- AST


@dataclass(slots=True)
class FieldPath:
    """A selected or filtered field: relationship hops, then the final field."""

    text: str                          # canonical dotted path, e.g. "Owner.Email"
    hops: list[FieldDef]               # reference fields walked (Owner -> OwnerId)
    target: FieldDef
    target_object: str                 # object holding ``target`` (first of referenceTo)


@dataclass(slots=True)
class Literal:
    kind: str                          # string number boolean null datetime date daterange
    value: Any
    pos: int


@dataclass(slots=True)
class Cond:
    op: str                            # and or not cmp in notin like
    children: list[Cond] = field(default_factory=list)
    path: FieldPath | None = None
    operator: str = ""
    literals: list[Literal] = field(default_factory=list)


@dataclass(slots=True)
class OrderItem:
    path: FieldPath
    descending: bool
    nulls_first: bool


@dataclass(slots=True)
class Aggregate:
    """An aggregate function in the SELECT list; ``name`` is its alias or ``exprN``."""

    function: str                      # count count_distinct min max sum avg
    path: FieldPath
    name: str


@dataclass(slots=True)
class Query:
    soql: str
    obj: SObjectDef
    fields: list[FieldPath]
    count_only: bool
    where: Cond | None
    order: list[OrderItem]
    limit: int | None
    offset: int
    aggregates: list[Aggregate] = field(default_factory=list)
    group_by: list[FieldPath] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)    # selected path (lower) -> alias

    @property
    def is_aggregate(self) -> bool:
        """Rows are AggregateResult groups (not records): an aggregate or GROUP BY is used."""
        return bool(self.aggregates or self.group_by)


@dataclass(slots=True)
class _AggregateToken:
    function: str
    argument: Token
    alias: str | None


# ---------------------------------------------------------------- parser


class Parser:
    """Recursive descent over the token list; resolves field names against the schema."""

    def __init__(self, soql: str, objects: ObjectLookup = sobject) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.i = 0
        self.objects = objects
        self.field_aliases: dict[int, str] = {}    # token position of a plain field -> alias

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text.lower() in words

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            self.unexpected()
        return self.take()

    def expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.text == ch):
            self.unexpected()
        return self.take()

    def unexpected(self, token: Token | None = None) -> NoReturn:
        token = token or self.tok
        raise SoqlError("MALFORMED_QUERY", error_banner(
            self.soql, token.pos, f"unexpected token: {token.shown()}"))

    def fail(self, code: str, pos: int, message: str) -> NoReturn:
        raise SoqlError(code, error_banner(self.soql, pos, message))

    # grammar
    def parse(self) -> Query:
        self.expect_kw("select")
        raw_fields, count_only = self.select_list()
        self.expect_kw("from")
        obj_token = self.take()
        if obj_token.kind != "ident" or obj_token.text.lower() in KEYWORDS:
            self.unexpected(obj_token)
        obj = self.objects(obj_token.text)
        if obj is None:
            self.fail("INVALID_TYPE", obj_token.pos,
                      f"sObject type '{obj_token.text}' is not supported. If you are attempting "
                      "to use a custom object, be sure to append the '__c' after the entity "
                      "name. Please reference your WSDL or the describe call for the "
                      "appropriate names.")
        plain = [t for t in raw_fields if isinstance(t, Token)]
        fields = self.resolve_select(obj, plain)
        aggregates = self.resolve_aggregates(
            obj, [t for t in raw_fields if isinstance(t, _AggregateToken)])
        where = None
        if self.is_kw("where"):
            self.take()
            where = self.condition(obj)
        group_by: list[FieldPath] = []
        if self.is_kw("group"):
            self.take()
            self.expect_kw("by")
            group_by = self.group_list(obj)
        order: list[OrderItem] = []
        if self.is_kw("order"):
            self.take()
            self.expect_kw("by")
            order = self.order_list(obj)
        limit = offset = None
        if self.is_kw("limit"):
            self.take()
            limit = self.integer()
        if self.is_kw("offset"):
            self.take()
            offset = self.integer()
            if offset > 2000:
                self.fail("NUMBER_OUTSIDE_VALID_RANGE", self.tokens[self.i - 1].pos,
                          "Maximum SOQL offset allowed is 2000")
        if self.tok.kind != "eof":
            self.unexpected()
        if count_only and order:
            self.fail("MALFORMED_QUERY", 0, "ORDER BY is not allowed with COUNT()")
        if count_only and group_by:
            self.fail("MALFORMED_QUERY", 0, "GROUP BY is not allowed with COUNT()")
        aliases = {path.text.lower(): self.field_aliases[token.pos]
                   for path, token in zip(fields, plain, strict=True)
                   if token.pos in self.field_aliases}
        query = Query(self.soql, obj, fields, count_only, where, order, limit, offset or 0,
                      aggregates, group_by, aliases)
        if query.is_aggregate:
            self.check_grouping(query, plain)
        elif aliases:     # SOQL allows aliases in aggregate queries only
            position = min(t.pos for t in plain if t.pos in self.field_aliases)
            self.fail("MALFORMED_QUERY", position, "Aliases are allowed only in queries "
                      "with aggregate functions or GROUP BY")
        return query

    def check_grouping(self, query: Query, tokens: list[Token]) -> None:
        """In an aggregate query every plain field is grouped (and so is every ORDER BY)."""
        grouped = {p.text.lower() for p in query.group_by}
        for path, token in zip(query.fields, tokens, strict=True):
            if path.text.lower() not in grouped:
                self.fail("MALFORMED_QUERY", token.pos,
                          f"Field must be grouped or aggregated: {path.target.name}")
        for item in query.order:
            if item.path.text.lower() not in grouped:
                self.fail("MALFORMED_QUERY", 0, "Ordered field must be grouped or aggregated: "
                          f"{item.path.target.name}")

    def group_list(self, obj: SObjectDef) -> list[FieldPath]:
        paths = []
        while True:
            token = self.take()
            if token.kind != "ident" or token.text.lower() in KEYWORDS:
                self.unexpected(token)
            path = self.resolve(obj, token)
            f = path.target
            # describe's groupable: numbers, datetimes and long text cannot be grouped
            if f.type in ("double", "currency", "percent", "datetime") or f.is_long_text:
                self.fail("INVALID_FIELD", token.pos,
                          f"field '{f.name}' can not be grouped in a query call")
            paths.append(path)
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.take()
                continue
            return paths

    def resolve_aggregates(self, obj: SObjectDef, items: list[_AggregateToken],
                           ) -> list[Aggregate]:
        """Aggregates get their alias, or expr0, expr1, ... in order among the unaliased."""
        out: list[Aggregate] = []
        unnamed = 0
        for item in items:
            path = self.resolve(obj, item.argument)
            f = path.target
            if item.function in ("sum", "avg") and f.type not in NUMBER_TYPES:
                self.fail("MALFORMED_QUERY", item.argument.pos, "Invalid field type "
                          f"{f.type} for {item.function.upper()}: {f.name}")
            name = item.alias
            if name is None:
                name = f"expr{unnamed}"
                unnamed += 1
            out.append(Aggregate(item.function, path, name))
        return out

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            self.unexpected(token)
        return int(token.text)

    def select_list(self) -> tuple[list[Token | _AggregateToken], bool]:
        if self.is_kw("count") and self.tokens[self.i + 1].text == "(" and \
                self.tokens[self.i + 2].text == ")":
            self.take()
            self.expect_punct("(")
            self.expect_punct(")")
            return [], True
        items: list[Token | _AggregateToken] = []
        while True:
            token = self.take()
            if token.kind != "ident" or token.text.lower() in KEYWORDS:
                self.unexpected(token)
            if token.text.lower() in AGGREGATES and self.tok.text == "(":
                items.append(self.aggregate_item(token))
            else:
                items.append(token)
                if self.tok.kind == "ident" and self.tok.text.lower() not in KEYWORDS:
                    self.field_aliases[token.pos] = self.take().text   # "Name n"
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.take()
                continue
            return items, False

    def aggregate_item(self, function: Token) -> _AggregateToken:
        """FUNC(field) [alias]: COUNT() alone is the count-only query, handled above."""
        self.expect_punct("(")
        argument = self.take()
        if argument.kind != "ident" or argument.text.lower() in KEYWORDS:
            self.unexpected(argument)
        self.expect_punct(")")
        alias = None
        if self.tok.kind == "ident" and self.tok.text.lower() not in KEYWORDS:
            alias = self.take().text
        return _AggregateToken(function.text.lower(), argument, alias)

    def resolve_select(self, obj: SObjectDef, tokens: list[Token]) -> list[FieldPath]:
        seen: set[str] = set()
        paths = []
        for token in tokens:
            path = self.resolve(obj, token)
            key = path.text.lower()
            if key in seen:
                self.fail("MALFORMED_QUERY", token.pos, f"duplicate field selected: {path.text}")
            seen.add(key)
            paths.append(path)
        return paths

    def resolve(self, obj: SObjectDef, token: Token) -> FieldPath:
        """A dotted name resolved through relationship names to a field."""
        parts = token.text.split(".")
        if len(parts) > 1 and parts[0].lower() == obj.name.lower():
            parts = parts[1:]            # "Lead.Email" on Lead is allowed
        current = obj
        hops: list[FieldDef] = []
        for part in parts[:-1]:
            ref = current.relationships.get(part.lower())
            if ref is None:
                self.fail("INVALID_FIELD", token.pos,
                          f"Didn't understand relationship '{part}' in field path. If you are "
                          "attempting to use a custom relationship, be sure to append the "
                          "'__r' after the custom relationship name. Please reference your "
                          "WSDL or the describe call for the appropriate names.")
            hops.append(ref)
            parent = self.objects(ref.reference_to[-1] if ref.reference_to[0] == "Group"
                                  else ref.reference_to[0])
            assert parent is not None, ref.reference_to     # standard objects always exist
            current = parent
        target = current.field(parts[-1])
        if target is None:
            entity = "Name" if hops and len(hops[-1].reference_to) > 1 else current.name
            self.fail("INVALID_FIELD", token.pos,
                      f"No such column '{parts[-1]}' on entity '{entity}'. If you are "
                      "attempting to use a custom field, be sure to append the '__c' after "
                      "the custom field name. Please reference your WSDL or the describe call "
                      "for the appropriate names.")
        text = ".".join([*(h.relationship or "" for h in hops), target.name])
        return FieldPath(text, hops, target, current.name)

    def condition(self, obj: SObjectDef) -> Cond:
        """cond := term ((AND term)* | (OR term)*) -- no mixing without parentheses."""
        first = self.term(obj)
        if not self.is_kw("and", "or"):
            return first
        joiner = self.tok.text.lower()
        children = [first]
        while self.is_kw("and", "or"):
            if self.tok.text.lower() != joiner:
                self.unexpected()
            self.take()
            children.append(self.term(obj))
        return Cond(joiner, children)

    def term(self, obj: SObjectDef) -> Cond:
        if self.is_kw("not"):
            self.take()
            return Cond("not", [self.term(obj)])
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.take()
            inner = self.condition(obj)
            self.expect_punct(")")
            return inner
        return self.comparison(obj)

    def comparison(self, obj: SObjectDef) -> Cond:
        token = self.take()
        if token.kind != "ident" or token.text.lower() in KEYWORDS:
            self.unexpected(token)
        path = self.resolve(obj, token)
        if path.target.is_long_text:
            self.fail("INVALID_FIELD", token.pos, f"field '{path.target.name}' can not be "
                      "filtered in a query call")
        if self.is_kw("not"):
            self.take()
            self.expect_kw("in")
            return Cond("notin", path=path, literals=self.literal_list(path))
        if self.is_kw("in"):
            self.take()
            return Cond("in", path=path, literals=self.literal_list(path))
        if self.is_kw("like"):
            self.take()
            lit = self.literal(path)
            if lit.kind != "string":
                self.unexpected(self.tokens[self.i - 1])
            return Cond("like", path=path, literals=[lit])
        if self.tok.kind != "op":
            self.unexpected()
        operator = self.take().text
        operator = "!=" if operator == "<>" else operator
        lit = self.literal(path)
        if lit.kind == "null" and operator not in ("=", "!="):
            self.fail("MALFORMED_QUERY", lit.pos, f"invalid operator for null: {operator}")
        return Cond("cmp", path=path, operator=operator, literals=[lit])

    def literal_list(self, path: FieldPath) -> list[Literal]:
        self.expect_punct("(")
        items = [self.literal(path)]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.take()
            items.append(self.literal(path))
        self.expect_punct(")")
        return items

    def literal(self, path: FieldPath) -> Literal:
        token = self.take()
        f = path.target
        if token.kind == "ident" and token.text.lower() in ("true", "false", "null"):
            word = token.text.lower()
            if word == "null":
                return Literal("null", None, token.pos)
            if f.type != "boolean":
                self.type_error(token, f, quoted=False)
            return Literal("boolean", word == "true", token.pos)
        if token.kind == "ident" and token.text.split(":")[0].lower() in DATE_LITERALS:
            return self.date_literal(token, f)
        if token.kind == "string":
            value = unescape_string(token.text, self.soql, token.pos)
            if f.type in ID_TYPES:
                plain = plain_text(value)
                if not ids.is_valid(plain):
                    self.fail("INVALID_QUERY_FILTER_OPERATOR", token.pos,
                              f"invalid ID field: {plain}")
                return Literal("string", ids.to18(plain), token.pos)
            if f.type not in STRING_TYPES:
                self.type_error(token, f, quoted=True)
            return Literal("string", value, token.pos)
        if token.kind == "number":
            if f.type not in NUMBER_TYPES:
                self.type_error(token, f, quoted=False)
            return Literal("number", float(token.text), token.pos)
        if token.kind == "datetime":
            if f.type != "datetime":
                self.type_error(token, f, quoted=False)
            return Literal("datetime", parse_datetime(token.text), token.pos)
        if token.kind == "date":
            if f.type != "date":
                self.type_error(token, f, quoted=False)
            return Literal("date", date.fromisoformat(token.text), token.pos)
        self.unexpected(token)

    def date_literal(self, token: Token, f: FieldDef) -> Literal:
        name = token.text.lower()
        if f.type not in ("date", "datetime"):
            self.type_error(token, f, quoted=False)
        n = 0
        if name in ("last_n_days", "next_n_days", "n_days_ago"):
            self.expect_punct(":")
            n = self.integer()
        return Literal("daterange", (name, n), token.pos)

    def type_error(self, token: Token, f: FieldDef, *, quoted: bool) -> NoReturn:
        names = {"double": "double", "currency": "double", "percent": "double", "int": "double",
                 "boolean": "boolean", "datetime": "dateTime", "date": "date"}
        expected = names.get(f.type, "string")
        if expected == "string":
            how = "should be enclosed in quotes"
        else:
            how = "should not be enclosed in quotes"
        self.fail("INVALID_FIELD", token.pos, f"value of filter criterion for field "
                  f"'{f.name}' must be of type {expected} and {how}")

    def order_list(self, obj: SObjectDef) -> list[OrderItem]:
        items = []
        while True:
            token = self.take()
            if token.kind != "ident" or token.text.lower() in KEYWORDS:
                self.unexpected(token)
            path = self.resolve(obj, token)
            if path.target.is_long_text:
                self.fail("INVALID_FIELD", token.pos, f"field '{path.target.name}' can not be "
                          "sorted in a query call")
            descending = False
            if self.is_kw("asc", "desc"):
                descending = self.take().text.lower() == "desc"
            nulls_first = not descending
            if self.is_kw("nulls"):
                self.take()
                if not self.is_kw("first", "last"):
                    self.unexpected()
                nulls_first = self.take().text.lower() == "first"
            items.append(OrderItem(path, descending, nulls_first))
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.take()
                continue
            return items


def parse(soql: str, objects: ObjectLookup = sobject) -> Query:
    """Parse a SOQL string against the objects the running user sees (``objects``: a name ->
    its view); raises SoqlError with Salesforce's code and message."""
    if len(soql) > 100_000:
        raise SoqlError("MALFORMED_QUERY", "Query is too long: the maximum length is "
                        "100,000 characters")
    return Parser(soql, objects).parse()


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 datetime as SOQL and the REST API accept it (Z, +hh:mm or +hhmm)."""
    text = text.strip().replace(" ", "+")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# ---------------------------------------------------------------- compiler


def getter(path: FieldPath, lookup: Lookup) -> Callable[[Record], Any]:
    """A function reading the path's value from a record, walking parents via lookup."""
    name = path.target.name
    if not path.hops:
        return lambda rec: rec.get(name)
    hop_names = [h.name for h in path.hops]

    def walk(rec: Record) -> Any:
        current: Record | None = rec
        for hop in hop_names:
            current = lookup(current.get(hop)) if current is not None else None
        return current.get(name) if current is not None else None

    return walk


def _date_range(name: str, n: int, now: datetime) -> tuple[datetime, datetime]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    if name == "today":
        return today, today + day
    if name == "yesterday":
        return today - day, today
    if name == "tomorrow":
        return today + day, today + 2 * day
    if name == "last_n_days":
        return today - n * day, today + day
    if name == "next_n_days":
        return today + day, today + (n + 1) * day
    if name == "n_days_ago":
        return today - n * day, today - (n - 1) * day
    week = today - timedelta(days=(today.weekday() + 1) % 7)     # weeks start on Sunday
    if name == "this_week":
        return week, week + 7 * day
    if name == "last_week":
        return week - 7 * day, week
    month = today.replace(day=1)
    next_month = (month + 32 * day).replace(day=1)
    if name == "this_month":
        return month, next_month
    last_month = (month - day).replace(day=1)
    return last_month, month


def _norm(f: FieldDef) -> Callable[[Any], Any]:
    """How values of this field compare: strings case-insensitively, the rest as stored."""
    if f.type in STRING_TYPES:
        return lambda v: v.lower() if isinstance(v, str) else v
    if f.type in NUMBER_TYPES:
        return lambda v: float(v) if v is not None else None
    return lambda v: v


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def compile_condition(cond: Cond, lookup: Lookup, now: datetime) -> Predicate:
    """Turn a condition tree into one predicate over stored records.

    Comparisons on the record's own fields get specialised closures (no getter or
    normaliser call per row): queries scan up to 100,000 rows per page request.
    """
    if cond.op in ("and", "or"):
        parts = [compile_condition(c, lookup, now) for c in cond.children]
        if len(parts) == 2:
            a, b = parts
            if cond.op == "and":
                return lambda rec: a(rec) and b(rec)
            return lambda rec: a(rec) or b(rec)
        if cond.op == "and":
            return lambda rec: all(p(rec) for p in parts)
        return lambda rec: any(p(rec) for p in parts)
    if cond.op == "not":
        inner = compile_condition(cond.children[0], lookup, now)
        return lambda rec: not inner(rec)
    assert cond.path is not None
    f = cond.path.target
    if not cond.path.hops:
        fast = _direct_predicate(cond, f, now)
        if fast is not None:
            return fast
    get = getter(cond.path, lookup)
    norm = _norm(f)
    if cond.op in ("in", "notin"):
        values = {_literal_value(lit, f, norm) for lit in cond.literals}
        if cond.op == "in":
            return lambda rec: norm(get(rec)) in values
        return lambda rec: norm(get(rec)) not in values
    lit = cond.literals[0]
    if cond.op == "like":
        regex = _like_regex(str(lit.value))
        return lambda rec: isinstance(v := get(rec), str) and regex.fullmatch(v) is not None
    if lit.kind == "daterange":
        name, n = lit.value
        return _range_predicate(get, f, cond.operator, _date_range(name, n, now))
    value = _literal_value(lit, f, norm)
    op = cond.operator
    if op == "=":
        if value is None:
            return lambda rec: get(rec) is None
        return lambda rec: norm(get(rec)) == value
    if op == "!=":
        if value is None:
            return lambda rec: get(rec) is not None
        return lambda rec: norm(get(rec)) != value
    compare = _CMP[op]

    def ordered(rec: Record) -> bool:
        v = norm(get(rec))
        return v is not None and compare(v, value)

    return ordered


def _direct_predicate(cond: Cond, f: FieldDef, now: datetime) -> Predicate | None:
    """Specialised closures for the common shapes on the record's own fields, or None."""
    name = f.name
    text = f.type in STRING_TYPES
    norm = _norm(f)
    if cond.op in ("in", "notin"):
        values = {_literal_value(lit, f, norm) for lit in cond.literals}
        if text:
            has_null = None in values
            if cond.op == "in":
                return lambda r: ((v := r.get(name)) is None and has_null) or \
                    (isinstance(v, str) and v.lower() in values)
            return lambda r: not (((v := r.get(name)) is None and has_null)
                                  or (isinstance(v, str) and v.lower() in values))
        if cond.op == "in":
            return lambda r: r.get(name) in values
        return lambda r: r.get(name) not in values
    lit = cond.literals[0]
    if cond.op != "cmp" or lit.kind == "daterange":
        return None
    value = _literal_value(lit, f, norm)
    op = cond.operator
    if value is None:
        if op == "=":
            return lambda r: r.get(name) is None
        return lambda r: r.get(name) is not None
    if text:
        if op == "=":
            return lambda r: (v := r.get(name)) is not None and v.lower() == value
        if op == "!=":
            return lambda r: (v := r.get(name)) is None or v.lower() != value
        compare = _CMP[op]
        return lambda r: (v := r.get(name)) is not None and compare(v.lower(), value)
    if op == "=":
        return lambda r: r.get(name) == value
    if op == "!=":
        return lambda r: r.get(name) != value
    if op == ">=":
        return lambda r: (v := r.get(name)) is not None and v >= value
    if op == ">":
        return lambda r: (v := r.get(name)) is not None and v > value
    if op == "<=":
        return lambda r: (v := r.get(name)) is not None and v <= value
    return lambda r: (v := r.get(name)) is not None and v < value


def plain_text(value: str) -> str:
    """A string literal outside LIKE: escaped wildcards are just the characters."""
    return value.replace(LITERAL_PERCENT, "%").replace(LITERAL_UNDERSCORE, "_")


def _literal_value(lit: Literal, f: FieldDef, norm: Callable[[Any], Any]) -> Any:
    value = lit.value
    if lit.kind == "string" and f.type in STRING_TYPES:
        value = plain_text(value)
    return norm(value)


def _range_predicate(get: Callable[[Record], Any], f: FieldDef, op: str,
                     bounds: tuple[datetime, datetime]) -> Predicate:
    start: Any
    end: Any
    start, end = bounds
    if f.type == "date":
        start, end = start.date(), end.date()
    checks: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: start <= v < end, "!=": lambda v: not start <= v < end,
        "<": lambda v: v < start, "<=": lambda v: v < end,
        ">": lambda v: v >= end, ">=": lambda v: v >= start,
    }
    check = checks[op]

    def pred(rec: Record) -> bool:
        v = get(rec)
        if v is None:
            return op == "!="
        return check(v)

    return pred


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = [".*" if ch == "%" else "." if ch == "_" else re.escape(plain_text(ch))
           for ch in pattern]
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def sort_records(rows: list[Record], order: list[OrderItem], lookup: Lookup) -> None:
    """Sort in place by several keys: stable sorts from the last key to the first."""
    for item in reversed(order):
        get = getter(item.path, lookup)
        norm = _norm(item.path.target)
        # Tuple (group, value): group puts nulls first or last after any reversal.
        null_group = 0 if item.nulls_first != item.descending else 2

        def key(rec: Record, get: Callable[[Record], Any] = get,
                norm: Callable[[Any], Any] = norm, null_group: int = null_group) -> Any:
            v = get(rec)
            return (null_group, 0) if v is None else (1, norm(v))

        rows.sort(key=key, reverse=item.descending)
