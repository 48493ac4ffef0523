"""`autoloader preview|cancel|ticks|deliveries`: what the next run would load, stopping a run, and what the
schedule and the webhook did."""

from __future__ import annotations

from typing import Annotated

import typer

from autoloader.cli.connection import Connection
from autoloader.cli.output import call, print_json
from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc


def _control(connection: Connection) -> pb_grpc.ControlServiceStub:
    return pb_grpc.ControlServiceStub(connection.channel())


def preview(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the files to name")] = 20,
) -> None:
    """What the next run would load (files, bytes, the first of them) and anything to know first. Loads nothing."""
    answer = call(
        lambda c: _control(c).PreviewIngestion(
            pb.PreviewIngestionRequest(ingestion_id=ingestion_id, page_size=limit), metadata=c.metadata(), timeout=120
        )
    )
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
    response = call(lambda c: _control(c).CancelRun(pb.CancelRunRequest(run_id=run_id), metadata=c.metadata()))
    print_json(response.run)


def ticks(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the newest ticks")] = 20,
) -> None:
    """The schedule's due times, newest first: FIRED (a run was queued), SKIPPED (a run was active), FAILED."""
    response = call(
        lambda c: _control(c).ListScheduleTicks(
            pb.ListScheduleTicksRequest(ingestion_id=ingestion_id, page_size=limit), metadata=c.metadata()
        )
    )
    for tick in response.ticks:
        missed = f" (+{tick.missed_ticks} missed)" if tick.missed_ticks else ""
        detail = f"  {tick.detail}" if tick.detail and tick.outcome != "FIRED" else ""
        typer.echo(f"{tick.tick_time.ToDatetime().isoformat()}  {tick.outcome:<8} {tick.run_id}{missed}{detail}")


def deliveries(
    ingestion_id: str,
    limit: Annotated[int, typer.Option(help="How many of the newest deliveries")] = 20,
) -> None:
    """The webhook deliveries of the ingestion's runs, newest first, with each attempt."""
    response = call(
        lambda c: _control(c).ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(ingestion_id=ingestion_id, page_size=limit), metadata=c.metadata()
        )
    )
    for delivery in response.deliveries:
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
    request = pb.ListAuditEventsRequest(page_size=limit, principal=principal, ingestion_id=ingestion_id)
    answer = call(lambda c: _control(c).ListAuditEvents(request, metadata=c.metadata()))
    for event in answer.events:
        target = event.ingestion_id or event.run_id or event.target_token_id
        when = event.event_time.ToDatetime().isoformat(timespec="seconds")
        typer.echo(f"{when}  {event.principal} ({event.token_id})  {event.action} {target}  {event.result}")
