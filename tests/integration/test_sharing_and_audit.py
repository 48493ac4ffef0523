"""Sharing an ingestion, what each principal then sees, the audit log, and the internal services refusing users.

The full matrix (every route, role and relation) is in test_auth_matrix.py; these follow one story each.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from autoloader.cli.main import app as cli_app
from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from autoloader.tracker.v1 import tracker_pb2, tracker_pb2_grpc
from services.shared.auth import Role
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ingestion_json(ingestion_id: str, source_uri: str) -> dict[str, Any]:
    return {
        "ingestion_id": ingestion_id,
        "name": "sharing",
        "source": {"uri": source_uri, "format": "csv"},
        "destination": {"table": "raw.sharing"},
    }


async def _create(stack: InProcessStack, token: str, source_uri: str) -> str:
    ingestion_id = unique("shared")
    async with stack.http(token) as client:
        response = await client.post("/api/v1/ingestions", json=ingestion_json(ingestion_id, source_uri))
        assert response.status_code == 201, response.text
    return ingestion_id


async def _listed_ids(stack: InProcessStack, token: str) -> set[str]:
    ids: set[str] = set()
    page_token = ""
    async with stack.http(token) as client:
        while True:
            response = await client.get("/api/v1/ingestions", params={"page_size": 100, "page_token": page_token})
            assert response.status_code == 200, response.text
            ids |= {i["ingestion_id"] for i in response.json()["ingestions"]}
            page_token = response.json().get("next_page_token", "")
            if not page_token:
                return ids


async def test_a_share_makes_an_ingestion_visible_at_the_lower_role_until_it_is_taken_away(
    stack: InProcessStack, tmp_path: Any
) -> None:
    owner_name, reader_name = unique("olga"), unique("pavel")
    owner = await stack.make_token(Role.EDITOR, name=owner_name)
    reader = await stack.make_token(Role.EDITOR, name=reader_name)
    source_uri = tmp_path.as_uri() + "/"
    ingestion_id = await _create(stack, owner, source_uri)

    # Not shared yet: not listed, and 404 with the body of an id that does not exist.
    assert ingestion_id not in await _listed_ids(stack, reader)
    async with stack.http(reader) as client:
        hidden = await client.get(f"/api/v1/ingestions/{ingestion_id}")
        unknown = await client.get("/api/v1/ingestions/no-such-ingestion")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == {
        **unknown.json(),
        "message": unknown.json()["message"].replace("no-such-ingestion", ingestion_id),
    }

    # Shared at viewer with an editor token: the reader may read, not change.
    async with stack.http(owner) as client:
        shared = await client.post(
            f"/api/v1/ingestions/{ingestion_id}/shares", json={"principal": reader_name, "role": "ROLE_VIEWER"}
        )
        assert shared.status_code == 200, shared.text
        assert shared.json()["role"] == "ROLE_VIEWER"
        assert shared.json()["granted_by"] == owner_name
    assert ingestion_id in await _listed_ids(stack, reader)
    async with stack.http(reader) as client:
        assert (await client.get(f"/api/v1/ingestions/{ingestion_id}")).status_code == 200
        refused = await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"name": "changed by a viewer"})
        assert refused.status_code == 403, refused.text
        assert "editor role" in refused.json()["message"]
        assert "viewer" in refused.json()["message"]

    # Raised to editor: the change goes through, and the listing of shares says so.
    async with stack.http(owner) as client:
        raised = await client.post(
            f"/api/v1/ingestions/{ingestion_id}/shares", json={"principal": reader_name, "role": "ROLE_EDITOR"}
        )
        assert raised.status_code == 200, raised.text
        shares = (await client.get(f"/api/v1/ingestions/{ingestion_id}/shares")).json()["shares"]
    assert [(s["principal"], s["role"]) for s in shares] == [(reader_name, "ROLE_EDITOR")]
    async with stack.http(reader) as client:
        changed = await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"name": "changed by a sharer"})
        assert changed.status_code == 200, changed.text
        # Still not the owner: deleting and sharing on stay with the owner.
        assert (await client.delete(f"/api/v1/ingestions/{ingestion_id}")).status_code == 403

    # Taken away: hidden again.
    async with stack.http(owner) as client:
        removed = await client.delete(f"/api/v1/ingestions/{ingestion_id}/shares/{reader_name}")
        assert removed.status_code == 200, removed.text
        again = await client.delete(f"/api/v1/ingestions/{ingestion_id}/shares/{reader_name}")
        assert again.status_code == 200, "taking a share away twice is not an error"
    assert ingestion_id not in await _listed_ids(stack, reader)
    async with stack.http(reader) as client:
        assert (await client.get(f"/api/v1/ingestions/{ingestion_id}")).status_code == 404


async def test_a_share_is_refused_with_reasons_for_a_bad_name_or_role(stack: InProcessStack, tmp_path: Any) -> None:
    owner = await stack.make_token(Role.EDITOR, name=unique("quinn"))
    ingestion_id = await _create(stack, owner, tmp_path.as_uri() + "/")

    async with stack.http(owner) as client:
        response = await client.post(
            f"/api/v1/ingestions/{ingestion_id}/shares", json={"principal": "bad name\n", "role": "ROLE_ADMIN"}
        )
        shares = (await client.get(f"/api/v1/ingestions/{ingestion_id}/shares")).json()

    assert response.status_code == 400, response.text
    fields = {v["field"]: v["description"] for v in response.json()["details"][0]["field_violations"]}
    assert set(fields) == {"principal", "role"}
    assert "ROLE_RUNNER" in fields["role"]
    assert shares["shares"] == []


async def test_admins_see_every_ingestion_and_a_deleted_ingestion_takes_its_shares_along(
    stack: InProcessStack, tmp_path: Any
) -> None:
    owner_name = unique("rita")
    owner = await stack.make_token(Role.EDITOR, name=owner_name)
    ingestion_id = await _create(stack, owner, tmp_path.as_uri() + "/")
    assert ingestion_id in await _listed_ids(stack, stack.admin_token)

    async with stack.http(owner) as client:
        share = {"principal": "sam", "role": "ROLE_RUNNER"}
        assert (await client.post(f"/api/v1/ingestions/{ingestion_id}/shares", json=share)).status_code == 200
        assert (await client.delete(f"/api/v1/ingestions/{ingestion_id}")).status_code == 200
    # Re-created under the same id by someone else, the old share does not come back.
    other = await stack.make_token(Role.EDITOR, name=unique("tess"))
    async with stack.http(other) as client:
        response = await client.post("/api/v1/ingestions", json=ingestion_json(ingestion_id, tmp_path.as_uri() + "/"))
        assert response.status_code == 201, response.text
        assert (await client.get(f"/api/v1/ingestions/{ingestion_id}/shares")).json()["shares"] == []


async def test_the_audit_log_records_who_did_what_and_how_it_ended(stack: InProcessStack, tmp_path: Any) -> None:
    editor_name, stranger_name = unique("uma"), unique("victor")
    editor = await stack.make_token(Role.EDITOR, name=editor_name)
    stranger = await stack.make_token(Role.EDITOR, name=stranger_name)
    ingestion_id = await _create(stack, editor, tmp_path.as_uri() + "/")
    async with stack.http(editor) as client:
        patched = await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"name": "audited"})
        assert patched.status_code == 200
        assert (await client.get(f"/api/v1/ingestions/{ingestion_id}")).status_code == 200  # reads are not audited
    async with stack.http(stranger) as client:
        assert (await client.delete(f"/api/v1/ingestions/{ingestion_id}")).status_code == 404

    async with stack.http(stack.admin_token) as admin:
        response = await admin.get("/api/v1/audit-events", params={"ingestion_id": ingestion_id})
        by_stranger = await admin.get("/api/v1/audit-events", params={"principal": stranger_name})
    async with stack.http(editor) as client:
        refused = await client.get("/api/v1/audit-events")

    assert response.status_code == 200, response.text
    events = response.json()["events"]
    # Newest first.
    assert [(e["action"], e["principal"], e["result"]) for e in events] == [
        ("DeleteIngestion", stranger_name, "NOT_FOUND"),
        ("UpdateIngestion", editor_name, "OK"),
        ("CreateIngestion", editor_name, "OK"),
    ]
    assert all(e["token_id"].startswith("tok-") and e["event_time"] and e["request_id"] for e in events)
    assert [e["action"] for e in by_stranger.json()["events"]] == ["DeleteIngestion"]
    assert refused.status_code == 403


async def test_the_audit_log_pages_newest_first_without_gaps(stack: InProcessStack, tmp_path: Any) -> None:
    editor_name = unique("wanda")
    editor = await stack.make_token(Role.EDITOR, name=editor_name)
    ingestion_id = await _create(stack, editor, tmp_path.as_uri() + "/")
    async with stack.http(editor) as client:
        for n in range(4):
            assert (await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"name": f"n{n}"})).status_code == 200

    seen: list[str] = []
    page_token = ""
    async with stack.http(stack.admin_token) as admin:
        while True:
            page = await admin.get(
                "/api/v1/audit-events", params={"principal": editor_name, "page_size": 2, "page_token": page_token}
            )
            assert page.status_code == 200, page.text
            assert len(page.json()["events"]) <= 2
            seen += [e["event_id"] for e in page.json()["events"]]
            page_token = page.json().get("next_page_token", "")
            if not page_token:
                break
        everything = (await admin.get("/api/v1/audit-events", params={"principal": editor_name})).json()["events"]
        bad_token = await admin.get("/api/v1/audit-events", params={"page_token": "bm90IGEgdG9rZW4"})

    assert seen == [e["event_id"] for e in everything]
    assert len(seen) == 5  # one create, four updates
    assert bad_token.status_code == 400


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RUNNER, Role.EDITOR])
async def test_the_tracker_and_executor_refuse_user_tokens(stack: InProcessStack, role: Role) -> None:
    """Users act through the control API, which checks their rights on the ingestion first; the internal
    services take service (admin-role) tokens only, so no user can reach around those checks."""
    token = await stack.make_token(role)
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(stack.tracker.address) as channel:
        tracker = tracker_pb2_grpc.TrackerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await tracker.ListRuns(tracker_pb2.ListRunsRequest(ingestion_id="any"), metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "control API" in (refused.value.details() or "")
        service = (("authorization", f"Bearer {stack.executor_token}"),)
        answer = await tracker.ListRuns(tracker_pb2.ListRunsRequest(ingestion_id="any"), metadata=service, timeout=10)
        assert list(answer.runs) == []
    async with grpc.aio.insecure_channel(stack.executor.address) as channel:
        executor = executor_pb2_grpc.ExecutorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await executor.GetExecutorInfo(executor_pb2.GetExecutorInfoRequest(), metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_cli_shares_lists_shares_and_reads_the_audit_log(
    stack: InProcessStack, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner_name = unique("xena")
    owner = await stack.make_token(Role.EDITOR, name=owner_name)
    ingestion_id = await _create(stack, owner, tmp_path.as_uri() + "/")
    monkeypatch.setenv("AUTOLOADER_CONTROL_ADDRESS", stack.control.address)
    runner = CliRunner()

    def cli(token: str, *args: str) -> Any:
        # The CLI is synchronous and the services share this event loop: run it on another thread.
        return runner.invoke(cli_app, list(args), env={"AUTOLOADER_TOKEN": token})

    shared = await asyncio.to_thread(
        cli, owner, "ingestions", "share", ingestion_id, "--principal", "yuri", "--role", "runner"
    )
    listed = await asyncio.to_thread(cli, owner, "ingestions", "shares", ingestion_id)
    bad_role = await asyncio.to_thread(
        cli, owner, "ingestions", "share", ingestion_id, "--principal", "yuri", "--role", "admin"
    )
    audit = await asyncio.to_thread(cli, stack.admin_token, "audit", "--ingestion", ingestion_id)
    refused = await asyncio.to_thread(cli, owner, "audit")

    assert shared.exit_code == 0, shared.output
    assert listed.output.split() == ["yuri", "runner"]
    assert bad_role.exit_code == 2
    assert audit.exit_code == 0, audit.output
    lines = audit.output.strip().splitlines()
    assert [line.split()[-3] for line in lines] == ["ShareIngestion", "CreateIngestion"]
    assert all(owner_name in line and line.endswith("OK") for line in lines)
    assert refused.exit_code != 0
