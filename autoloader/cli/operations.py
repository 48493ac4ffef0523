"""`autoloader preview|cancel|ticks|deliveries|audit`: what the next run would load, stopping a run, what the
schedule and the webhook did, and the audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from autoloader.cli.output import call, print_json


def preview(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the files to name")] = 20,
) -> None:
    """What the next run would load (files, bytes, the first of them) and anything to know first. Loads nothing."""
    answer = call(lambda c: c.preview(ingestion_id, page_size=limit))
    typer.echo(
        f"next run: {answer.files_to_process} files, {answer.bytes_to_process} bytes"
        f" (waiting in all: {answer.files_pending} files, {answer.bytes_pending} bytes;"
        f" listed: {answer.files_discovered}; table exists: {'yes' if answer.table_exists else 'no'})"
    )
    for entry in answer.files:
        typer.echo(f"  {entry.size:>12}  {entry.last_modified.ToDatetime().isoformat(timespec='seconds')}  {entry.key}")
    for warning in answer.warnings:
        typer.echo(f"warning: {warning}", err=True)


def cancel(run_id: str) -> None:
    """Cancel a queued or running run: nothing of it is committed and its files load in the next run."""
    print_json(call(lambda c: c.cancel_run(run_id)))


def ticks(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the newest ticks")] = 20,
) -> None:
    """The schedule's due times, newest first: FIRED (a run was queued), SKIPPED (a run was active), FAILED."""
    for tick in call(lambda c: list(c.list_schedule_ticks(ingestion_id, limit=limit))):
        missed = f" (+{tick.missed_ticks} missed)" if tick.missed_ticks else ""
        detail = f"  {tick.detail}" if tick.detail and tick.outcome != "FIRED" else ""
        typer.echo(f"{tick.tick_time.ToDatetime().isoformat()}  {tick.outcome:<8} {tick.run_id}{missed}{detail}")


def deliveries(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the newest deliveries")] = 20,
) -> None:
    """The webhook deliveries of the ingestion's runs, newest first, with each attempt."""
    for delivery in call(lambda c: list(c.list_webhook_deliveries(ingestion_id, limit=limit))):
        typer.echo(f"{delivery.delivery_id}  {delivery.status:<9} {delivery.run_id}  {delivery.url}")
        for attempt in delivery.attempts:
            outcome = attempt.error or f"HTTP {attempt.status_code}"
            typer.echo(f"    {attempt.attempt_time.ToDatetime().isoformat()}  {outcome}  {attempt.duration_ms} ms")


def audit(
    principal: Annotated[str, typer.Option(help="Only this principal's calls")] = "",
    ingestion_id: Annotated[str, typer.Option("--ingestion", help="Only calls naming this ingestion")] = "",
    limit: Annotated[int, typer.Option(help="How many events, newest first")] = 50,
) -> None:
    """The audit log (admins): who changed what, with which token, and how it ended, newest first."""
    events = call(lambda c: list(c.list_audit_events(principal=principal, ingestion_id=ingestion_id, limit=limit)))
    for event in events:
        target = event.ingestion_id or event.run_id or event.target_token_id
        when = event.event_time.ToDatetime().isoformat(timespec="seconds")
        typer.echo(f"{when}  {event.principal} ({event.token_id})  {event.action} {target}  {event.result}")
