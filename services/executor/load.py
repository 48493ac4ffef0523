"""Read a frozen batch of files with Spark and publish it to its Iceberg table exactly once.

The write is staged with write-audit-publish: `spark.wap.id` = the batch key, then
`cherrypick_snapshot` publishes it. Iceberg refuses to publish the same wap id twice, so whoever
retries a batch (after a crash or a lost lease) can never append it a second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from services.executor import failpoints
from services.executor.batch_read import (
    BatchReader,
    FileHeads,
    RawBatch,
    ReadRequest,
    is_header_mismatch,
    is_rejected_row,
)
from services.executor.discover import SourceAccess
from services.executor.merge_sql import MergeSpec
from services.executor.merge_write import ROWS_PROPERTY, merge_batch
from services.executor.projection import (
    META,
    direct_columns,
    literal,
    parsed_select_expressions,
    parsed_types,
    select_expressions,
)
from services.executor.schema_policy import (
    BatchRefused,
    ColumnPlan,
    Field,
    SchemaSettings,
    plan_columns,
)
from services.executor.source_endpoint import check_source_endpoint
from services.executor.spark_session import s3a_options
from services.shared.logging import get_logger
from services.shared.spark_types import parse_partition, partition_sql, quote
from services.tracker.models import FileEntry

_log = get_logger("load")
# WAP makes publishing a batch idempotent; users cannot turn it off.
MANAGED_PROPERTIES = {"write.wap.enabled": "true"}
# Lets other writers (a user's INSERT naming some columns) leave out columns, as on a plain table. Only on
# append tables: with it, Spark 3.5 skips resolving a MERGE against the table, so merge tables go without.
ACCEPT_ANY_SCHEMA = "write.spark.accept-any-schema"
DEFAULT_PROPERTIES = {"format-version": "2"}
MAX_ERROR_CHARS = 1000
# How a staged snapshot's rows were read (see TableLoader._stage_read); "projected-after-rejects" tells the
# next batch to skip the direct write, which would likely fail again.
READ_PROPERTY = "autoloader.read"


@dataclass(frozen=True)
class TableLayout:
    """How a new table is laid out: partition transforms and table properties."""

    partition_by: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)


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
    settings: SchemaSettings = field(default_factory=SchemaSettings)
    layout: TableLayout = field(default_factory=TableLayout)
    merge: MergeSpec | None = None
    # Reads the first bytes of files (CSV headers, Avro schemas) from the source.
    file_heads: FileHeads | None = None
    # True once the run is to stop: nothing more is read or published.
    stop_requested: Callable[[], bool] = lambda: False
    # Planned by this attempt (a new batch key): no earlier attempt can have staged or published it.
    fresh: bool = False

    def read_request(self) -> ReadRequest:
        def no_access(keys: list[str]) -> dict[str, bytes]:
            raise RuntimeError("reading CSV headers or Avro schemas needs the source's file_heads")

        return ReadRequest(self.source_uri, self.file_format, self.options, self.settings, self.file_heads or no_access)


@dataclass
class LoadResult:
    snapshot_id: int | None = None
    rows_written: int = 0
    failures: list[tuple[FileEntry, str]] = field(default_factory=list)
    table_schema: str = ""
    # When the Iceberg commit holding the rows was made (epoch milliseconds); 0 when nothing was written.
    commit_millis: int = 0


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


class LoadStopped(Exception):
    """The run was asked to stop before its batch was published; nothing of it is in the table."""


def _stop_if_requested(spec: BatchSpec) -> None:
    if spec.stop_requested():
        raise LoadStopped(f"{spec.batch_key} stopped before it was published")


class TableLoader:
    """Spark-side operations on one catalog. Used from a single worker thread."""

    def __init__(self, spark: Any, catalog: str) -> None:
        self._spark = spark
        self._catalog = catalog
        self._reader = BatchReader(spark)

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

    def create_table(self, table: str, schema_json: str, layout: TableLayout | None = None) -> None:
        """Create an empty table from a Spark schema (DDL only: no Spark job runs)."""
        layout = layout or TableLayout()
        jvm = self._spark.sparkContext._jvm
        ddl = jvm.org.apache.spark.sql.types.DataType.fromJson(schema_json).toDDL()
        columns = {f["name"].lower() for f in json.loads(schema_json)["fields"]}
        for transform in layout.partition_by:
            parsed = parse_partition(transform)
            if parsed is None or parsed[2].lower() not in columns:
                known = ", ".join(sorted(columns))
                raise BatchRefused(f"destination.partition_by: {transform!r} names no column of the table ({known})")
        partitioned = f" PARTITIONED BY ({', '.join(partition_sql(t) for t in layout.partition_by)})"
        properties = {**DEFAULT_PROPERTIES, **layout.properties, **MANAGED_PROPERTIES}
        listed = ", ".join(f"{literal(k)}={literal(v)}" for k, v in properties.items())
        qualified = self.qualified(table)
        namespace = qualified.rsplit(".", 1)[0]
        self._spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
        statement = (
            f"CREATE TABLE IF NOT EXISTS {qualified} ({ddl}) USING iceberg"
            f"{partitioned if layout.partition_by else ''} TBLPROPERTIES ({listed})"
        )
        try:
            self._spark.sql(statement)
        except Exception as error:  # e.g. days() of a string column: a configuration problem, not a file's
            if layout.partition_by or layout.properties:
                raise BatchRefused(f"creating table {table} failed: {short_error(error)}") from error
            raise

    def table_schema(self, table: str) -> str:
        return str(self._spark.table(self.qualified(table)).schema.json())

    def _table_fields(self, table: str) -> list[Field] | None:
        if not self.table_exists(table):
            return None
        fields: list[Field] = json.loads(self.table_schema(table))["fields"]
        return fields

    def _evolve(self, table: str, plan: ColumnPlan, before: list[Field]) -> None:
        """Add the plan's new columns and widen its widened ones, in one schema commit."""
        jvm = self._spark.sparkContext._jvm
        spark_type = jvm.org.apache.spark.sql.types.DataType.fromJson(json.dumps(plan.table_json()))
        iceberg_schema = jvm.org.apache.iceberg.spark.SparkSchemaUtil.convert(spark_type)
        try:
            self._iceberg_table(table).updateSchema().caseSensitive(False).unionByNameWith(iceberg_schema).commit()
        except Exception as error:
            raise BatchRefused(f"changing the table's schema failed: {short_error(error)}") from error
        known = {f["name"].lower() for f in before}
        added = [f["name"] for f in plan.table_fields if f["name"].lower() not in known]
        _log.info("table schema changed", added=added, widened=plan.widened)

    def _explicit_fields(self, settings: SchemaSettings) -> list[Field] | None:
        if not settings.explicit_ddl:
            return None
        jvm = self._spark.sparkContext._jvm
        fields: list[Field] = json.loads(
            jvm.org.apache.spark.sql.types.StructType.fromDDL(settings.explicit_ddl).json()
        )["fields"]
        return fields

    def _hint_types(self, settings: SchemaSettings) -> dict[str, Any]:
        jvm = self._spark.sparkContext._jvm
        return {
            name: json.loads(jvm.org.apache.spark.sql.types.DataType.fromDDL(text).json())
            for name, text in settings.hints.items()
        }

    def configure_s3(self, source_uri: str, access: SourceAccess) -> None:
        """Per-bucket s3a settings, so sources on different stores and accounts can be read side by side.

        Called right before each load reads the source, so the endpoint's address is checked then."""
        check_source_endpoint(access.endpoint_url, access.limits.endpoints)
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

    def _ensure_table_properties(self, table: str, *, merge: bool) -> None:
        """Tables created by earlier versions, or by hand, get the properties loading relies on."""
        iceberg = self._iceberg_table(table)
        wanted = MANAGED_PROPERTIES if merge else {**MANAGED_PROPERTIES, ACCEPT_ANY_SCHEMA: "true"}
        missing = {k: v for k, v in wanted.items() if iceberg.properties().get(k) != v}
        remove = merge and iceberg.properties().containsKey(ACCEPT_ANY_SCHEMA)
        if missing or remove:
            update = iceberg.updateProperties()
            for key, value in missing.items():
                update = update.set(key, value)
            if remove:
                update = update.remove(ACCEPT_ANY_SCHEMA)
            update.commit()

    def _snapshots(self, table: str, *, current_history_only: bool) -> list[Any]:
        if not self.table_exists(table):
            return []
        iceberg = self._iceberg_table(table)
        if current_history_only:
            snapshots = self._spark.sparkContext._jvm.org.apache.iceberg.util.SnapshotUtil.currentAncestors(iceberg)
        else:
            snapshots = iceberg.snapshots()
        return _listed(snapshots)

    def published_snapshot(self, table: str, batch_key: str) -> int | None:
        """The snapshot on the table's current history that carries the batch, if it was published.

        A publish either fast-forwards main to the staged snapshot (wap.id) or copies it (published-wap-id).
        """
        return _carrying(self._snapshots(table, current_history_only=True), batch_key)

    def _staged(self, table: str, batch_key: str) -> Any | None:
        return _newest_staged(self._snapshots(table, current_history_only=False), batch_key)

    def staged_snapshot(self, table: str, batch_key: str) -> int | None:
        """The newest snapshot written for the batch (published or not)."""
        snapshot = self._staged(table, batch_key)
        return int(snapshot.snapshotId()) if snapshot is not None else None

    def publish(self, table: str, snapshot_id: int, batch_key: str) -> int:
        """Make a staged snapshot current; return the snapshot that carries it on main (the staged one when
        main fast-forwards to it, else its published copy). Publishing the same wap id twice fails inside
        Iceberg's commit. This is what the cherrypick_snapshot procedure does, without parsing a statement."""
        iceberg = self._iceberg_table(table)
        iceberg.manageSnapshots().cherrypick(snapshot_id).commit()
        ancestors = self._spark.sparkContext._jvm.org.apache.iceberg.util.SnapshotUtil.currentAncestors(iceberg)
        return _carrying(_listed(ancestors), batch_key) or snapshot_id

    # --- reading ---------------------------------------------------------------------------------------

    def _readable(self, spec: BatchSpec, files: Sequence[FileEntry]) -> str | None:
        """None if every file reads completely, else the error. The noop sink forces a full read."""
        try:
            raw = self._reader.read(spec.read_request(), files, self._table_fields(spec.table), by_header=True)
            if raw is not None:
                raw.plain_frame.write.format("noop").mode("overwrite").save()
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

    def cancel(self, run_id: str) -> None:
        """Cancel the Spark jobs of a run's load (they run in its job group); the load then raises."""
        self._spark.sparkContext.cancelJobGroup(run_id)

    def load(self, spec: BatchSpec) -> LoadResult:
        """Publish the batch once: roll forward what an earlier attempt did, else read, stage and publish.

        Raises LoadStopped, publishing nothing, when the run is to stop before its batch was published."""
        # Spark jobs started from this thread belong to the run's group, so cancel(run_id) reaches them.
        self._spark.sparkContext.setJobGroup(spec.run_id, f"autoloader {spec.batch_key}", True)
        published = None if spec.fresh else self.published_snapshot(spec.table, spec.batch_key)
        if published is not None:
            _log.info("batch already published", batch_key=spec.batch_key, snapshot_id=published)
            return self._result(spec, published)
        staged = None if spec.fresh else self.staged_snapshot(spec.table, spec.batch_key)
        if staged is not None and spec.merge is not None and not self._on_current(spec.table, staged):
            # A merge rewrites rows of the table as it was; on a table that changed since, write it again.
            _log.info("staged merge is stale; writing the batch again", snapshot_id=staged)
            staged = None
        if staged is None:
            failures = []
            try:
                staged = self._stage(spec, spec.files)
            except BatchRefused:
                raise  # the configuration refuses the batch: no file is to blame
            except Exception as error:
                _stop_if_requested(spec)
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
        _stop_if_requested(spec)  # the staged snapshot stays unpublished: invisible, and never published later
        current = self.publish(spec.table, staged, spec.batch_key)
        failpoints.hit("after_publish")
        return self._result(spec, current)

    def _on_current(self, table: str, snapshot_id: int) -> bool:
        iceberg = self._iceberg_table(table)
        current = iceberg.currentSnapshot()
        parent = iceberg.snapshot(snapshot_id).parentId()
        return (current is None and parent is None) or (current is not None and parent == current.snapshotId())

    def _stage(
        self, spec: BatchSpec, files: Sequence[FileEntry], failures: Sequence[tuple[FileEntry, str]] = ()
    ) -> int | None:
        """Write the files as a staged (unpublished) snapshot tagged with the batch key; return its id.

        None when the files hold no columns at all (empty files): there is nothing to write.
        """
        try:
            return self._stage_read(spec, files, failures, by_header=False)
        except Exception as error:
            if spec.file_format != "csv" or not is_header_mismatch(error):
                raise
            _log.info("CSV headers differ within the batch; reading its files by header")
            return self._stage_read(spec, files, failures, by_header=True)

    def _stage_read(
        self, spec: BatchSpec, files: Sequence[FileEntry], failures: Sequence[tuple[FileEntry, str]], *, by_header: bool
    ) -> int | None:
        table_fields = self._table_fields(spec.table)
        raw = self._reader.read(spec.read_request(), files, table_fields, by_header=by_header)
        if raw is None:
            return None
        plan = plan_columns(
            table=table_fields,
            explicit=self._explicit_fields(spec.settings),
            files=raw.file_fields,
            hints=self._hint_types(spec.settings),
            settings=spec.settings,
            file_format=spec.file_format,
        )
        if table_fields is None:
            self.create_table(spec.table, json.dumps(plan.table_json()), spec.layout)
        elif plan.table_fields != table_fields:
            self._evolve(spec.table, plan, table_fields)
        if plan.rescued_columns or plan.ignored_columns:
            _log.info("columns not in the table", rescued=plan.rescued_columns, ignored=plan.ignored_columns)
        self._ensure_table_properties(spec.table, merge=spec.merge is not None)
        read = "projected"
        direct = self._direct_frame(spec, raw, plan)
        if direct is not None:
            try:
                snapshot = self._write(spec, direct, files, failures, read="direct")
            except Exception as error:
                if not is_rejected_row(error):
                    raise
                # The failed write committed nothing. Read again with the projection that handles such rows.
                _log.info("the CSV reader rejected a row; reading the batch again", error=short_error(error))
                read = "projected-after-rejects"
            else:
                if snapshot is None:
                    raise RuntimeError(f"the staged snapshot of batch {spec.batch_key} was not found after writing")
                return int(snapshot.snapshotId())
        frame = self._projected(spec, raw, plan)
        snapshot = self._write(spec, frame, files, failures, read=read)
        if snapshot is None:
            raise RuntimeError(f"the staged snapshot of batch {spec.batch_key} was not found after writing")
        return int(snapshot.snapshotId())

    def _write(
        self,
        spec: BatchSpec,
        frame: Any,
        files: Sequence[FileEntry],
        failures: Sequence[tuple[FileEntry, str]],
        *,
        read: str,
    ) -> Any:
        """Write the frame as a staged snapshot tagged with the batch key; return that snapshot."""
        # Which files failed travels inside the commit, so a run taken over after publishing knows them.
        properties = {
            "autoloader.run-id": spec.run_id,
            "autoloader.batch-key": spec.batch_key,
            "autoloader.file-count": str(len(files)),
            "autoloader.files-hash": spec.files_hash,
            "autoloader.failed-files": "\n".join(f"{f.key}\t{f.etag}\t{' '.join(msg.split())}" for f, msg in failures),
            READ_PROPERTY: read,
        }
        self._spark.conf.set("spark.wap.id", spec.batch_key)
        jobs = self._spark.sparkContext.statusTracker()
        try:
            with failpoints.during("inside_write", lambda: bool(jobs.getActiveJobsIds())):
                if spec.merge is None:
                    writer = frame.writeTo(self.qualified(spec.table))
                    for key, value in properties.items():
                        writer = writer.option(f"snapshot-property.{key}", value)
                    writer.append()
                else:
                    merge_batch(self._spark, self.qualified(spec.table), spec.merge, frame, properties)
        finally:
            self._spark.conf.unset("spark.wap.id")
        return _newest_staged(self._snapshots(spec.table, current_history_only=False), spec.batch_key)

    def _direct_frame(self, spec: BatchSpec, raw: RawBatch, plan: ColumnPlan) -> Any | None:
        """The batch as the CSV reader parses it, when that needs no projection (see direct_columns); None when
        it does, or when the table's last batch had rows the reader rejected (then this one likely has too)."""
        if raw.failfast_read is None or spec.merge is not None:
            return None
        types = parsed_types(raw.raw_fields, plan, spec.settings)
        columns = direct_columns(raw.raw_fields, types, plan, settings=spec.settings, run_id=spec.run_id)
        if columns is None:
            return None
        current = self._iceberg_table(spec.table).currentSnapshot()
        if current is not None and current.summary().get(READ_PROPERTY) == "projected-after-rejects":
            return None
        return raw.failfast_read(types).selectExpr(*(quote(column) for column in columns))

    def _projected(self, spec: BatchSpec, raw: RawBatch, plan: ColumnPlan) -> Any:
        """The batch as rows of the table: text parsed by the CSV reader where it can, else cast."""
        types = parsed_types(raw.raw_fields, plan, spec.settings) if raw.parsing_read is not None else {}
        if raw.parsing_read is not None and types:
            # MERGE INTO takes only deterministic source columns: input_file_name() is not, _metadata is.
            with_metadata = spec.settings.metadata_columns or spec.merge is not None
            frame, parsed = raw.parsing_read(types, with_metadata)
            expressions = parsed_select_expressions(
                raw.raw_fields, parsed, plan, settings=spec.settings, run_id=spec.run_id
            )
            return frame.selectExpr(*expressions)
        expressions = select_expressions(
            raw.raw_fields, plan, settings=spec.settings, file_format=spec.file_format, run_id=spec.run_id
        )
        uses_metadata = any(META in expression for expression in expressions)
        return (raw.frame if uses_metadata else raw.plain_frame).selectExpr(*expressions)

    def _failures_in_summary(self, spec: BatchSpec, summary: Any) -> list[tuple[FileEntry, str]]:
        text = (summary.get("autoloader.failed-files") if summary is not None else None) or ""
        by_key = {(f.key, f.etag): f for f in spec.files}
        failures = []
        for line in text.splitlines():
            key, etag, message = line.split("\t", 2)
            if (key, etag) in by_key:
                failures.append((by_key[(key, etag)], message))
        return failures

    def _result(self, spec: BatchSpec, snapshot_id: int) -> LoadResult:
        # One load of the table's metadata answers everything below (each load reads the catalog).
        iceberg = self._iceberg_table(spec.table)
        snapshot = iceberg.snapshot(snapshot_id)
        # The staged snapshot's summary: a cherry-picked copy on main does not keep custom properties.
        staged = _newest_staged(_listed(iceberg.snapshots()), spec.batch_key)
        summary = staged.summary() if staged is not None else None
        # Rows the batch wrote: the merged source rows for a merge (a merge also rewrites untouched rows),
        # else the rows the snapshot added.
        merged = summary.get(ROWS_PROPERTY) if summary is not None else None
        added = snapshot.summary().get("added-records") or 0
        return LoadResult(
            snapshot_id=snapshot_id,
            rows_written=int(merged) if merged is not None else int(added),
            failures=self._failures_in_summary(spec, summary),
            table_schema=self.table_schema(spec.table),
            commit_millis=int(snapshot.timestampMillis()),
        )


def _carrying(snapshots: list[Any], batch_key: str) -> int | None:
    """The id of the first snapshot that carries the batch: staged with it (wap.id) or its published copy."""
    for snapshot in snapshots:
        summary = snapshot.summary()
        if batch_key in (summary.get("wap.id"), summary.get("published-wap-id")):
            return int(snapshot.snapshotId())
    return None


def _newest_staged(snapshots: list[Any], batch_key: str) -> Any:
    """The newest snapshot written for the batch, or None."""
    staged = [s for s in snapshots if s.summary().get("wap.id") == batch_key]
    return max(staged, key=lambda s: s.timestampMillis()) if staged else None


def _listed(java_iterable: Any) -> list[Any]:
    """A Java Iterable's items as a Python list."""
    items, iterator = [], java_iterable.iterator()
    while iterator.hasNext():
        items.append(iterator.next())
    return items
