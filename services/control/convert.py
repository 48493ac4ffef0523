"""Proto messages ↔ domain objects. Defaults for unset optional fields are applied here."""

from __future__ import annotations

from typing import Any

from autoloader.control.v1 import control_pb2 as pb
from services.control import models
from services.control.audit_repository import StoredAuditEvent
from services.control.schedule_repository import TickRecord
from services.control.share_repository import Share
from services.shared.auth import Role, TokenRecord
from services.shared.timestamps import to_timestamp

_ROLE_TO_PB: dict[Role, Any] = {
    Role.VIEWER: pb.ROLE_VIEWER,
    Role.RUNNER: pb.ROLE_RUNNER,
    Role.EDITOR: pb.ROLE_EDITOR,
    Role.ADMIN: pb.ROLE_ADMIN,
}
_ROLE_FROM_PB: dict[int, Role] = {v: k for k, v in _ROLE_TO_PB.items()}


def ingestion_from_pb(message: pb.Ingestion) -> models.Ingestion:
    source = message.source
    return models.Ingestion(
        ingestion_id=message.ingestion_id,
        name=message.name,
        source=models.Source(
            uri=source.uri,
            pattern=source.pattern,
            format=source.format,
            options=dict(source.options),
            endpoint_url=source.endpoint_url,
            region=source.region,
            credentials_ref=source.credentials_ref,
            listing=_listing_from_pb(source.listing),
        ),
        destination=_destination_from_pb(message.destination),
        max_retries=message.max_retries if message.HasField("max_retries") else models.DEFAULT_MAX_RETRIES,
        max_files_per_run=message.max_files_per_run if message.HasField("max_files_per_run") else None,
        max_bytes_per_run=message.max_bytes_per_run if message.HasField("max_bytes_per_run") else None,
        schedule=(
            models.Schedule(cron=message.schedule.cron, timezone=message.schedule.timezone)
            if message.HasField("schedule")
            else None
        ),
        enabled=message.enabled if message.HasField("enabled") else True,
        schema=_schema_from_pb(message.schema),
        metadata_columns=models.MetadataColumns(
            enabled=message.metadata_columns.enabled,
            prefix=message.metadata_columns.prefix or models.DEFAULT_METADATA_PREFIX,
        ),
        webhook=_webhook_from_pb(message.webhook) if message.HasField("webhook") else None,
    )


def _listing_from_pb(message: pb.Listing) -> models.Listing:
    return models.Listing(
        mode=message.mode or "full",
        full_listing_every_runs=(
            message.full_listing_every_runs
            if message.HasField("full_listing_every_runs")
            else models.DEFAULT_FULL_LISTING_EVERY_RUNS
        ),
        full_listing_interval_seconds=message.full_listing_interval_seconds,
    )


def _webhook_from_pb(message: pb.Webhook) -> models.Webhook:
    return models.Webhook(
        url=message.url,
        secret=message.secret,
        max_attempts=message.max_attempts if message.HasField("max_attempts") else models.DEFAULT_WEBHOOK_ATTEMPTS,
    )


def _destination_from_pb(message: pb.Destination) -> models.Destination:
    return models.Destination(
        table=message.table,
        write_mode=message.write_mode or models.DEFAULT_WRITE_MODE,
        merge_keys=tuple(message.merge_keys),
        merge_order_by=message.merge_order_by,
        partition_by=tuple(message.partition_by),
        table_properties=dict(message.table_properties),
    )


def _schema_from_pb(message: pb.SchemaPolicy) -> models.SchemaPolicy:
    return models.SchemaPolicy(
        ddl=message.ddl,
        columns=tuple(models.Column(name=c.name, type=c.type) for c in message.columns),
        hints=dict(message.hints),
        evolution_mode=message.evolution_mode or models.DEFAULT_EVOLUTION_MODE,
        sample_files=message.sample_files if message.HasField("sample_files") else models.DEFAULT_SAMPLE_FILES,
        sample_bytes=message.sample_bytes if message.HasField("sample_bytes") else models.DEFAULT_SAMPLE_BYTES,
        rescue_data=message.rescue_data if message.HasField("rescue_data") else True,
    )


def columns_to_pb(columns: tuple[models.Column, ...] | list[models.Column]) -> list[pb.Column]:
    return [pb.Column(name=c.name, type=c.type) for c in columns]


def ingestion_to_pb(ingestion: models.Ingestion, *, reveal_secrets: bool = False) -> pb.Ingestion:
    """The message users see (secrets masked), or with reveal_secrets the copy a run works from."""
    source, destination, schema, webhook = ingestion.source, ingestion.destination, ingestion.schema, ingestion.webhook
    return pb.Ingestion(
        ingestion_id=ingestion.ingestion_id,
        name=ingestion.name,
        source=pb.Source(
            uri=source.uri,
            pattern=source.pattern,
            format=source.format,
            options=source.options,
            endpoint_url=source.endpoint_url,
            region=source.region,
            credentials_ref=source.credentials_ref,
            listing=pb.Listing(
                mode=source.listing.mode,
                full_listing_every_runs=source.listing.full_listing_every_runs,
                full_listing_interval_seconds=source.listing.full_listing_interval_seconds,
            ),
        ),
        destination=pb.Destination(
            table=destination.table,
            write_mode=destination.write_mode,
            merge_keys=destination.merge_keys,
            merge_order_by=destination.merge_order_by,
            partition_by=destination.partition_by,
            table_properties=destination.table_properties,
        ),
        max_retries=ingestion.max_retries,
        max_files_per_run=ingestion.max_files_per_run,
        max_bytes_per_run=ingestion.max_bytes_per_run,
        schedule=(
            pb.Schedule(cron=ingestion.schedule.cron, timezone=ingestion.schedule.timezone)
            if ingestion.schedule
            else None
        ),
        enabled=ingestion.enabled,
        schema=pb.SchemaPolicy(
            ddl=schema.ddl,
            columns=columns_to_pb(schema.columns),
            hints=schema.hints,
            evolution_mode=schema.evolution_mode,
            sample_files=schema.sample_files,
            sample_bytes=schema.sample_bytes,
            rescue_data=schema.rescue_data,
        ),
        metadata_columns=pb.MetadataColumns(
            enabled=ingestion.metadata_columns.enabled, prefix=ingestion.metadata_columns.prefix
        ),
        webhook=(
            pb.Webhook(
                url=webhook.url,
                secret=webhook.secret if reveal_secrets else models.MASKED_SECRET,
                max_attempts=webhook.max_attempts,
            )
            if webhook
            else None
        ),
        owner=ingestion.owner,
        create_time=to_timestamp(ingestion.create_time),
        update_time=to_timestamp(ingestion.update_time),
        next_fire_time=to_timestamp(ingestion.next_fire_time),
    )


def role_to_pb(role: Role) -> Any:
    return _ROLE_TO_PB[role]


def role_from_pb(role: int) -> Role | None:
    return _ROLE_FROM_PB.get(role)


def token_to_pb(token: TokenRecord) -> pb.Token:
    return pb.Token(
        token_id=token.token_id,
        name=token.name,
        role=_ROLE_TO_PB[token.role],
        create_time=to_timestamp(token.create_time),
        revoke_time=to_timestamp(token.revoke_time),
        created_by=token.created_by,
    )


def tick_to_pb(tick: TickRecord) -> pb.ScheduleTick:
    return pb.ScheduleTick(
        tick_time=to_timestamp(tick.tick_time),
        outcome=tick.outcome,
        run_id=tick.run_id,
        missed_ticks=tick.missed_ticks,
        detail=tick.detail,
        handle_time=to_timestamp(tick.handle_time),
    )


def share_to_pb(share: Share) -> pb.Share:
    return pb.Share(
        ingestion_id=share.ingestion_id,
        principal=share.principal,
        role=_ROLE_TO_PB[share.role],
        granted_by=share.granted_by,
        grant_time=to_timestamp(share.grant_time),
    )


def audit_event_to_pb(stored: StoredAuditEvent) -> pb.AuditEvent:
    event = stored.event
    return pb.AuditEvent(
        event_id=stored.event_id,
        event_time=to_timestamp(stored.event_time),
        principal=event.principal,
        token_id=event.token_id,
        action=event.action,
        ingestion_id=event.ingestion_id,
        run_id=event.run_id,
        target_token_id=event.target_token_id,
        result=event.result,
        request_id=event.request_id,
    )
