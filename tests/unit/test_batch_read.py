"""Pure parts of batch reading: Avro header parsing, grouping files by header, merging field types."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.executor.batch_read import _grouped, avro_schema, merge_fields
from services.executor.schema_policy import make_field
from services.tracker.models import FileEntry


def zigzag(value: int) -> bytes:
    encoded, number = b"", (value << 1) ^ (value >> 63)
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            encoded += bytes([byte | 0x80])
        else:
            return encoded + bytes([byte])


def avro_header(metadata: dict[bytes, bytes], *, sized_block: bool = False) -> bytes:
    """An Avro container header: magic, the metadata map in one block, the end of the map, a sync marker."""
    items = b"".join(zigzag(len(k)) + k + zigzag(len(v)) + v for k, v in metadata.items())
    block = zigzag(-len(metadata)) + zigzag(len(items)) if sized_block else zigzag(len(metadata))
    return b"Obj\x01" + block + items + zigzag(0) + b"S" * 16 + b"data blocks follow"


SCHEMA = b'{"type":"record","name":"r","fields":[{"name":"id","type":"long"}]}'


@pytest.mark.parametrize("sized_block", [False, True])
def test_avro_schema_is_read_from_the_header(sized_block: bool) -> None:
    head = avro_header({b"avro.codec": b"snappy", b"avro.schema": SCHEMA}, sized_block=sized_block)
    assert avro_schema(head) == SCHEMA


@pytest.mark.parametrize(
    "head",
    [b"not avro at all", b"Obj\x01", avro_header({b"avro.schema": SCHEMA})[:30], avro_header({b"other": b"x"})],
)
def test_unreadable_headers_stand_for_themselves(head: bytes) -> None:
    assert avro_schema(head) == head


def entry(key: str) -> FileEntry:
    return FileEntry(key=key, etag=key, size=1, last_modified=datetime(2026, 1, 1, tzinfo=UTC))


def test_files_are_grouped_by_mark_in_batch_order() -> None:
    files = [entry("a"), entry("b"), entry("c"), entry("d")]
    groups = _grouped(files, {"a": b"id,name", "b": b"name,id", "c": b"id,name", "d": b"name,id"})
    assert [[f.key for f in group] for group in groups] == [["a", "c"], ["b", "d"]]


def test_merge_fields_keeps_first_spelling_and_widens() -> None:
    merged = merge_fields(
        [
            [make_field("id", "integer"), make_field("Name", "string")],
            [make_field("name", "string"), make_field("ID", "long"), make_field("score", "double")],
            [make_field("score", "boolean")],
        ]
    )
    assert merged == [make_field("id", "long"), make_field("Name", "string"), make_field("score", "string")]
