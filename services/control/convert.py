"""Proto messages ↔ domain objects. Defaults for unset optional fields are applied here."""

from __future__ import annotations

from typing import Any

from autoloader.control.v1 import control_pb2 as pb
from services.control import models
from services.shared.auth import Role, TokenRecord
from services.shared.timestamps import to_timestamp

_ROLE_TO_PB: dict[Role, Any] = {Role.VIEWER: pb.ROLE_VIEWER, Role.EDITOR: pb.ROLE_EDITOR, Role.ADMIN: pb.ROLE_ADMIN}
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
        ),
        destination=models.Destination(
            table=message.destination.table,
            write_mode=message.destination.write_mode or models.DEFAULT_WRITE_MODE,
        ),
        max_retries=message.max_retries if message.HasField("max_retries") else models.DEFAULT_MAX_RETRIES,
        max_files_per_run=message.max_files_per_run if message.HasField("max_files_per_run") else None,
        max_bytes_per_run=message.max_bytes_per_run if message.HasField("max_bytes_per_run") else None,
        schedule=(
            models.Schedule(cron=message.schedule.cron, timezone=message.schedule.timezone)
            if message.HasField("schedule")
            else None
        ),
        enabled=message.enabled if message.HasField("enabled") else True,
    )


def ingestion_to_pb(ingestion: models.Ingestion) -> pb.Ingestion:
    source = ingestion.source
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
        ),
        destination=pb.Destination(table=ingestion.destination.table, write_mode=ingestion.destination.write_mode),
        max_retries=ingestion.max_retries,
        max_files_per_run=ingestion.max_files_per_run,
        max_bytes_per_run=ingestion.max_bytes_per_run,
        schedule=(
            pb.Schedule(cron=ingestion.schedule.cron, timezone=ingestion.schedule.timezone)
            if ingestion.schedule
            else None
        ),
        enabled=ingestion.enabled,
        owner=ingestion.owner,
        create_time=to_timestamp(ingestion.create_time),
        update_time=to_timestamp(ingestion.update_time),
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
