from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.tracker.listing_format import chunk_lines, pack, with_listing_id
from services.tracker.models import FileEntry

MOMENT = datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)


def test_entries_become_tab_separated_lines_with_an_offset_on_the_time() -> None:
    packed = pack([FileEntry("a/b.csv", "etag-1", 10, MOMENT), FileEntry("c.csv", '"x"', 0, MOMENT)])
    assert packed == (
        b'a/b.csv\tetag-1\t10\t2026-01-02T03:04:05.600000+00:00\nc.csv\t"x"\t0\t2026-01-02T03:04:05.600000+00:00\n'
    )


def test_separators_and_backslashes_in_keys_are_escaped_and_other_text_is_kept() -> None:
    odd = "dir\\sub/tab\there/new\nline/cr\rx/ünïcode %20 *?.csv"
    [line] = pack([FileEntry(odd, "e\\t", 1, MOMENT)]).decode().splitlines()
    key, etag, *_ = line.split("\t")
    assert key == "dir\\\\sub/tab\\there/new\\nline/cr\\rx/ünïcode %20 *?.csv"
    assert etag == "e\\\\t"


def test_a_time_in_another_zone_keeps_its_offset() -> None:
    local = MOMENT.astimezone(timezone(timedelta(hours=2)))
    assert pack([FileEntry("k", "e", 1, local)]).endswith(b"\t2026-01-02T05:04:05.600000+02:00\n")


def test_every_line_gets_the_listing_id_first() -> None:
    packed = pack([FileEntry("a", "1", 1, MOMENT), FileEntry("b", "2", 2, MOMENT)])
    lines = with_listing_id(packed, "run-0a1b").splitlines()
    assert [line.split(b"\t")[:2] for line in lines] == [[b"run-0a1b", b"a"], [b"run-0a1b", b"b"]]
    assert with_listing_id(b"", "run-0a1b") == b""
    assert with_listing_id(b"a\t1\t1\t2026-01-01T00:00:00+00:00", "r") == b"r\ta\t1\t1\t2026-01-01T00:00:00+00:00\n"


def test_a_message_s_packed_and_separate_files_become_complete_lines() -> None:
    entry = FileEntry("b", "2", 2, MOMENT)
    assert chunk_lines(b"a\t1\t1\t2026-01-01T00:00:00+00:00", [entry]) == (
        b"a\t1\t1\t2026-01-01T00:00:00+00:00\nb\t2\t2\t2026-01-02T03:04:05.600000+00:00\n"
    )
    assert chunk_lines(b"", []) == b""
