"""The tracker's metrics: work done by runs (counted as they end) and state read from the database when
scraped (runs by status, backlog and file records per ingestion)."""

from __future__ import annotations

import asyncpg

from services.shared.metrics import Gauge, ServiceMetrics
from services.tracker.models import Run


class TrackerMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.runs_ended = metrics.counter("autoloader_runs_ended", "Runs that ended, by status", ["status"])
        self.files_processed = metrics.counter("autoloader_files_processed", "Files loaded by runs")
        self.files_failed = metrics.counter("autoloader_files_failed", "File loads that failed (each attempt)")
        self.bytes_processed = metrics.counter("autoloader_bytes_processed", "Bytes of the files loaded")
        self.rows_written = metrics.counter("autoloader_rows_written", "Rows written to tables by runs")
        self.run_duration = metrics.histogram(
            "autoloader_run_duration_seconds", "Time from a run's start to its end, by status", ["status"]
        )
        self.lease_takeovers = metrics.counter(
            "autoloader_lease_takeovers", "Runs taken over by another executor after their lease ran out"
        )
        self.webhook_attempts = metrics.counter(
            "autoloader_webhook_delivery_attempts",
            "Webhook POSTs, by outcome: delivered, retry (failed, tried again later), failed (given up)",
            ["outcome"],
        )

    def run_ended(self, run: Run) -> None:
        self.runs_ended.labels(status=run.status).inc()
        self.files_processed.inc(run.files_processed)
        self.files_failed.inc(run.files_failed)
        self.bytes_processed.inc(run.bytes_processed)
        self.rows_written.inc(run.rows_written)
        if run.start_time is not None and run.end_time is not None:
            seconds = (run.end_time - run.start_time).total_seconds()
            self.run_duration.labels(status=run.status).observe(seconds)


async def database_gauges(pool: asyncpg.Pool) -> list[Gauge]:
    runs = await pool.fetch("SELECT status, count(*) AS n FROM tracker.runs GROUP BY status")
    backlog = await pool.fetch(
        "SELECT ingestion_id, count(*) AS n, COALESCE(sum(size), 0) AS bytes FROM ("
        "  SELECT ingestion_id, size FROM tracker.pending_files"
        "  UNION ALL SELECT ingestion_id, size FROM tracker.files WHERE status = 'FAILED'"
        ") waiting GROUP BY ingestion_id"
    )
    files = await pool.fetch("SELECT ingestion_id, status, count(*) AS n FROM tracker.files GROUP BY 1, 2")
    return [
        Gauge("autoloader_runs", "Runs by status", ("status",), [((r["status"],), r["n"]) for r in runs]),
        Gauge(
            "autoloader_backlog_files",
            "Files listed but not loaded yet (waiting for a run, or failed and to be retried), per ingestion",
            ("ingestion_id",),
            [((r["ingestion_id"],), r["n"]) for r in backlog],
        ),
        Gauge(
            "autoloader_backlog_bytes",
            "Bytes of the backlog files, per ingestion",
            ("ingestion_id",),
            [((r["ingestion_id"],), float(r["bytes"])) for r in backlog],
        ),
        Gauge(
            "autoloader_file_records",
            "Processed-file records by ingestion and status (FAILED and SKIPPED are the failed files)",
            ("ingestion_id", "status"),
            [((r["ingestion_id"], r["status"]), r["n"]) for r in files],
        ),
    ]
