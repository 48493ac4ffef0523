"""Properties of ingestion validation, over generated configurations rather than hand-picked ones."""

from __future__ import annotations

import string
from dataclasses import fields, is_dataclass, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoloader.control.v1 import control_pb2 as pb
from services.control.convert import ingestion_from_pb, ingestion_to_pb
from services.control.models import (
    Column,
    Destination,
    Ingestion,
    Listing,
    MetadataColumns,
    Schedule,
    SchemaPolicy,
    Source,
    Webhook,
)
from services.control.validation import EVOLUTION_MODES, FORMATS, validate
from services.shared.errors import FieldViolation, InvalidArgument

PROFILE = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# Text that reaches the edges of the grammars: separators, traversal, control characters, non-ASCII.
_TRICKY = st.sampled_from(["", ".", "..", "/", "%2e%2e", "\n", "\t", "\x00", " ", "é", "s3://", "file://", "*", "`"])
_WORDS = st.text(alphabet=string.ascii_letters + string.digits + "_-.", max_size=12)
TEXT = st.lists(st.one_of(_TRICKY, _WORDS, st.text(max_size=8)), max_size=5).map("".join)

_LOWER = string.ascii_lowercase + string.digits
INGESTION_IDS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
IDENTIFIERS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
BUCKETS = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
SEGMENTS = st.lists(st.text(alphabet=_LOWER + "_-.", min_size=1, max_size=8).filter(lambda s: s not in (".", "..")))


def _uri(scheme_root: str, segments: list[str]) -> str:
    return scheme_root + "".join(f"{s}/" for s in segments)


VALID_URIS = st.one_of(
    st.builds(lambda b, s: _uri(f"s3://{b}/", s), BUCKETS, SEGMENTS),
    st.builds(lambda s: _uri("file:///", s), SEGMENTS),
)
CRONS = st.builds(
    lambda m, h, dom, dow: f"{m} {h} {dom} * {dow}",
    st.sampled_from(["*", "0", "*/15", "5,35"]),
    st.sampled_from(["*", "2", "0-6"]),
    st.sampled_from(["*", "1", "28"]),
    st.sampled_from(["*", "1-5", "0"]),
)


@st.composite
def valid_ingestions(draw: st.DrawFn) -> Ingestion:
    """Configurations inside every rule, including the optional parts."""
    columns = draw(st.lists(IDENTIFIERS, min_size=1, max_size=4, unique_by=str.lower))
    merge = draw(st.booleans())
    return Ingestion(
        ingestion_id=draw(INGESTION_IDS),
        name=draw(st.text(alphabet=string.ascii_letters + " ", max_size=20).filter(str.strip)),
        source=Source(
            uri=draw(VALID_URIS),
            pattern=draw(st.sampled_from(["", "*.csv", "2026/**/*.json"])),
            format=draw(st.sampled_from(FORMATS)),
            options=draw(
                st.dictionaries(
                    IDENTIFIERS.map(lambda k: "o" + k), st.text(max_size=10).filter(lambda v: "\x00" not in v)
                )
            ),
            listing=Listing(
                mode=draw(st.sampled_from(["full", "incremental"])),
                full_listing_every_runs=draw(st.integers(1, 10_000)),
                full_listing_interval_seconds=draw(st.integers(0, 3600)),
            ),
        ),
        destination=Destination(
            table=".".join(draw(st.lists(IDENTIFIERS, min_size=2, max_size=3))),
            write_mode="merge" if merge else "append",
            merge_keys=(columns[0],) if merge else (),
            partition_by=draw(st.sampled_from([(), (columns[-1],), (f"bucket(4, {columns[-1]})",)])),
        ),
        schema=SchemaPolicy(
            columns=tuple(Column(name=c, type=draw(st.sampled_from(["string", "bigint", "int"]))) for c in columns),
            evolution_mode=draw(st.sampled_from(EVOLUTION_MODES)),
            sample_files=draw(st.integers(1, 100_000)),
            sample_bytes=draw(st.integers(1, 2**40)),
            rescue_data=draw(st.booleans()),
        ),
        metadata_columns=MetadataColumns(enabled=draw(st.booleans()), prefix=draw(st.sampled_from(["_", "src_"]))),
        max_retries=draw(st.integers(0, 100)),
        max_files_per_run=draw(st.none() | st.integers(1, 2**40)),
        max_bytes_per_run=draw(st.none() | st.integers(1, 2**40)),
        schedule=draw(st.none() | st.builds(Schedule, cron=CRONS, timezone=st.sampled_from(["", "UTC", "Asia/Tokyo"]))),
        enabled=draw(st.booleans()),
        webhook=draw(
            st.none()
            | st.builds(
                Webhook,
                url=st.just("https://hooks.example.com/autoloader"),
                secret=st.text(alphabet=string.ascii_letters, min_size=16, max_size=40),
                max_attempts=st.integers(1, 20),
            )
        ),
    )


def _mutated(base: Ingestion, path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    return replace(base, **{path[0]: _mutated(getattr(base, path[0]), path[1:], value)})


# Every string field of the configuration, by path, with what a generated value there looks like.
_STRING_PATHS = [
    ("ingestion_id",),
    ("name",),
    ("source", "uri"),
    ("source", "pattern"),
    ("source", "format"),
    ("source", "endpoint_url"),
    ("source", "region"),
    ("source", "credentials_ref"),
    ("source", "listing", "mode"),
    ("destination", "table"),
    ("destination", "write_mode"),
    ("destination", "merge_order_by"),
    ("schema", "ddl"),
    ("schema", "evolution_mode"),
    ("metadata_columns", "prefix"),
]


@st.composite
def any_ingestions(draw: st.DrawFn) -> Ingestion:
    """A valid configuration with some fields replaced by arbitrary values (text, numbers, collections)."""
    ingestion = draw(valid_ingestions())
    for path in draw(st.lists(st.sampled_from(_STRING_PATHS), max_size=4)):
        ingestion = _mutated(ingestion, path, draw(TEXT))
    ints = {
        ("max_retries",): st.integers(-(2**31), 2**31 - 1),
        ("schema", "sample_files"): st.integers(-(2**31), 2**31 - 1),
        ("schema", "sample_bytes"): st.integers(-(2**63), 2**63 - 1),
        ("source", "listing", "full_listing_every_runs"): st.integers(-(2**31), 2**31 - 1),
        ("max_files_per_run",): st.none() | st.integers(-(2**63), 2**63 - 1),
    }
    for path in draw(st.lists(st.sampled_from(sorted(ints)), max_size=2)):
        ingestion = _mutated(ingestion, path, draw(ints[path]))
    collections = {
        ("source", "options"): st.dictionaries(TEXT, TEXT, max_size=3),
        ("destination", "merge_keys"): st.lists(TEXT, max_size=3).map(tuple),
        ("destination", "partition_by"): st.lists(TEXT, max_size=3).map(tuple),
        ("destination", "table_properties"): st.dictionaries(TEXT, TEXT, max_size=3),
        ("schema", "hints"): st.dictionaries(TEXT, TEXT, max_size=3),
        ("schema", "columns"): st.lists(st.builds(Column, name=TEXT, type=TEXT), max_size=3).map(tuple),
        ("schedule",): st.none() | st.builds(Schedule, cron=TEXT | CRONS, timezone=TEXT),
        ("webhook",): st.none() | st.builds(Webhook, url=TEXT, secret=TEXT, max_attempts=st.integers(-5, 30)),
    }
    for path in draw(st.lists(st.sampled_from(sorted(collections)), max_size=3)):
        ingestion = _mutated(ingestion, path, draw(collections[path]))
    return ingestion


def _resolves(ingestion: Ingestion, path: str) -> bool:
    """Whether a violation's JSON path names a field of the configuration (a map entry or list item included)."""
    value: Any = ingestion
    rest = path
    while rest:
        if isinstance(value, dict):
            return rest in value  # map keys may hold dots: the rest of the path is the key
        head, _, rest = rest.partition(".")
        name, _, index = head.partition("[")
        if not is_dataclass(value) or name not in {f.name for f in fields(value)}:
            return False
        value = getattr(value, name)
        if index:
            position = int(index.rstrip("]"))
            if not isinstance(value, tuple) or not 0 <= position < len(value):
                return False
            value = value[position]
    return True


def _violations(ingestion: Ingestion) -> list[FieldViolation]:
    try:
        validate(ingestion)
    except InvalidArgument as error:
        assert error.violations, "an InvalidArgument without violations"
        return list(error.violations)
    return []


@PROFILE
@given(any_ingestions())
def test_any_configuration_passes_or_names_real_fields_and_reasons(ingestion: Ingestion) -> None:
    for violation in _violations(ingestion):  # any other exception fails the test
        assert _resolves(ingestion, violation.field), violation
        assert violation.description.strip(), violation


@PROFILE
@given(valid_ingestions())
def test_valid_configurations_pass_and_round_trip_through_the_proto_unchanged(ingestion: Ingestion) -> None:
    validate(ingestion)
    message = ingestion_to_pb(ingestion, reveal_secrets=True)
    assert ingestion_from_pb(pb.Ingestion.FromString(message.SerializeToString())) == ingestion


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, tuple):
        return any(_contains_nul(v) for v in value)
    if is_dataclass(value):
        return any(_contains_nul(getattr(value, f.name)) for f in fields(value))
    return False


@PROFILE
@given(any_ingestions())
def test_a_nul_character_anywhere_is_refused(ingestion: Ingestion) -> None:
    # PostgreSQL cannot store U+0000: a configuration holding one must never get past validation.
    if _contains_nul(ingestion):
        assert _violations(ingestion)


TRAVERSAL = st.sampled_from(["..", "%2e%2e", "%2E%2E", ".%2e", "%2e."])


@PROFILE
@given(valid_ingestions(), SEGMENTS, SEGMENTS, TRAVERSAL, st.booleans())
def test_dot_dot_segments_in_the_source_uri_are_refused(
    ingestion: Ingestion, before: list[str], after: list[str], dots: str, on_s3: bool
) -> None:
    root = "s3://bucket-1/" if on_s3 else "file:///"
    uri = root + "/".join([*before, dots, *after])
    broken = replace(ingestion, source=replace(ingestion.source, uri=uri))
    assert "source.uri" in {v.field for v in _violations(broken)}


@PROFILE
@given(valid_ingestions(), SEGMENTS, SEGMENTS)
def test_dot_dot_segments_in_the_pattern_are_refused(ingestion: Ingestion, before: list[str], after: list[str]) -> None:
    pattern = "/".join([*before, "..", *after])
    broken = replace(ingestion, source=replace(ingestion.source, pattern=pattern))
    assert "source.pattern" in {v.field for v in _violations(broken)}


def _is_identifier(part: str) -> bool:
    """The table-name grammar, spelled out without regular expressions."""
    head_chars = string.ascii_letters + "_"
    chars = head_chars + string.digits
    return 1 <= len(part) <= 128 and part[0] in head_chars and all(c in chars for c in part)


TABLES = st.one_of(
    TEXT,
    st.lists(st.one_of(IDENTIFIERS, TEXT), min_size=1, max_size=4).map(".".join),
    st.lists(IDENTIFIERS, min_size=2, max_size=3).map(".".join).map(lambda t: t + "\n"),
)


@PROFILE
@given(valid_ingestions(), TABLES)
def test_table_names_outside_the_grammar_are_refused(ingestion: Ingestion, table: str) -> None:
    parts = table.split(".")
    well_formed = len(parts) in (2, 3) and all(_is_identifier(p) for p in parts)
    broken = replace(ingestion, destination=replace(ingestion.destination, table=table))
    assert ("destination.table" not in {v.field for v in _violations(broken)}) == well_formed, table


@PROFILE
@given(
    valid_ingestions(), st.lists(st.sampled_from(["*", "0", "1-5", "*/2"]), max_size=8).filter(lambda f: len(f) != 5)
)
def test_cron_expressions_without_five_fields_are_refused(ingestion: Ingestion, cron_fields: list[str]) -> None:
    broken = replace(ingestion, schedule=Schedule(cron=" ".join(cron_fields)))
    assert "schedule.cron" in {v.field for v in _violations(broken)}


BASE = Ingestion(
    ingestion_id="cron-base",
    name="cron",
    source=Source(uri="file:///in/", format="csv"),
    destination=Destination(table="db.t"),
)


@PROFILE
@given(st.integers(1, 31), st.integers(1, 12))
def test_a_cron_expression_passes_only_when_it_fires(day: int, month: int) -> None:
    fires = day <= (29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)
    scheduled = replace(BASE, schedule=Schedule(cron=f"0 0 {day} {month} *"))
    assert ("schedule.cron" not in {v.field for v in _violations(scheduled)}) == fires
