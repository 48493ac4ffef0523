"""`autoloader run|runs|files|clear-processed-files|sql`: runs, processed files and the tables."""

from __future__ import annotations

from typing import Annotated

import typer

from autoloader.cli.output import call, print_json
from autoloader.tracker.v1 import tracker_pb2 as tpb

TERMINAL = {"SUCCESS": 0, "PARTIAL_SUCCESS": 3, "FAILED": 1, "CANCELLED": 4}


def _progress(run: tpb.Run) -> str:
    return (
        f"{run.run_id} {run.status}: {run.files_processed}/{run.files_discovered} files, "
        f"{run.files_failed} failed, {run.files_skipped} skipped, {run.rows_written} rows"
    )


class _ProgressPrinter:
    """Prints a run's progress to stderr whenever it changes."""

    def __init__(self) -> None:
        self._shown = ""

    def __call__(self, run: tpb.Run) -> None:
        line = _progress(run)
        if line != self._shown:
            typer.echo(line, err=True)
            self._shown = line


def run(
    ingestion_id: str,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end, showing progress")] = False,
) -> None:
    """Start a run of an ingestion. With --wait, exit 0 on SUCCESS, 3 on PARTIAL_SUCCESS, 1 on FAILED, 4 on
    CANCELLED."""
    started = call(lambda c: c.run(ingestion_id))
    if not wait:
        print_json(started)
        return
    finished = call(lambda c: c.wait_for_run(started.run_id, timeout=None, poll=0.5, on_progress=_ProgressPrinter()))
    print_json(finished)
    raise typer.Exit(TERMINAL[finished.status])


def runs(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the newest runs")] = 20,
) -> None:
    """List an ingestion's runs, newest first."""
    found = call(lambda c: list(c.list_runs(ingestion_id, limit=limit)))
    typer.echo(f"{'RUN':<18} {'STATUS':<16} {'FILES':>7} {'FAILED':>6} {'ROWS':>10}  STARTED")
    for item in found:
        started = item.create_time.ToDatetime().isoformat(timespec="seconds")
        typer.echo(
            f"{item.run_id:<18} {item.status:<16} {item.files_processed:>7} {item.files_failed:>6} "
            f"{item.rows_written:>10}  {started}"
        )


def files(
    ingestion_id: str,
    status: Annotated[str, typer.Option(help="PROCESSED, FAILED, SKIPPED or CLAIMED")] = "",
    prefix: Annotated[str, typer.Option("--prefix", help="Only records whose key starts with this")] = "",
    run_id: Annotated[str, typer.Option("--run", help="Only records of files this run handled last")] = "",
) -> None:
    """List an ingestion's processed-file records."""
    records = call(
        lambda c: list(
            c.list_processed_files(ingestion_id, status=status, key_prefix=prefix, run_id=run_id, page_size=1000)
        )
    )
    for record in records:
        error = f"  {record.error}" if record.error else ""
        typer.echo(f"{record.status:<9} {record.attempts} {record.size:>12} {record.run_id:<18} {record.key}{error}")


def clear_processed_files(
    ingestion_id: str,
    prefix: Annotated[str, typer.Option("--prefix", help="Only records whose key starts with this")] = "",
    key: Annotated[list[str] | None, typer.Option("--key", help="Only this key (repeatable)")] = None,
    status: Annotated[str, typer.Option(help="Only records of this status: PROCESSED, FAILED or SKIPPED")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be cleared; clear nothing")] = False,
) -> None:
    """Forget which files were processed: the next run loads them again (drop the table first, or rows repeat)."""
    response = call(
        lambda c: c.clear_processed_files(
            ingestion_id, key_prefix=prefix, keys=key or [], status=status, dry_run=dry_run
        )
    )
    typer.echo(response.message)


def sql(
    statement: str,
    max_rows: Annotated[int, typer.Option(help="Show at most this many rows")] = 1000,
) -> None:
    """Run Spark SQL against the Iceberg catalog, e.g. "SELECT count(*) FROM analytics.dim_users"."""
    response = call(lambda c: c.sql(statement, max_rows=max_rows))
    if response.columns:
        typer.echo("\t".join(response.columns))
    for row in response.rows:
        typer.echo("\t".join("NULL" if null else value for value, null in zip(row.values, row.nulls, strict=True)))
    if response.truncated:
        typer.echo(f"(only the first {max_rows} rows are shown)", err=True)
