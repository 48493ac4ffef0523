"""AutoloaderHttpClient: the core calls over the HTTP API (httpx), for callers that cannot reach gRPC.

Same method names, arguments, return types (the proto messages, parsed from the JSON answers) and
exceptions as AutoloaderClient.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from google.protobuf.message import Message

from autoloader.client import environment
from autoloader.client.errors import (
    ConfigurationError,
    DeadlineExceeded,
    InvalidArgument,
    Unavailable,
    from_http_error,
)
from autoloader.client.messages import (
    IngestionLike,
    from_json,
    mask_paths,
    select_paths,
    to_ingestion,
    to_json,
    to_timestamp,
)
from autoloader.client.paging import iterate_pages
from autoloader.client.tls import TlsOptions
from autoloader.client.waiting import ProgressCallback, poll_run
from autoloader.control.v1 import control_pb2 as pb
from autoloader.tracker.v1 import tracker_pb2 as tpb

M = TypeVar("M", bound=Message)
Query = list[tuple[str, str | int | float | bool | None]]

DEFAULT_TIMEOUT = 60.0
LISTING_TIMEOUT = 120.0


def _path(value: str) -> str:
    return quote(value, safe="")


def _query(**params: str | int | bool | datetime | Sequence[str] | None) -> Query:
    """Query parameters as the gateway reads them: lists repeated, booleans as true, empty ones left out."""
    query: Query = []
    for name, value in params.items():
        if value is None or value == "" or value is False or (isinstance(value, int) and value == 0):
            continue
        if isinstance(value, bool):
            query.append((name, "true"))
        elif isinstance(value, datetime):
            query.append((name, to_timestamp(value).ToJsonString()))
        elif isinstance(value, (str, int)):
            query.append((name, str(value)))
        else:
            query += [(name, item) for item in value]
    return query


class AutoloaderHttpClient:
    """The Autoloader HTTP API (`https://host:8080`, without /api/v1).

    with AutoloaderHttpClient.from_environment() as client:
        print(client.get_run(client.run("users").run_id).status)
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        tls: TlsOptions | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        context = (tls or TlsOptions()).ssl_context()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            verify=context if context is not None else True,
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> AutoloaderHttpClient:
        """AUTOLOADER_HTTP_URL (else the running `autoloader up`'s), AUTOLOADER_TOKEN and AUTOLOADER_TLS_*."""
        url = environment.locate(environ).http_url
        if not url:
            raise ConfigurationError("no HTTP API found: start one with `autoloader up` or set AUTOLOADER_HTTP_URL")
        return cls(url, environment.find_token(environ), tls=environment.tls_from_environment(environ), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AutoloaderHttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        answer: M,
        *,
        query: Query | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> M:
        try:
            response = self._http.request(
                method,
                path,
                params=query,
                json=body,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as error:
            raise DeadlineExceeded(f"{method} {path}: no answer in time") from error
        except httpx.TransportError as error:
            raise Unavailable(f"{method} {path}: {error}") from error
        if response.is_error:
            raise from_http_error(response.status_code, response.content, response.headers.get("Retry-After"))
        return from_json(response.json(), answer)

    # ----------------------------------------------------------------------------------------- ingestions

    def create_ingestion(self, ingestion: IngestionLike, *, request_id: str = "") -> pb.Ingestion:
        body = to_json(to_ingestion(ingestion))
        return self._request("POST", "/ingestions", pb.Ingestion(), query=_query(request_id=request_id), body=body)

    def get_ingestion(self, ingestion_id: str) -> pb.Ingestion:
        return self._request("GET", f"/ingestions/{_path(ingestion_id)}", pb.Ingestion())

    def list_ingestions(self, *, page_size: int | None = None, limit: int | None = None) -> Iterator[pb.Ingestion]:
        def fetch(token: str, size: int) -> tuple[Sequence[pb.Ingestion], str]:
            query = _query(page_size=size, page_token=token)
            page = self._request("GET", "/ingestions", pb.ListIngestionsResponse(), query=query)
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
        """A PATCH of the fields present in `changes` (a dict), or of those update_mask names."""
        if isinstance(changes, pb.Ingestion):
            if update_mask is None:
                raise InvalidArgument("update_ingestion: an Ingestion needs an update_mask naming the fields to change")
            body = select_paths(to_json(changes), list(update_mask))
        else:
            mask_paths(changes)  # unknown fields are refused here, as the gRPC client does
            body = select_paths(dict(changes), list(update_mask)) if update_mask is not None else dict(changes)
        path = f"/ingestions/{_path(ingestion_id)}"
        return self._request("PATCH", path, pb.Ingestion(), query=_query(request_id=request_id), body=body)

    def delete_ingestion(self, ingestion_id: str, *, request_id: str = "") -> pb.DeleteIngestionResponse:
        path = f"/ingestions/{_path(ingestion_id)}"
        return self._request("DELETE", path, pb.DeleteIngestionResponse(), query=_query(request_id=request_id))

    def get_schema(self, ingestion_id: str) -> pb.GetIngestionSchemaResponse:
        return self._request("GET", f"/ingestions/{_path(ingestion_id)}/schema", pb.GetIngestionSchemaResponse())

    def preview(
        self, ingestion_id: str, *, page_size: int = 20, timeout: float = LISTING_TIMEOUT
    ) -> pb.PreviewIngestionResponse:
        path = f"/ingestions/{_path(ingestion_id)}/preview"
        query: Query = [("page_size", page_size)]
        return self._request("GET", path, pb.PreviewIngestionResponse(), query=query, timeout=timeout)

    # ---------------------------------------------------------------------------------------------- runs

    def run(self, ingestion_id: str, *, request_id: str = "") -> tpb.Run:
        body = {"request_id": request_id} if request_id else {}
        return self._request("POST", f"/ingestions/{_path(ingestion_id)}/run", tpb.Run(), body=body)

    def get_run(self, run_id: str) -> tpb.Run:
        return self._request("GET", f"/runs/{_path(run_id)}", tpb.Run())

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
        body = {"request_id": request_id} if request_id else {}
        return self._request("POST", f"/runs/{_path(run_id)}/cancel", tpb.Run(), body=body)

    def list_runs(
        self, ingestion_id: str, *, page_size: int | None = None, limit: int | None = None
    ) -> Iterator[tpb.Run]:
        def fetch(token: str, size: int) -> tuple[Sequence[tpb.Run], str]:
            path = f"/ingestions/{_path(ingestion_id)}/runs"
            page = self._request(
                "GET", path, pb.ListIngestionRunsResponse(), query=_query(page_size=size, page_token=token)
            )
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
        def fetch(token: str, size: int) -> tuple[Sequence[tpb.ProcessedFile], str]:
            query = _query(
                status=status,
                key_prefix=key_prefix,
                run_id=run_id,
                modified_after_time=modified_after,
                modified_before_time=modified_before,
                page_size=size,
                page_token=token,
            )
            path = f"/ingestions/{_path(ingestion_id)}/processed-files"
            page = self._request("GET", path, pb.ListProcessedFilesResponse(), query=query)
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
        query = _query(
            key_prefix=key_prefix,
            keys=list(keys),
            status=status,
            modified_after_time=modified_after,
            modified_before_time=modified_before,
            dry_run=dry_run,
        )
        path = f"/ingestions/{_path(ingestion_id)}/processed-files"
        return self._request("DELETE", path, pb.ClearProcessedFilesResponse(), query=query, timeout=timeout)

    def whoami(self) -> pb.GetCallerResponse:
        return self._request("GET", "/whoami", pb.GetCallerResponse())
