"""A CSV file's column names from its first bytes, parsed by Spark's own code in the driver's JVM.

Spark takes the names from the first non-empty line of the files with a Spark job (~0.3 s each batch).
The same steps run here on bytes the executor already reads (file_heads): Spark's comment-and-empty filter,
its univocity parser with the source's options, and its renaming of empty and duplicate names. Sources
whose lines Spark would split or decode otherwise (multiLine, another charset, a custom lineSep, a byte
order mark) or whose first line does not fit in the bytes read are left to Spark (None).
"""

from __future__ import annotations

import re
from typing import Any

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what Hadoop's line reader splits on by default
_UTF8 = {"utf-8", "utf8"}
# Lines looked at for the header: past them (all empty or comments) Spark looks itself.
FIRST_LINES = 20


def _complete_lines(head: bytes, whole_file: bool) -> list[str] | None:
    if head.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None  # maybe cut inside a character, or not UTF-8: Spark decides
    lines = _LINE_BREAK.split(text)
    # The last piece may go on past the bytes read. Only the first lines matter: the header is one of them.
    return (lines if whole_file else lines[:-1])[:FIRST_LINES]


def header_names(spark: Any, options: dict[str, str], head: bytes, *, whole_file: bool) -> list[str] | None:
    """The names Spark would give the columns of a CSV file with a header, or None to let Spark read them.

    `head` is the file's first bytes; `whole_file` says whether that is all of it."""
    jvm = spark.sparkContext._jvm
    csv_options = jvm.org.apache.spark.sql.catalyst.csv.CSVOptions(
        jvm.org.apache.spark.api.python.PythonUtils.toScalaMap(options),
        False,
        spark.conf.get("spark.sql.session.timeZone"),
    )
    if csv_options.multiLine() or csv_options.lineSeparator().isDefined():
        return None
    if str(csv_options.charset()).lower() not in _UTF8:
        return None
    lines = _complete_lines(head, whole_file)
    if lines is None:
        return None
    utils = jvm.org.apache.spark.sql.execution.datasources.csv.CSVUtils
    kept = utils.filterCommentAndEmpty(
        jvm.scala.collection.JavaConverters.asScalaIterator(jvm.java.util.ArrayList(lines).iterator()), csv_options
    )
    if not kept.hasNext():
        return None  # no header within the lines looked at (or an empty file): Spark looks further
    row = jvm.com.univocity.parsers.csv.CsvParser(csv_options.asParserSettings()).parseLine(kept.next())
    if row is None:
        return None
    case_sensitive = str(spark.conf.get("spark.sql.caseSensitive")).lower() == "true"
    return [str(name) for name in utils.makeSafeHeader(row, case_sensitive, csv_options)]
