"""Read a frozen batch of files with Spark and publish it to its Iceberg table exactly once.

The write is staged with write-audit-publish: `spark.wap.id` = the batch key, then
`cherrypick_snapshot` publishes it. Iceberg refuses to publish the same wap id twice, so whoever
retries a batch (after a crash or a lost lease) can never append it a second time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from services.executor import failpoints
from services.executor.discover import S3Access, file_location
from services.executor.spark_session import s3a_options
from services.shared.logging import get_logger
from services.tracker.models import FileEntry

_log = get_logger("load")
_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")
# WAP makes publishing a batch idempotent; accept-any-schema lets a write add nullable columns (such as
# _corrupt_record) and leave out columns a batch does not have (they are null), instead of failing.
TABLE_PROPERTIES = {"write.wap.enabled": "true", "write.spark.accept-any-schema": "true", "format-version": "2"}
MAX_ERROR_CHARS = 1000
CORRUPT_RECORD = "_corrupt_record"


@dataclass(frozen=True)
class BatchSpec:
    """What to load: the frozen files of one batch, how to read them, and where they go."""

    run_id: str
    batch_key: str
    files_hash: str
    files: Sequence[FileEntry]
    source_uri: str
    file_format: str
    options: dict[str, str]
    table: str


@dataclass
class LoadResult:
    snapshot_id: int | None = None
    rows_written: int = 0
    failures: list[tuple[FileEntry, str]] = field(default_factory=list)
    table_schema: str = ""


def _root_cause(error: BaseException) -> str | None:
    """The message of the innermost JVM exception behind a py4j error (py4j's own first line says nothing)."""
    java_error = getattr(error, "java_exception", None)
    if java_error is None:
        return None
    while java_error.getCause() is not None and java_error.getCause() != java_error:
        java_error = java_error.getCause()
    message = java_error.getMessage()
    return str(message) if message else str(java_error.toString())


def short_error(error: BaseException) -> str:
    """A (JVM) error's message on one line, without the stack trace, at most MAX_ERROR_CHARS long."""
    text = (_root_cause(error) or str(error)).strip()
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("JVM stacktrace", "Traceback")):
            break
        if line and not line.startswith("at "):
            lines.append(line)
    return " ".join(lines)[:MAX_ERROR_CHARS] or type(error).__name__


def _hadoop_path(location: str) -> str:
    # Spark expands glob characters in paths; a key containing them must match literally.
    return _GLOB_CHARS.sub(r"\\\1", location)


class TableLoader:
    """Spark-side operations on one catalog. Used from a single worker thread."""

    def __init__(self, spark: Any, catalog: str) -> None:
        self._spark = spark
        self._catalog = catalog

    @property
    def spark(self) -> Any:
        return self._spark

    def healthy(self) -> bool:
        """False when the JVM behind the session is gone (killed, out of memory): nothing can be read."""
        try:
            return not self._spark.sparkContext._jsc.sc().isStopped()
        except Exception:
            return False

    def run_sql(self, statement: str, max_rows: int) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        """Run a user's statement in a session of its own (so it never sees a batch's spark.wap.id)."""
        frame = self._spark.newSession().sql(statement)
        rows = frame.limit(max_rows + 1).collect() if frame.columns else []
        return list(frame.columns), [tuple(r) for r in rows[:max_rows]], len(rows) > max_rows

    # --- names and table state -------------------------------------------------------------------------

    def qualified(self, table: str) -> str:
        parts = table.split(".")
        if len(parts) == 3:
            if parts[0] != self._catalog:
                raise ValueError(f"destination.table: catalog {parts[0]!r} is not configured; use {self._catalog!r}")
            parts = parts[1:]
        return ".".join(f"`{p}`" for p in [self._catalog, *parts])

    def table_exists(self, table: str) -> bool:
        return bool(self._spark.catalog.tableExists(self.qualified(table).replace("`", "")))

    def create_table(self, table: str, schema_json: str) -> None:
        """Create an empty table from a Spark schema (DDL only: no Spark job runs)."""
        jvm = self._spark.sparkContext._jvm
        ddl = jvm.org.apache.spark.sql.types.DataType.fromJson(schema_json).toDDL()
        qualified = self.qualified(table)
        namespace = qualified.rsplit(".", 1)[0]
        properties = ", ".join(f"'{k}'='{v}'" for k, v in TABLE_PROPERTIES.items())
        self._spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
        self._spark.sql(f"CREATE TABLE IF NOT EXISTS {qualified} ({ddl}) USING iceberg TBLPROPERTIES ({properties})")

    def table_schema(self, table: str) -> str:
        return str(self._spark.table(self.qualified(table)).schema.json())

    def configure_s3(self, source_uri: str, access: S3Access) -> None:
        """Per-bucket s3a settings, so sources on different stores and accounts can be read side by side."""
        bucket = urlsplit(source_uri).netloc
        hadoop = self._spark.sparkContext._jsc.hadoopConfiguration()
        options = s3a_options(access.endpoint_url, access.region, access.access_key, access.secret_key)
        for key, value in options.items():
            name = key.removeprefix("spark.hadoop.fs.s3a.")
            hadoop.set(f"fs.s3a.bucket.{bucket}.{name}", value)

    # --- the batch's snapshots, read through Iceberg's Java API: metadata only, no Spark job -------------

    def _iceberg_table(self, table: str) -> Any:
        jvm = self._spark.sparkContext._jvm
        name = self.qualified(table).replace("`", "")
        return jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(self._spark._jsparkSession, name)

    def _ensure_table_properties(self, table: str) -> None:
        """Tables created by earlier versions, or by hand, get the properties loading relies on."""
        iceberg = self._iceberg_table(table)
        missing = {k: v for k, v in TABLE_PROPERTIES.items() if k != "format-version"}
        missing = {k: v for k, v in missing.items() if iceberg.properties().get(k) != v}
        if missing:
            update = iceberg.updateProperties()
            for key, value in missing.items():
                update = update.set(key, value)
            update.commit()

    def _snapshots(self, table: str, *, current_history_only: bool) -> list[Any]:
        if not self.table_exists(table):
            return []
        iceberg = self._iceberg_table(table)
        if current_history_only:
            snapshots = self._spark.sparkContext._jvm.org.apache.iceberg.util.SnapshotUtil.currentAncestors(iceberg)
        else:
            snapshots = iceberg.snapshots()
        found, iterator = [], snapshots.iterator()
        while iterator.hasNext():
            found.append(iterator.next())
        return found

    def published_snapshot(self, table: str, batch_key: str) -> int | None:
        """The snapshot on the table's current history that carries the batch, if it was published.

        A publish either fast-forwards main to the staged snapshot (wap.id) or copies it (published-wap-id).
        """
        for snapshot in self._snapshots(table, current_history_only=True):
            summary = snapshot.summary()
            if batch_key in (summary.get("wap.id"), summary.get("published-wap-id")):
                return int(snapshot.snapshotId())
        return None

    def _staged(self, table: str, batch_key: str) -> Any | None:
        snapshots = self._snapshots(table, current_history_only=False)
        staged = [s for s in snapshots if s.summary().get("wap.id") == batch_key]
        return max(staged, key=lambda s: s.timestampMillis()) if staged else None

    def staged_snapshot(self, table: str, batch_key: str) -> int | None:
        """The newest snapshot written for the batch (published or not)."""
        snapshot = self._staged(table, batch_key)
        return int(snapshot.snapshotId()) if snapshot is not None else None

    def rows_added(self, table: str, snapshot_id: int) -> int:
        snapshot = self._iceberg_table(table).snapshot(snapshot_id)
        return int(snapshot.summary().get("added-records") or 0) if snapshot is not None else 0

    def publish(self, table: str, snapshot_id: int) -> None:
        """Make a staged snapshot current. Publishing the same wap id twice fails inside Iceberg's commit."""
        table_ref = self.qualified(table).split(".", 1)[1].replace("`", "")
        self._spark.sql(f"CALL `{self._catalog}`.system.cherrypick_snapshot('{table_ref}', {snapshot_id})")

    # --- reading ---------------------------------------------------------------------------------------

    def _reader(self, spec: BatchSpec) -> Any:
        reader = self._spark.read.format(spec.file_format)
        for key, value in spec.options.items():
            reader = reader.option(key, value)
        return reader

    def _read(self, spec: BatchSpec, files: Sequence[FileEntry]) -> Any:
        paths = [_hadoop_path(file_location(spec.source_uri, f.key)) for f in files]
        frame = self._reader(spec).load(paths)
        if spec.file_format != "csv" or CORRUPT_RECORD in frame.columns or not frame.columns:
            return frame
        # Spark's CSV reader drops the extra fields of a row that has too many unless the schema has a
        # corrupt-record column; with one, such a row keeps its raw line there. JSON adds it by itself.
        schema = frame.schema.add(CORRUPT_RECORD, "string")
        return self._reader(spec).schema(schema).option("columnNameOfCorruptRecord", CORRUPT_RECORD).load(paths)

    def _readable(self, spec: BatchSpec, files: Sequence[FileEntry]) -> str | None:
        """None if every file reads completely, else the error. The noop sink forces a full read."""
        try:
            self._read(spec, files).write.format("noop").mode("overwrite").save()
        except Exception as error:  # Spark and py4j raise many types; any of them means "not readable"
            return short_error(error)
        return None

    def find_unreadable(self, spec: BatchSpec, files: Sequence[FileEntry]) -> list[tuple[FileEntry, str]]:
        """Bisect the batch to name the files that cannot be read: a few Spark jobs per bad file."""
        error = self._readable(spec, files)
        if error is None:
            return []
        if len(files) == 1:
            return [(files[0], error)]
        middle = len(files) // 2
        return self.find_unreadable(spec, files[:middle]) + self.find_unreadable(spec, files[middle:])

    # --- the load --------------------------------------------------------------------------------------

    def load(self, spec: BatchSpec) -> LoadResult:
        """Publish the batch once: roll forward what an earlier attempt did, else read, stage and publish."""
        published = self.published_snapshot(spec.table, spec.batch_key)
        if published is not None:
            _log.info("batch already published", batch_key=spec.batch_key, snapshot_id=published)
            return self._result(spec, published)
        staged = self.staged_snapshot(spec.table, spec.batch_key)
        if staged is None:
            failures = []
            try:
                staged = self._stage(spec, spec.files)
            except Exception as error:
                failures = self.find_unreadable(spec, spec.files)
                if not failures:
                    raise  # not a file problem (schema clash, storage down): the whole run fails
                _log.info("isolated unreadable files", count=len(failures), first_error=short_error(error))
                good = [f for f in spec.files if f not in {bad for bad, _ in failures}]
                staged = self._stage(spec, good, failures) if good else None
            if staged is None:
                # Nothing to write (only empty files, or none readable): the readable ones hold 0 rows.
                return LoadResult(failures=failures)
            failpoints.hit("after_staged_commit")
        self.publish(spec.table, staged)
        failpoints.hit("after_publish")
        return self._result(spec, self.published_snapshot(spec.table, spec.batch_key) or staged)

    def _stage(
        self, spec: BatchSpec, files: Sequence[FileEntry], failures: Sequence[tuple[FileEntry, str]] = ()
    ) -> int | None:
        """Append the files as a staged (unpublished) snapshot tagged with the batch key; return its id.

        None when the files hold no columns at all (empty files): there is nothing to write.
        """
        frame = self._read(spec, files)
        if not frame.columns:
            return None
        if not self.table_exists(spec.table):
            self.create_table(spec.table, frame.schema.json())
        qualified = self.qualified(spec.table)
        # The table's columns in the table's order, then new ones: Iceberg matches columns by position.
        existing = self._spark.table(qualified).columns
        ordered = [c for c in existing if c in frame.columns] + [c for c in frame.columns if c not in existing]
        # Backticks: a column name may hold dots or spaces.
        frame = frame.select(*["`" + c.replace("`", "``") + "`" for c in ordered])
        self._ensure_table_properties(spec.table)
        # Which files failed travels inside the commit, so a run taken over after publishing knows them.
        failed_keys = "\n".join(f"{f.key}\t{f.etag}\t{' '.join(msg.split())}" for f, msg in failures)
        self._spark.conf.set("spark.wap.id", spec.batch_key)
        writer = (
            frame.writeTo(qualified)
            .option("snapshot-property.autoloader.run-id", spec.run_id)
            .option("snapshot-property.autoloader.batch-key", spec.batch_key)
            .option("snapshot-property.autoloader.file-count", str(len(files)))
            .option("snapshot-property.autoloader.files-hash", spec.files_hash)
            .option("snapshot-property.autoloader.failed-files", failed_keys)
            .option("merge-schema", "true")
        )
        jobs = self._spark.sparkContext.statusTracker()
        try:
            with failpoints.during("inside_write", lambda: bool(jobs.getActiveJobsIds())):
                writer.append()
        finally:
            self._spark.conf.unset("spark.wap.id")
        staged = self.staged_snapshot(spec.table, spec.batch_key)
        if staged is None:
            raise RuntimeError(f"the staged snapshot of batch {spec.batch_key} was not found after writing")
        return staged

    def _failures_in_summary(self, spec: BatchSpec) -> list[tuple[FileEntry, str]]:
        # Read from the staged snapshot: a cherry-picked copy on main does not keep custom properties.
        staged = self._staged(spec.table, spec.batch_key)
        text = (staged.summary().get("autoloader.failed-files") if staged is not None else None) or ""
        by_key = {(f.key, f.etag): f for f in spec.files}
        failures = []
        for line in text.splitlines():
            key, etag, message = line.split("\t", 2)
            if (key, etag) in by_key:
                failures.append((by_key[(key, etag)], message))
        return failures

    def _result(self, spec: BatchSpec, snapshot_id: int) -> LoadResult:
        return LoadResult(
            snapshot_id=snapshot_id,
            rows_written=self.rows_added(spec.table, snapshot_id),
            failures=self._failures_in_summary(spec),
            table_schema=self.table_schema(spec.table),
        )
