"""The SDK through the real stack: the gRPC client (control, and the executor for SQL) and the HTTP client.

The services run in this event loop, so the blocking SDK runs on another thread (asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from autoloader.client import (
    AlreadyExists,
    AutoloaderClient,
    AutoloaderHttpClient,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RunTimeout,
    Unauthenticated,
)
from autoloader.control.v1 import control_pb2
from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.shared.auth import Role
from tests.support.runs import write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def config(ingestion_id: str, source: Path, table: str = "sdk.users") -> dict[str, Any]:
    return {
        "ingestion_id": ingestion_id,
        "name": "users from the SDK",
        "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
        "destination": {"table": table},
    }


BAD_CONFIG = {
    "name": "bad",
    "source": {"uri": "file:///tmp/sdk-bad/", "format": "xls"},
    "destination": {"table": "no_database"},
}


async def test_the_grpc_client_manages_ingestions_and_runs(stack: InProcessStack, tmp_path: Path) -> None:
    principal = unique("sdk-editor")
    token = await stack.make_token(Role.EDITOR, name=principal)
    ids = [unique("sdk") for _ in range(3)]
    environment = {
        "AUTOLOADER_HOME": str(tmp_path),  # no stack.json there: only the variables count
        "AUTOLOADER_CONTROL_ADDRESS": stack.control.address,
        "AUTOLOADER_TOKEN": token,
    }

    def flow() -> dict[str, Any]:
        with AutoloaderClient.from_environment(environment) as client:
            created = [client.create_ingestion(config(i, tmp_path)) for i in ids]
            # A fresh principal sees only its own ingestions: three, over two pages of two.
            listed = [i.ingestion_id for i in client.list_ingestions(page_size=2)]
            changed = client.update_ingestion(ids[0], {"source": {"pattern": "*.csv"}, "max_files_per_run": 5})
            queued = client.run(ids[0])
            with pytest.raises(AlreadyExists):
                client.run(ids[0])
            with pytest.raises(RunTimeout) as timed_out:
                client.wait_for_run(queued.run_id, timeout=0.3, poll=0.1)
            cancelled = client.cancel_run(queued.run_id)
            seen: list[str] = []
            ended = client.wait_for_run(queued.run_id, timeout=5, on_progress=lambda r: seen.append(r.status))
            client.share_ingestion(ids[0], "sdk-reader", "viewer")
            return {
                "created": created,
                "listed": listed,
                "changed": changed,
                "queued": queued,
                "timed_out": timed_out.value,
                "cancelled": cancelled,
                "ended": ended,
                "seen": seen,
                "runs": [r.run_id for r in client.list_runs(ids[0])],
                "files": list(client.list_processed_files(ids[0], page_size=1)),
                "cleared": client.clear_processed_files(ids[0]),
                "shares": [(s.principal, s.role) for s in client.list_shares(ids[0])],
                "caller": client.whoami(),
                "schema": client.get_schema(ids[0]),
                "deleted": [client.delete_ingestion(i).ingestion_id for i in ids],
            }

    result = await asyncio.to_thread(flow)

    assert [c.owner for c in result["created"]] == [principal] * 3
    assert result["listed"] == sorted(ids)
    assert result["changed"].source.pattern == "*.csv" and result["changed"].max_files_per_run == 5
    assert result["changed"].source.uri == tmp_path.as_uri() + "/"  # fields not named stay as they were
    assert isinstance(result["queued"], tpb.Run) and result["queued"].status == "QUEUED"
    assert result["timed_out"].run.status == "QUEUED"  # no executor here: the run waits
    assert result["cancelled"].status == result["ended"].status == "CANCELLED"
    assert result["seen"] == ["CANCELLED"]
    assert result["runs"] == [result["queued"].run_id]
    assert result["files"] == [] and result["cleared"].files_cleared == 0
    assert result["shares"] == [("sdk-reader", control_pb2.ROLE_VIEWER)]
    assert (result["caller"].name, result["schema"].origin) == (principal, "")
    assert result["deleted"] == ids


async def test_the_grpc_client_raises_typed_errors(stack: InProcessStack, tmp_path: Path) -> None:
    viewer = await stack.make_token(Role.VIEWER)

    def attempts() -> dict[str, Exception]:
        errors: dict[str, Exception] = {}
        with AutoloaderClient(stack.control.address, stack.admin_token) as admin:
            for name, call in {
                "missing": lambda: admin.get_ingestion(unique("missing")),
                "invalid": lambda: admin.create_ingestion(BAD_CONFIG),
            }.items():
                try:
                    call()
                except Exception as error:
                    errors[name] = error
        with AutoloaderClient(stack.control.address, viewer) as reader:
            try:
                reader.create_ingestion(config(unique("viewer"), tmp_path))
            except Exception as error:
                errors["viewer"] = error
        with AutoloaderClient(stack.control.address, "not-a-token") as stranger:
            try:
                stranger.whoami()
            except Exception as error:
                errors["stranger"] = error
        return errors

    errors = await asyncio.to_thread(attempts)

    assert isinstance(errors["missing"], NotFound)
    assert isinstance(errors["invalid"], InvalidArgument)
    fields = {v.field for v in errors["invalid"].violations}
    assert {"source.format", "destination.table"} <= fields, errors["invalid"].violations
    assert all(isinstance(v, FieldViolation) and v.description for v in errors["invalid"].violations)
    assert isinstance(errors["viewer"], PermissionDenied)
    assert isinstance(errors["stranger"], Unauthenticated)


async def test_the_http_client_does_the_same_core_flow(stack: InProcessStack, tmp_path: Path) -> None:
    token = await stack.make_token(Role.EDITOR)
    viewer = await stack.make_token(Role.VIEWER)
    ingestion_id = unique("sdk-http")

    def flow() -> dict[str, Any]:
        with AutoloaderHttpClient(stack.http_url, token) as client:
            created = client.create_ingestion(config(ingestion_id, tmp_path))
            fetched = client.get_ingestion(ingestion_id)
            listed = [i.ingestion_id for i in client.list_ingestions(page_size=1)]
            changed = client.update_ingestion(ingestion_id, {"name": "renamed", "source": {"pattern": "*.csv"}})
            queued = client.run(ingestion_id)
            with pytest.raises(RunTimeout):
                client.wait_for_run(queued.run_id, timeout=0.3, poll=0.1)
            runs = [r.run_id for r in client.list_runs(ingestion_id)]
            cancelled = client.cancel_run(queued.run_id)
            ended = client.wait_for_run(queued.run_id, timeout=5)
            files = list(client.list_processed_files(ingestion_id, status="PROCESSED"))
            cleared = client.clear_processed_files(ingestion_id, key_prefix="2026/")
            with pytest.raises(NotFound):
                client.get_run(unique("run"))
            with pytest.raises(InvalidArgument) as invalid:
                client.create_ingestion(BAD_CONFIG)
            deleted = client.delete_ingestion(ingestion_id)
        with AutoloaderHttpClient(stack.http_url, viewer) as reader, pytest.raises(PermissionDenied):
            reader.create_ingestion(config(unique("viewer"), tmp_path))
        return {
            "created": created,
            "fetched": fetched,
            "listed": listed,
            "changed": changed,
            "queued": queued,
            "runs": runs,
            "cancelled": cancelled,
            "ended": ended,
            "files": files,
            "cleared": cleared,
            "invalid": invalid.value,
            "deleted": deleted,
        }

    result = await asyncio.to_thread(flow)

    assert result["created"] == result["fetched"]
    assert result["listed"] == [ingestion_id]
    assert (result["changed"].name, result["changed"].source.pattern) == ("renamed", "*.csv")
    assert result["changed"].destination.table == "sdk.users"
    assert result["queued"].status == "QUEUED" and result["runs"] == [result["queued"].run_id]
    assert result["cancelled"].status == result["ended"].status == "CANCELLED"
    assert result["files"] == []
    assert (result["cleared"].files_cleared, result["cleared"].dry_run) == (0, False)
    assert {"source.format", "destination.table"} <= {v.field for v in result["invalid"].violations}
    assert result["invalid"].http_status == 400
    assert result["deleted"].ingestion_id == ingestion_id


async def test_wait_for_run_follows_a_run_to_success(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "users"
    for n in range(3):
        write_csv(source, f"part-{n}.csv", rows=10, start=n * 10)
    ingestion_id = unique("sdk-load")
    table = f"itest.sdk_{uuid.uuid4().hex[:6]}"

    def load() -> dict[str, Any]:
        with AutoloaderClient(
            loading_stack.control.address, loading_stack.admin_token, executor_address=loading_stack.executor.address
        ) as client:
            client.create_ingestion(config(ingestion_id, source, table))
            seen: list[str] = []
            run = client.wait_for_run(
                client.run(ingestion_id).run_id, timeout=240, poll=0.2, on_progress=lambda r: seen.append(r.status)
            )
            keys = [f.key for f in client.list_processed_files(ingestion_id, page_size=1)]
            count = client.sql(f"SELECT count(*) FROM {table}")
        with AutoloaderHttpClient(loading_stack.http_url, loading_stack.admin_token) as http:
            preview = http.preview(ingestion_id)
            dry_run = http.clear_processed_files(ingestion_id, dry_run=True)
        return {"run": run, "seen": seen, "keys": keys, "count": count, "preview": preview, "dry_run": dry_run}

    result = await asyncio.to_thread(load)

    run = result["run"]
    assert (run.status, run.files_processed, run.rows_written) == ("SUCCESS", 3, 30), run
    assert result["seen"][-1] == "SUCCESS"
    assert result["keys"] == [f"part-{n}.csv" for n in range(3)]
    assert [list(row.values) for row in result["count"].rows] == [["30"]]
    assert (result["preview"].files_discovered, result["preview"].files_to_process) == (3, 0)
    assert (result["dry_run"].files_cleared, result["dry_run"].dry_run, result["dry_run"].files_to_reprocess) == (
        3,
        True,
        3,
    )
