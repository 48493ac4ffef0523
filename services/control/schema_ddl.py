"""Parse the Spark SQL types and column DDL users write in a schema, so mistakes fail at save time.

Only what a table column can hold: primitives, decimal(p,s), char/varchar(n), array<T>, map<K,V> and
struct<name: T, ...>. The executor hands the same text to Spark; this check only makes errors early and clear.
"""

from __future__ import annotations

import re

from services.control.models import Column
from services.shared.spark_types import quote as _quote
from services.shared.spark_types import schema_columns

PRIMITIVES = frozenset(
    {
        "boolean",
        "tinyint",
        "byte",
        "smallint",
        "short",
        "int",
        "integer",
        "bigint",
        "long",
        "float",
        "real",
        "double",
        "string",
        "binary",
        "date",
        "timestamp",
        "timestamp_ntz",
        "timestamp_ltz",
    }
)
# Spark's other names for a type → the name Spark reports it by (DataType.simpleString), as the table does.
_ALIASES = {
    "long": "bigint",
    "integer": "int",
    "short": "smallint",
    "byte": "tinyint",
    "real": "float",
    "timestamp_ltz": "timestamp",
}
_TOKEN = re.compile(r"\s*(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),:])")
MAX_NAME_LENGTH = 128


class DdlError(ValueError):
    """The text is not a valid type or column list; the message says where."""


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise DdlError(f"unexpected {text[position:].strip()[:20]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._at = 0

    def peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise DdlError(f"ends early; expected {expected!r}" if expected else "ends early")
        if expected is not None and token.lower() != expected:
            raise DdlError(f"expected {expected!r}, found {token!r}")
        self._at += 1
        return token

    def done(self) -> bool:
        return self._at == len(self._tokens)

    def name(self) -> str:
        token = self.take()
        if token.startswith("`"):
            return token[1:-1].replace("``", "`")
        if not re.match(r"^[A-Za-z_]", token):
            raise DdlError(f"{token!r} is not a column name")
        return token

    def number(self) -> int:
        token = self.take()
        if not token.isdigit():
            raise DdlError(f"expected a number, found {token!r}")
        return int(token)

    def type(self) -> str:
        word = self.take().lower()
        if word in PRIMITIVES:
            return _ALIASES.get(word, word)
        if word in ("decimal", "dec", "numeric"):
            if self.peek() != "(":
                return "decimal(10,0)"
            self.take("(")
            precision = self.number()
            scale = 0
            if self.peek() == ",":
                self.take(",")
                scale = self.number()
            self.take(")")
            if not 1 <= precision <= 38 or scale > precision:
                raise DdlError(f"decimal({precision},{scale}): precision must be 1-38 and scale at most precision")
            return f"decimal({precision},{scale})"
        if word in ("char", "varchar"):
            self.take("(")
            length = self.number()
            self.take(")")
            return f"{word}({length})"
        if word == "array":
            self.take("<")
            element = self.type()
            self.take(">")
            return f"array<{element}>"
        if word == "map":
            self.take("<")
            key = self.type()
            self.take(",")
            value = self.type()
            self.take(">")
            return f"map<{key},{value}>"
        if word == "struct":
            self.take("<")
            fields: list[str] = []
            while self.peek() != ">":
                if fields:
                    self.take(",")
                field_name = self.name()
                if self.peek() == ":":  # Spark allows struct<a int> as well as struct<a: int>
                    self.take(":")
                fields.append(f"{_quote(field_name)}:{self.type()}")
            self.take(">")
            return f"struct<{','.join(fields)}>"
        raise DdlError(f"{word!r} is not a Spark SQL type (e.g. string, bigint, double, date, decimal(10,2))")


def parse_type(text: str) -> str:
    """The type in a normal form, or DdlError."""
    parser = _Parser(text)
    normal = parser.type()
    if not parser.done():
        raise DdlError(f"unexpected {parser.peek()!r} after the type")
    return normal


def parse_columns(ddl: str) -> list[Column]:
    """'id BIGINT, name STRING' → columns, or DdlError naming the problem."""
    parser = _Parser(ddl)
    columns: list[Column] = []
    while not parser.done():
        if columns:
            parser.take(",")
        name = parser.name()
        if parser.peek() in (None, ","):
            raise DdlError(f"column {name!r} has no type")
        columns.append(Column(name=name, type=parser.type()))
    if not columns:
        raise DdlError("names no column")
    return columns


def to_ddl(columns: list[Column] | tuple[Column, ...]) -> str:
    return ", ".join(f"{_quote(c.name)} {c.type}" for c in columns)


def check_name(name: str) -> str | None:
    """Why a column name cannot be used, or None."""
    if not name.strip():
        return "a column name must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a column name must be at most {MAX_NAME_LENGTH} characters"
    if any(ord(ch) < 32 for ch in name):
        return "a column name must not contain control characters"
    return None


def columns_from_spark_json(schema_json: str) -> list[Column]:
    """The top-level columns of a schema in Spark's JSON form (as recorded by the executor)."""
    return [Column(name=name, type=type_) for name, type_ in schema_columns(schema_json)]
