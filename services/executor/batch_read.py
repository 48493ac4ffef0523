"""Read a batch's files with Spark as they are, and report the columns and types the files hold.

Text formats (CSV, JSON) are read with their top-level values as strings; the projection then casts them
to the table's types, so a value that does not parse is rescued instead of turning into a silent null.
CSV files are matched to columns by their header: when the files of a batch have different headers (a new
column, another order), each header's files are read on their own and the parts joined by column name.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.executor.csv_header import header_names
from services.executor.discover import file_location
from services.executor.projection import META, ParsedColumns, literal
from services.executor.schema_policy import (
    CORRUPT_RECORD,
    Field,
    SchemaSettings,
    choose_sample,
    make_field,
    nested_union,
    raw_json_type,
)
from services.executor.spark_session import load_paths
from services.shared.spark_types import quote, sql_type
from services.tracker.models import FileEntry

_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")
# Spark's error when a FAILFAST read meets a row it cannot parse.
_REJECTED_ROW = ("MALFORMED_RECORD_IN_PARSING", "Parse Mode: FAILFAST")
# Spark's messages when a CSV file's header does not match the schema it is read with.
_HEADER_MISMATCH = ("CSV header does not conform to the schema", "Number of column in CSV header is not equal")

FileHeads = Callable[[list[str]], dict[str, bytes]]


def is_header_mismatch(error: BaseException) -> bool:
    return any(marker in str(error) for marker in _HEADER_MISMATCH)


def is_rejected_row(error: BaseException) -> bool:
    return any(marker in str(error) for marker in _REJECTED_ROW)


def hadoop_path(location: str) -> str:
    # Spark expands glob characters in paths; a key containing them must match literally.
    return _GLOB_CHARS.sub(r"\\\1", location)


@dataclass(frozen=True)
class ReadRequest:
    source_uri: str
    file_format: str
    options: dict[str, str]
    settings: SchemaSettings
    file_heads: FileHeads


@dataclass
class RawBatch:
    # The files as read (text values as strings); built on first use, since building it lists the files.
    make_frame: Callable[[], Any]
    # What the files hold, types as inferred: decides new columns and widening.
    file_fields: list[Field]
    # What the frame holds, as read (text values as strings): decides the casts.
    raw_fields: list[tuple[str, Any]]
    # CSV files of one header: the same read with some columns parsed into the given types by the reader,
    # which costs much less than reading text and casting it (see ParsedColumns).
    parsing_read: Callable[[dict[str, Any], bool], tuple[Any, ParsedColumns]] | None = None
    # The same frame without the _metadata column, for projections that do not use it: carrying it costs
    # a copy of every row (and Parquet's row index); None when the two are the same.
    make_plain_frame: Callable[[], Any] | None = None
    # CSV files of one header: a read with the given columns parsed into types that fails on the first row the
    # reader rejects, instead of marking it in _corrupt_record: on clean files it costs what a bare read does.
    failfast_read: Callable[[dict[str, Any]], Any] | None = None

    @functools.cached_property
    def frame(self) -> Any:
        return self.make_frame()

    @functools.cached_property
    def plain_frame(self) -> Any:
        return self.make_plain_frame() if self.make_plain_frame is not None else self.frame


def _fields(schema: Any) -> list[Field]:
    fields: list[Field] = json.loads(schema.json())["fields"]
    return fields


def merge_fields(parts: list[list[Field]]) -> list[Field]:
    """One field per name (first spelling and position wins); differing types become the wider one, or
    string when neither holds the other."""
    merged: dict[str, Field] = {}
    for fields in parts:
        for field in fields:
            key = field["name"].lower()
            known = merged.get(key)
            if known is None:
                merged[key] = dict(field)
            elif known["type"] != field["type"]:
                known["type"] = _wider(known["type"], field["type"])
    return list(merged.values())


def _wider(left: Any, right: Any) -> Any:
    order = ["byte", "short", "integer", "long", "float", "double"]
    if left in order and right in order:
        return order[max(order.index(left), order.index(right))]
    return "string"


class BatchReader:
    def __init__(self, spark: Any) -> None:
        self._spark = spark

    def _reader(self, request: ReadRequest) -> Any:
        reader = self._spark.read.format(request.file_format)
        for key, value in request.options.items():
            reader = reader.option(key, value)
        return reader

    def _paths(self, request: ReadRequest, files: Sequence[FileEntry]) -> list[str]:
        return [hadoop_path(file_location(request.source_uri, f.key)) for f in files]

    def read(
        self, request: ReadRequest, files: Sequence[FileEntry], table: list[Field] | None, *, by_header: bool
    ) -> RawBatch | None:
        """The files as one frame (None when they hold no columns at all, e.g. only empty files)."""
        if request.file_format == "csv":
            batch = self._csv(request, files, by_header=by_header)
        elif request.file_format == "json":
            batch = self._json(request, files, table)
        elif request.file_format == "avro":
            batch = self._avro(request, files)
        else:
            batch = self._typed(request, files)
        return batch

    # --- CSV -------------------------------------------------------------------------------------------

    def _csv(self, request: ReadRequest, files: Sequence[FileEntry], *, by_header: bool) -> RawBatch | None:
        header = request.options.get("header", "false").lower() == "true"
        groups = self._header_groups(request, files) if header and by_header else [list(files)]
        reads = [read for read in (self._csv_group(request, group, header=header) for group in groups) if read]
        if not reads:
            return None
        # Every CSV row keeps its raw line in _corrupt_record when it has more fields than the header.
        file_fields = [*merge_fields([read.names for read in reads]), make_field(CORRUPT_RECORD, "string")]
        raw_fields: list[tuple[str, Any]] = [(f["name"], "string") for f in file_fields]
        parsing = failfast = None
        if len(reads) == 1 and request.options.get("mode", "PERMISSIVE").upper() == "PERMISSIVE":
            # A typed read drops or fails on other rows than a text read under the other modes.
            parsing, failfast = reads[0].parsing_read, reads[0].failfast_read
        return RawBatch(
            lambda: _union([read.text_frame(with_metadata=True) for read in reads]),
            file_fields,
            raw_fields,
            parsing_read=parsing,
            failfast_read=failfast,
            make_plain_frame=lambda: _union([read.text_frame(with_metadata=False) for read in reads]),
        )

    def _header_groups(self, request: ReadRequest, files: Sequence[FileEntry]) -> list[list[FileEntry]]:
        heads = request.file_heads([f.key for f in files])
        return _grouped(files, {key: head.split(b"\n", 1)[0].rstrip(b"\r") for key, head in heads.items()})

    def _csv_columns(self, request: ReadRequest, sample: Sequence[FileEntry]) -> list[Field]:
        if not sample:
            return []
        schema = load_paths(self._reader(request), self._paths(request, sample)).schema
        return [f for f in _fields(schema) if f["name"] != CORRUPT_RECORD]

    def _csv_header_fields(self, request: ReadRequest, files: Sequence[FileEntry]) -> list[Field] | None:
        """The columns from the first non-empty file's header without a Spark job, when Spark would take them
        from that file's first line (no inferSchema); None to ask Spark."""
        if request.options.get("inferSchema", "false").lower() == "true":
            return None
        first = next((f for f in files if f.size > 0), None)
        if first is None:
            return None
        head = request.file_heads([first.key])[first.key]
        names = header_names(self._spark, request.options, head, whole_file=len(head) >= first.size)
        if names is None:
            return None
        return [make_field(name, "string") for name in names if name != CORRUPT_RECORD]

    def _csv_group(self, request: ReadRequest, files: Sequence[FileEntry], *, header: bool) -> CsvGroupRead | None:
        # Types from a sample (Spark's own inference, as the reader options ask); names from the header.
        inferred = self._csv_header_fields(request, files) if header else None
        if not inferred:
            inferred = self._csv_columns(request, _csv_first_line_sample(request, files))
        if not inferred:
            inferred = self._csv_columns(request, _csv_sample(request, files))
        if not inferred:
            return None
        return CsvGroupRead(
            lambda: self._reader(request), request.options, self._paths(request, files), inferred, header=header
        )

    # --- JSON ------------------------------------------------------------------------------------------

    def _json(self, request: ReadRequest, files: Sequence[FileEntry], table: list[Field] | None) -> RawBatch | None:
        paths = self._paths(request, files)
        # Every file is inferred: a field that appears in one record only must not be dropped.
        inferred = _fields(load_paths(self._reader(request), paths).schema)
        if not inferred:
            return None
        table_types = {f["name"].lower(): f["type"] for f in table or []}
        raw_fields = []
        for field in inferred:
            raw_type = raw_json_type(field["type"])
            # Nested values are parsed straight into the table's nested type when the column exists; under
            # add_new_columns grown by the fields the files add, as the table will be (see plan_columns).
            table_type = table_types.get(field["name"].lower())
            if isinstance(raw_type, dict) and isinstance(table_type, dict):
                grows = request.settings.evolution_mode == "add_new_columns"
                raw_type = nested_union(table_type, raw_type) if grows else table_type
            raw_fields.append((field["name"], raw_type))
        raw_ddl = ", ".join(f"{quote(name)} {sql_type(data_type)}" for name, data_type in raw_fields)
        frame = load_paths(self._reader(request).schema(raw_ddl), paths)
        return RawBatch(lambda: _with_file_metadata(frame), inferred, raw_fields, make_plain_frame=lambda: frame)

    # --- Avro ------------------------------------------------------------------------------------------

    def _avro(self, request: ReadRequest, files: Sequence[FileEntry]) -> RawBatch | None:
        """Spark reads a set of Avro files with the schema of one of them and silently drops the fields
        only the others have; so files are read per writer schema (from their headers) and joined by name."""
        if "avroSchema" in request.options or len(files) == 1:
            return self._typed(request, files)
        heads = request.file_heads([f.key for f in files])
        schemas = {key: avro_schema(head) for key, head in heads.items()}
        parts = [self._typed(request, group) for group in _grouped(files, schemas)]
        present = [p for p in parts if p is not None]
        if not present:
            return None
        file_fields = merge_fields([p.file_fields for p in present])
        raw_fields = [(f["name"], f["type"]) for f in file_fields]
        return RawBatch(
            lambda: _union([p.frame for p in present]),
            file_fields,
            raw_fields,
            make_plain_frame=lambda: _union([p.plain_frame for p in present]),
        )

    # --- Parquet, ORC, Avro, text ------------------------------------------------------------------------

    def _typed(self, request: ReadRequest, files: Sequence[FileEntry]) -> RawBatch | None:
        reader = self._reader(request)
        if request.file_format in ("parquet", "orc") and "mergeSchema" not in request.options:
            # Files of one batch may differ (a column added later): read the union of their columns.
            reader = reader.option("mergeSchema", "true")
        frame = load_paths(reader, self._paths(request, files))
        fields = _fields(frame.schema)
        if not fields:
            return None
        return RawBatch(
            lambda: _with_file_metadata(frame),
            fields,
            [(f["name"], f["type"]) for f in fields],
            make_plain_frame=lambda: frame,
        )


def _csv_sample(request: ReadRequest, files: Sequence[FileEntry]) -> Sequence[FileEntry]:
    settings = request.settings
    return files[: choose_sample([f.size for f in files], settings.sample_files, settings.sample_bytes)]


def _csv_first_line_sample(request: ReadRequest, files: Sequence[FileEntry]) -> Sequence[FileEntry]:
    """Without inferSchema Spark takes the columns from the first line it finds: the first non-empty file
    usually has it, and then Spark need not look at the other files of the sample."""
    if request.options.get("inferSchema", "false").lower() == "true":
        return _csv_sample(request, files)
    return [f for f in files if f.size > 0][:1]


class CsvGroupRead:
    """CSV files of one header, read with every column as text, or with some parsed into types."""

    def __init__(
        self,
        new_reader: Callable[[], Any],
        options: dict[str, str],
        paths: list[str],
        names: list[Field],
        *,
        header: bool,
    ) -> None:
        self._new_reader = new_reader  # a DataFrameReader with the source's options
        self._options = options
        self._paths = paths
        self.names = names
        self._header = header

    def _load(self, types: dict[str, Any], *, failfast: bool = False) -> Any:
        ddl = ", ".join(f"{quote(f['name'])} {sql_type(types.get(f['name'], 'string'))}" for f in self.names)
        if failfast:
            reader = self._new_reader().schema(ddl).option("mode", "FAILFAST")
        else:
            reader = (
                self._new_reader()
                .schema(f"{ddl}, {CORRUPT_RECORD} STRING")
                .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
            )
        if self._header:
            # Every file's header is checked against the names: a file with other columns fails the read
            # (and the batch is read again by header) instead of being matched by position.
            reader = reader.option("enforceSchema", "false")
        return load_paths(reader, self._paths)

    def text_frame(self, *, with_metadata: bool) -> Any:
        frame = self._load({})
        return _with_file_metadata(frame) if with_metadata else frame

    def failfast_read(self, types: dict[str, Any]) -> Any:
        return self._load(types, failfast=True)

    def parsing_read(self, types: dict[str, Any], with_metadata: bool) -> tuple[Any, ParsedColumns]:
        frame = self._load(types)
        text_ddl = ", ".join(f"{quote(f['name'])} STRING" for f in self.names) + f", {CORRUPT_RECORD} STRING"
        # The line of a rejected row, parsed again as text with the same options.
        options = {**self._options, "columnNameOfCorruptRecord": CORRUPT_RECORD, "mode": "PERMISSIVE"}
        option_map = ", ".join(f"{literal(key)}, {literal(value)}" for key, value in options.items())
        reparsed = f"from_csv({quote(CORRUPT_RECORD)}, {literal(text_ddl)}, map({option_map}))"
        return (
            _with_file_metadata(frame) if with_metadata else frame,
            ParsedColumns(types=types, reparsed=reparsed, with_metadata=with_metadata),
        )


def _with_file_metadata(frame: Any) -> Any:
    # Spark's hidden _metadata column exists only on a file scan, so it is taken before frames are joined.
    return frame.selectExpr("*", f"_metadata AS {META}")


def _union(frames: list[Any]) -> Any:
    """The frames' rows in one frame, columns matched by name (a column one frame lacks is null there)."""
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other, allowMissingColumns=True)
    return frame


def _grouped(files: Sequence[FileEntry], marks: dict[str, bytes]) -> list[list[FileEntry]]:
    """The files in groups of equal mark (header line, Avro schema), each group in batch order."""
    groups: dict[bytes, list[FileEntry]] = {}
    for entry in files:
        groups.setdefault(marks[entry.key], []).append(entry)
    return list(groups.values())


def _zigzag(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), at


def avro_schema(head: bytes) -> bytes:
    """The writer schema (JSON bytes) in an Avro container file's header; the head itself when it cannot be
    read (not Avro, or a header beyond the bytes read): such a file goes in a group of its own."""
    try:
        if not head.startswith(b"Obj\x01"):
            return head
        at = 4
        while True:
            count, at = _zigzag(head, at)
            if count == 0:
                return head
            if count < 0:
                count = -count
                _, at = _zigzag(head, at)  # the block's size in bytes
            for _ in range(count):
                size, at = _zigzag(head, at)
                key = head[at : at + size]
                at += size
                size, at = _zigzag(head, at)
                value = head[at : at + size]
                at += size
                if at > len(head):
                    return head  # the header goes on beyond the bytes read
                if key == b"avro.schema":
                    return value
    except IndexError:
        return head
