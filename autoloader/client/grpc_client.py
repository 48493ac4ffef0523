"""AutoloaderClient: the control service over gRPC, one typed method per call users make.

Return style: the generated proto messages. A method returns the resource when the answer wraps one
(Ingestion, Run, Share, Token), else the whole answer (ClearProcessedFilesResponse, PreviewIngestionResponse,
...); every list_* method returns an iterator that fetches further pages as it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from autoloader.client import environment
from autoloader.client.errors import InvalidArgument, from_rpc_error
from autoloader.client.messages import IngestionLike, RoleLike, mask_paths, to_ingestion, to_role, to_timestamp
from autoloader.client.paging import iterate_pages
from autoloader.client.tls import TlsOptions
from autoloader.client.waiting import ProgressCallback, poll_run
from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc
from autoloader.executor.v1 import executor_pb2 as epb
from autoloader.executor.v1 import executor_pb2_grpc as epb_grpc
from autoloader.tracker.v1 import tracker_pb2 as tpb

Response = TypeVar("Response", bound=Message)

DEFAULT_TIMEOUT = 60.0
# A preview, and a dry-run clear, wait for an executor to list the source.
LISTING_TIMEOUT = 120.0
SQL_TIMEOUT = 600.0


class AutoloaderClient:
    """The Autoloader API over gRPC. Every call goes to the control service, which checks the token's rights;
    only `sql` goes to an executor (admin tokens only).

        with AutoloaderClient.from_environment() as client:
            run = client.wait_for_run(client.run("users").run_id)
    """

    def __init__(
        self,
        address: str,
        token: str,
        *,
        tls: TlsOptions | None = None,
        executor_address: str = "",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self._tls = tls or TlsOptions()
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout
        self._executor_address = executor_address
        self._channel = self._tls.grpc_channel(address)
        self._control = pb_grpc.ControlServiceStub(self._channel)
        self._executor_channel: grpc.Channel | None = None

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> AutoloaderClient:
        """AUTOLOADER_CONTROL_ADDRESS (and _EXECUTOR_ADDRESS for sql), AUTOLOADER_TOKEN and AUTOLOADER_TLS_*;
        what is not set comes from the running `autoloader up` ($AUTOLOADER_HOME)."""
        addresses = environment.locate(environ)
        return cls(
            addresses.control(),
            environment.find_token(environ),
            tls=environment.tls_from_environment(environ),
            executor_address=addresses.grpc["executor"],
            timeout=timeout,
        )

    # ------------------------------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._channel.close()
        if self._executor_channel is not None:
            self._executor_channel.close()

    def __enter__(self) -> AutoloaderClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(
        self,
        rpc: Callable[..., Any],
        request: Message,
        response_type: type[Response],
        timeout: float | None = None,
    ) -> Response:
        # response_type only types the answer: the generated service stubs carry no annotations.
        try:
            response: Response = rpc(request, metadata=self._metadata, timeout=timeout or self._timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response

    # ----------------------------------------------------------------------------------------- ingestions

    def create_ingestion(self, ingestion: IngestionLike, *, request_id: str = "") -> pb.Ingestion:
        """Create an ingestion from an Ingestion or its JSON form (the HTTP API's body)."""
        request = pb.CreateIngestionRequest(ingestion=to_ingestion(ingestion), request_id=request_id)
        return self._call(self._control.CreateIngestion, request, pb.CreateIngestionResponse).ingestion

    def get_ingestion(self, ingestion_id: str) -> pb.Ingestion:
        return self._call(
            self._control.GetIngestion, pb.GetIngestionRequest(ingestion_id=ingestion_id), pb.GetIngestionResponse
        ).ingestion

    def list_ingestions(self, *, page_size: int | None = None, limit: int | None = None) -> Iterator[pb.Ingestion]:
        """Every ingestion the caller can see, ordered by id."""

        def fetch(token: str, size: int) -> tuple[Sequence[pb.Ingestion], str]:
            page = self._call(
                self._control.ListIngestions,
                pb.ListIngestionsRequest(page_size=size, page_token=token),
                pb.ListIngestionsResponse,
            )
            return page.ingestions, page.next_page_token

        return iterate_pages(fetch, page_size=page_size, limit=limit)

    def update_ingestion(
        self,
        ingestion_id: str,
        changes: IngestionLike,
        *,
        update_mask: Sequence[str] | None = None,
        request_id: str = "",
    ) -> pb.Ingestion:
        """Change the fields named by update_mask. With a dict and no mask, the fields present in it change
        (`{"source": {"pattern": "*.csv"}}` changes the pattern only; None clears a field), as a PATCH does."""
        if update_mask is None:
            if isinstance(changes, pb.Ingestion):
                raise InvalidArgument("update_ingestion: an Ingestion needs an update_mask naming the fields to change")
            update_mask = mask_paths(changes)
        request = pb.UpdateIngestionRequest(
            ingestion_id=ingestion_id,
            ingestion=to_ingestion(changes),
            update_mask=FieldMask(paths=list(update_mask)),
            request_id=request_id,
        )
        return self._call(self._control.UpdateIngestion, request, pb.UpdateIngestionResponse).ingestion

    def delete_ingestion(self, ingestion_id: str, *, request_id: str = "") -> pb.DeleteIngestionResponse:
        request = pb.DeleteIngestionRequest(ingestion_id=ingestion_id, request_id=request_id)
        return self._call(self._control.DeleteIngestion, request, pb.DeleteIngestionResponse)

    def get_schema(self, ingestion_id: str) -> pb.GetIngestionSchemaResponse:
        """The table's columns as the last run left them, else as configured."""
        return self._call(
            self._control.GetIngestionSchema,
            pb.GetIngestionSchemaRequest(ingestion_id=ingestion_id),
            pb.GetIngestionSchemaResponse,
        )

    def preview(
        self, ingestion_id: str, *, page_size: int = 20, timeout: float = LISTING_TIMEOUT
    ) -> pb.PreviewIngestionResponse:
        """What the next run would load, loading nothing."""
        request = pb.PreviewIngestionRequest(ingestion_id=ingestion_id, page_size=page_size)
        return self._call(self._control.PreviewIngestion, request, pb.PreviewIngestionResponse, timeout)

    # ---------------------------------------------------------------------------------------------- runs

    def run(self, ingestion_id: str, *, request_id: str = "") -> tpb.Run:
        """Queue a run; AlreadyExists names the active run while one is queued or running."""
        request = pb.RunIngestionRequest(ingestion_id=ingestion_id, request_id=request_id)
        return self._call(self._control.RunIngestion, request, pb.RunIngestionResponse).run

    def get_run(self, run_id: str) -> tpb.Run:
        return self._call(self._control.GetRun, pb.GetRunRequest(run_id=run_id), pb.GetRunResponse).run

    def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = 3600.0,
        poll: float = 1.0,
        on_progress: ProgressCallback | None = None,
    ) -> tpb.Run:
        """Poll the run until it ends and return it; RunTimeout after `timeout` seconds (None: never)."""
        return poll_run(lambda: self.get_run(run_id), timeout=timeout, poll=poll, on_progress=on_progress)

    def cancel_run(self, run_id: str, *, request_id: str = "") -> tpb.Run:
        return self._call(
            self._control.CancelRun, pb.CancelRunRequest(run_id=run_id, request_id=request_id), pb.CancelRunResponse
        ).run

    def list_runs(
        self, ingestion_id: str, *, page_size: int | None = None, limit: int | None = None
    ) -> Iterator[tpb.Run]:
        """The ingestion's runs, newest first."""

        def fetch(token: str, size: int) -> tuple[Sequence[tpb.Run], str]:
            request = pb.ListIngestionRunsRequest(ingestion_id=ingestion_id, page_size=size, page_token=token)
            page = self._call(self._control.ListIngestionRuns, request, pb.ListIngestionRunsResponse)
            return page.runs, page.next_page_token

        return iterate_pages(fetch, page_size=page_size, limit=limit)

    # --------------------------------------------------------------------------------------------- files

    def list_processed_files(
        self,
        ingestion_id: str,
        *,
        status: str = "",
        key_prefix: str = "",
        run_id: str = "",
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        page_size: int | None = None,
        limit: int | None = None,
    ) -> Iterator[tpb.ProcessedFile]:
        """The ingestion's processed-file records, filtered by every criterion given."""

        def fetch(token: str, size: int) -> tuple[Sequence[tpb.ProcessedFile], str]:
            request = pb.ListProcessedFilesRequest(
                ingestion_id=ingestion_id,
                status=status,
                key_prefix=key_prefix,
                run_id=run_id,
                modified_after_time=to_timestamp(modified_after),
                modified_before_time=to_timestamp(modified_before),
                page_size=size,
                page_token=token,
            )
            page = self._call(self._control.ListProcessedFiles, request, pb.ListProcessedFilesResponse)
            return page.processed_files, page.next_page_token

        return iterate_pages(fetch, page_size=page_size, limit=limit)

    def clear_processed_files(
        self,
        ingestion_id: str,
        *,
        key_prefix: str = "",
        keys: Sequence[str] = (),
        status: str = "",
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        dry_run: bool = False,
        timeout: float = LISTING_TIMEOUT,
    ) -> pb.ClearProcessedFilesResponse:
        """Forget processed files (every one, or those all given criteria select); dry_run counts only."""
        request = pb.ClearProcessedFilesRequest(
            ingestion_id=ingestion_id,
            key_prefix=key_prefix,
            keys=list(keys),
            status=status,
            modified_after_time=to_timestamp(modified_after),
            modified_before_time=to_timestamp(modified_before),
            dry_run=dry_run,
        )
        return self._call(self._control.ClearProcessedFiles, request, pb.ClearProcessedFilesResponse, timeout)

    # ----------------------------------------------------------------------------- schedules and webhooks

    def list_schedule_ticks(
        self, ingestion_id: str, *, page_size: int | None = None, limit: int | None = None
    ) -> Iterator[pb.ScheduleTick]:
        """The schedule's due times and what came of them, newest first."""

        def fetch(token: str, size: int) -> tuple[Sequence[pb.ScheduleTick], str]:
            request = pb.ListScheduleTicksRequest(ingestion_id=ingestion_id, page_size=size, page_token=token)
            page = self._call(self._control.ListScheduleTicks, request, pb.ListScheduleTicksResponse)
            return page.ticks, page.next_page_token

        return iterate_pages(fetch, page_size=page_size, limit=limit)

    def list_webhook_deliveries(
        self, ingestion_id: str, *, page_size: int | None = None, limit: int | None = None
    ) -> Iterator[tpb.WebhookDelivery]:
        """The webhook deliveries of the ingestion's runs with their attempts, newest first."""

        def fetch(token: str, size: int) -> tuple[Sequence[tpb.WebhookDelivery], str]:
            request = pb.ListWebhookDeliveriesRequest(ingestion_id=ingestion_id, page_size=size, page_token=token)
            page = self._call(self._control.ListWebhookDeliveries, request, pb.ListWebhookDeliveriesResponse)
            return page.deliveries, page.next_page_token

        return iterate_pages(fetch, page_size=page_size, limit=limit)

    # -------------------------------------------------------------------------------------------- sharing

    def share_ingestion(self, ingestion_id: str, principal: str, role: RoleLike, *, request_id: str = "") -> pb.Share:
        """Give a principal a role ("viewer", "runner", "editor") on the ingestion (owner or admin)."""
        request = pb.ShareIngestionRequest(
            ingestion_id=ingestion_id, principal=principal, role=to_role(role), request_id=request_id
        )
        return self._call(self._control.ShareIngestion, request, pb.ShareIngestionResponse).share

    def unshare_ingestion(
        self, ingestion_id: str, principal: str, *, request_id: str = ""
    ) -> pb.UnshareIngestionResponse:
        request = pb.UnshareIngestionRequest(ingestion_id=ingestion_id, principal=principal, request_id=request_id)
        return self._call(self._control.UnshareIngestion, request, pb.UnshareIngestionResponse)

    def list_shares(self, ingestion_id: str) -> Iterator[pb.Share]:
        request = pb.ListIngestionSharesRequest(ingestion_id=ingestion_id)
        return iter(self._call(self._control.ListIngestionShares, request, pb.ListIngestionSharesResponse).shares)

    # ------------------------------------------------------------------------------ tokens, audit, caller

    def list_audit_events(
        self,
        *,
        principal: str = "",
        ingestion_id: str = "",
        page_size: int | None = None,
        limit: int | None = None,
    ) -> Iterator[pb.AuditEvent]:
        """The audit log, newest first (admins)."""

        def fetch(token: str, size: int) -> tuple[Sequence[pb.AuditEvent], str]:
            request = pb.ListAuditEventsRequest(
                principal=principal, ingestion_id=ingestion_id, page_size=size, page_token=token
            )
            page = self._call(self._control.ListAuditEvents, request, pb.ListAuditEventsResponse)
            return page.events, page.next_page_token

        return iterate_pages(fetch, page_size=page_size, limit=limit)

    def create_token(self, name: str, role: RoleLike, *, request_id: str = "") -> pb.CreateTokenResponse:
        """A new token (admins); the answer's `secret` is shown only this once."""
        request = pb.CreateTokenRequest(name=name, role=to_role(role), request_id=request_id)
        return self._call(self._control.CreateToken, request, pb.CreateTokenResponse)

    def list_tokens(self, *, show_revoked: bool = False) -> Iterator[pb.Token]:
        return iter(
            self._call(
                self._control.ListTokens, pb.ListTokensRequest(show_revoked=show_revoked), pb.ListTokensResponse
            ).tokens
        )

    def revoke_token(self, token_id: str, *, request_id: str = "") -> pb.Token:
        request = pb.RevokeTokenRequest(token_id=token_id, request_id=request_id)
        return self._call(self._control.RevokeToken, request, pb.RevokeTokenResponse).token

    def whoami(self) -> pb.GetCallerResponse:
        """The token's principal name, role and id."""
        return self._call(self._control.GetCaller, pb.GetCallerRequest(), pb.GetCallerResponse)

    # ------------------------------------------------------------------------------------------------ sql

    def sql(self, statement: str, *, max_rows: int = 1000, timeout: float = SQL_TIMEOUT) -> epb.ExecuteSqlResponse:
        """Run Spark SQL on an executor (admin tokens only; needs the executor's address)."""
        if self._executor_channel is None:
            address = environment.StackAddresses({"executor": self._executor_address}, "").require("executor")
            self._executor_channel = self._tls.grpc_channel(address)
        stub = epb_grpc.ExecutorServiceStub(self._executor_channel)
        request = epb.ExecuteSqlRequest(statement=statement, max_rows=max_rows)
        return self._call(stub.ExecuteSql, request, epb.ExecuteSqlResponse, timeout)
