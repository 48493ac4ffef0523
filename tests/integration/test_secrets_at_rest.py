"""Webhook secrets are encrypted at rest, rotate to a new key, and a planted canary secret shows up nowhere:
not in HTTP answers (errors included), not in any log line, not in any database row."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from services.shared import logging as service_logging
from services.shared.secret_box import SecretBox
from services.shared.webhook_signature import SIGNATURE_HEADER, verify
from tests.conftest import create_database
from tests.support.fresh_process import call_in_fresh_interpreter
from tests.support.stack import InProcessStack, start_stack
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SCHEMAS = ("auth", "control", "tracker")
ENDED = ("SUCCESS", "FAILED", "PARTIAL_SUCCESS", "CANCELLED")


async def stored_text(database_url: str) -> list[tuple[str, str]]:
    """(schema.table.column, value) of every text, json, jsonb and bytea value of the services' tables."""
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = ANY($1::text[]) AND data_type IN ('text', 'character varying', 'json', 'jsonb',"
            " 'bytea')",
            list(SCHEMAS),
        )
        found: list[tuple[str, str]] = []
        for schema, table, column in columns:
            for (value,) in await conn.fetch(
                f'SELECT "{column}" FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'
            ):
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                found.append((f"{schema}.{table}.{column}", text))
        return found
    finally:
        await conn.close()


def holders(rows: list[tuple[str, str]], needle: str) -> list[str]:
    return [where for where, text in rows if needle in text]


async def create(client: httpx.AsyncClient, source: Path, secret: str, receiver: WebhookReceiver, path: str) -> str:
    response = await client.post(
        "/api/v1/ingestions",
        json={
            "name": "secrets",
            "source": {"uri": source.as_uri() + "/", "format": "csv"},
            "destination": {"table": f"secrets.t_{uuid.uuid4().hex[:8]}"},
            "webhook": {"url": receiver.url(path), "secret": secret},
        },
    )
    assert response.status_code == 201, response.text
    ingestion_id: str = response.json()["ingestion_id"]
    return ingestion_id


async def queue_run(client: httpx.AsyncClient, ingestion_id: str) -> str:
    response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


async def cancelled_delivery(client: httpx.AsyncClient, receiver: WebhookReceiver, run_id: str, path: str) -> Any:
    """Cancel a queued run (no executor needed) and wait for the webhook its end sends."""
    response = await client.post(f"/api/v1/runs/{run_id}/cancel")
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for received in receiver.for_path(path):
            if json.loads(received.body)["run"]["run_id"] == run_id:
                return received
        await asyncio.sleep(0.1)
    raise AssertionError(f"no webhook for {run_id} on {path}")


# --- encryption and rotation, through the in-process services ------------------------------------------------


@pytest.fixture
async def rotation_database(postgres_url: str) -> AsyncIterator[str]:
    yield await create_database(postgres_url, "autoloader_secrets_rotation")


async def test_secrets_are_encrypted_rotate_to_a_new_key_and_still_sign(
    rotation_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary, legacy = f"canary-{uuid.uuid4().hex}", f"legacy-plaintext-{uuid.uuid4().hex}"
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    receiver = WebhookReceiver()
    home = tmp_path / "home"
    (tmp_path / "src").mkdir()

    async def started(keys: list[bytes]) -> InProcessStack:
        # start_stack leaves these settings unset: the services read them from the environment.
        monkeypatch.setenv("AUTOLOADER_SECRET_KEYS", ",".join(k.decode() for k in keys))
        return await start_stack(rotation_database, home, webhook_allowlist=f"127.0.0.1:{receiver.port}")

    try:
        first = await started([old_key])
        try:
            async with first.http(first.admin_token) as client:
                ingestion_id = await create(client, tmp_path / "src", canary, receiver, "/rotation")
                queued = await queue_run(client, ingestion_id)
                legacy_id = await create(client, tmp_path / "src", legacy + "-replaced", receiver, "/legacy")
        finally:
            await first.stop()
        conn = await asyncpg.connect(rotation_database)
        try:
            # Rows as this change found them: a plaintext secret in control and in a pending delivery.
            await conn.execute(
                "UPDATE control.ingestions SET webhook = jsonb_set(webhook, '{secret}', to_jsonb($2::text))"
                " WHERE ingestion_id = $1",
                legacy_id,
                legacy,
            )
            await conn.execute(
                "INSERT INTO tracker.webhook_deliveries (delivery_id, ingestion_id, run_id, url, secret, max_attempts,"
                " payload, status, next_attempt_time) VALUES ('delivery-legacy', $1, 'run-legacy', $2, $3, 1, '{}',"
                " 'PENDING', now() + interval '1 day')",
                legacy_id,
                receiver.url("/legacy"),
                legacy,
            )
            stored = await stored_text(rotation_database)
            assert holders(stored, canary) == []
            under_old = await conn.fetchval(
                "SELECT webhook->>'secret' FROM control.ingestions WHERE ingestion_id = $1", ingestion_id
            )
            assert SecretBox([old_key]).decrypt(under_old) == canary
        finally:
            await conn.close()

        # A new key goes first; the old one stays to decrypt. Starting rotates every stored secret.
        second = await started([new_key, old_key])
        try:
            only_new = SecretBox([new_key])
            conn = await asyncpg.connect(rotation_database)
            try:
                control = dict(await conn.fetch("SELECT ingestion_id, webhook->>'secret' FROM control.ingestions"))
                run_secret = await conn.fetchval(
                    "SELECT ingestion->'webhook'->>'secret' FROM tracker.runs WHERE run_id = $1", queued
                )
                delivery = await conn.fetchval(
                    "SELECT secret FROM tracker.webhook_deliveries WHERE delivery_id = 'delivery-legacy'"
                )
            finally:
                await conn.close()
            assert only_new.decrypt(control[ingestion_id]) == canary
            assert control[ingestion_id] != under_old
            assert only_new.decrypt(control[legacy_id]) == legacy
            assert only_new.decrypt(run_secret) == canary
            assert only_new.decrypt(delivery) == legacy
            stored = await stored_text(rotation_database)
            assert holders(stored, canary) == [] and holders(stored, legacy) == []

            async with second.http(second.admin_token) as client:
                # The run queued under the old key still ends with a delivery signed by the secret.
                received = await cancelled_delivery(client, receiver, queued, "/rotation")
                assert verify(canary, received.headers[SIGNATURE_HEADER], received.body, now=int(time.time()))
                # The masked value written back keeps the stored secret: the next delivery still signs with it.
                shown = (await client.get(f"/api/v1/ingestions/{ingestion_id}")).json()["webhook"]
                assert shown["secret"] == "****"
                patched = await client.patch(
                    f"/api/v1/ingestions/{ingestion_id}", json={"webhook": {**shown, "max_attempts": 2}}
                )
                assert patched.status_code == 200, patched.text
                assert patched.json()["webhook"] == {**shown, "max_attempts": 2}
                received = await cancelled_delivery(
                    client, receiver, await queue_run(client, ingestion_id), "/rotation"
                )
                assert verify(canary, received.headers[SIGNATURE_HEADER], received.body, now=int(time.time()))
            stored = await stored_text(rotation_database)
            assert holders(stored, canary) == []
        finally:
            await second.stop()

        # Rotated rows need the old key no more.
        third = await started([new_key])
        try:
            async with third.http(third.admin_token) as client:
                assert (await client.get(f"/api/v1/ingestions/{legacy_id}")).status_code == 200
                received = await cancelled_delivery(
                    client, receiver, await queue_run(client, ingestion_id), "/rotation"
                )
                assert verify(canary, received.headers[SIGNATURE_HEADER], received.body, now=int(time.time()))
        finally:
            await third.stop()
    finally:
        receiver.stop()


# --- the canary: a whole workflow over HTTP, in a fresh interpreter so every log line is captured ---------


async def test_a_planted_canary_secret_appears_nowhere(postgres_url: str, tmp_path: Path) -> None:
    webhook_canary = f"canary-webhook-{uuid.uuid4().hex}"
    s3_canary = f"canary-s3-{uuid.uuid4().hex}"
    database_url = await create_database(postgres_url, "autoloader_secrets_canary")
    evidence = await asyncio.to_thread(
        call_in_fresh_interpreter,
        __name__,
        "canary_workflow",
        database_url,
        str(tmp_path),
        webhook_canary,
        s3_canary,
        timeout=600,
    )
    # The workflow did what it should, so the places searched below did see the secrets pass by.
    assert evidence["signature_valid"], "the delivery was not signed with the planted secret"
    assert evidence["run_status"] == {"local": "SUCCESS", "s3": "SUCCESS", "s3_missing_bucket": "FAILED"}
    assert '"event": "rpc"' in evidence["service_log"] and "webhook attempt" in evidence["service_log"]
    assert "spark ready" in evidence["executor_log"]
    assert evidence["rows"] and evidence["responses"]

    for canary in (webhook_canary, s3_canary):
        leaks = [r["where"] for r in evidence["responses"] if canary in r["body"] or canary in r["headers"]]
        assert leaks == [], f"{canary} in HTTP answers: {leaks}"
        assert canary not in evidence["service_log"], "in the services' log"
        assert canary not in evidence["executor_log"], "in the executor's log"
        assert holders([(r[0], r[1]) for r in evidence["rows"]], canary) == []
    errors = " ".join(r["body"] for r in evidence["responses"] if r["status"] >= 400)
    assert "webhook" in errors  # the error paths ran


class _Tee:
    """stderr that is also kept: everything the services log in this process."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return int(self._stream.write(text))

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


async def canary_workflow(database_url: str, workdir: str, webhook_canary: str, s3_canary: str) -> dict[str, Any]:
    """Run in a fresh interpreter: services at DEBUG, an executor process, moto S3; hand back what was seen."""
    from tests.support.executors import start_executor, stop, wait_for_log
    from tests.support.s3 import running_s3_server

    tee = _Tee(sys.stderr)
    sys.stderr = tee
    service_logging.configure("canary", "DEBUG")
    work = Path(workdir)
    responses: list[dict[str, Any]] = []
    run_status: dict[str, str] = {}

    def seen(where: str, response: httpx.Response) -> httpx.Response:
        headers = json.dumps(dict(response.headers))
        responses.append({"where": where, "status": response.status_code, "headers": headers, "body": response.text})
        return response

    async def run(client: httpx.AsyncClient, name: str, ingestion_id: str) -> dict[str, Any]:
        run_id = seen(f"run {name}", await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        deadline = time.monotonic() + 240
        while True:
            current: dict[str, Any] = seen(f"get run {name}", await client.get(f"/api/v1/runs/{run_id}")).json()
            if current.get("status") in ENDED or time.monotonic() > deadline:
                run_status[name] = current.get("status", "")
                return current
            await asyncio.sleep(0.3)

    receiver = WebhookReceiver()
    (work / "src").mkdir(parents=True)
    (work / "src" / "a.csv").write_text("id,name\n1,ann\n")
    with running_s3_server() as s3:
        endpoint = s3.endpoint_url.removeprefix("http://")
        os.environ["AUTOLOADER_ENDPOINT_ALLOWLIST"] = endpoint
        bucket = s3.create_bucket()
        s3.put_object(bucket, "in/a.csv", "id,name\n1,ann\n")
        keys_file = work / "s3-keys.json"
        keys_file.write_text(json.dumps({"access_key_id": "canary-access", "secret_access_key": s3_canary}))
        keys_file.chmod(0o600)
        stack = await start_stack(database_url, work / "home", webhook_allowlist=f"127.0.0.1:{receiver.port}")
        executor = start_executor(
            stack,
            work / "executor",
            str(work / "warehouse"),
            {"AUTOLOADER_LOG_LEVEL": "DEBUG", "AUTOLOADER_ENDPOINT_ALLOWLIST": endpoint},
        )
        try:
            await asyncio.to_thread(wait_for_log, work / "executor", "spark ready", 180)
            async with stack.http(stack.admin_token) as client:
                body = {
                    "name": "canary",
                    "source": {"uri": (work / "src").as_uri() + "/", "format": "csv", "options": {"header": "true"}},
                    "destination": {"table": "canary.local"},
                    "webhook": {"url": receiver.url("/canary"), "secret": webhook_canary},
                }
                created = seen("create", await client.post("/api/v1/ingestions", json=body)).json()
                ingestion_id = created["ingestion_id"]
                seen(
                    "create again", await client.post("/api/v1/ingestions", json={**body, "ingestion_id": ingestion_id})
                )
                shown = seen("get", await client.get(f"/api/v1/ingestions/{ingestion_id}")).json()
                seen("list", await client.get("/api/v1/ingestions"))
                seen(
                    "patch masked",
                    await client.patch(
                        f"/api/v1/ingestions/{ingestion_id}", json={"webhook": {**shown["webhook"], "max_attempts": 3}}
                    ),
                )
                bad_webhook = {"url": "ftp://example.com/hook", "secret": webhook_canary}
                seen(
                    "bad patch", await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"webhook": bad_webhook})
                )
                seen(
                    "bad create",
                    await client.post(
                        "/api/v1/ingestions", json={**body, "webhook": {**bad_webhook, "max_attempts": 0}}
                    ),
                )
                seen(
                    "bad type",
                    await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"webhook": {"secret": 12}}),
                )
                await run(client, "local", ingestion_id)
                [received] = await asyncio.to_thread(receiver.wait_for, "/canary", 1, 60)
                signature_valid = verify(
                    webhook_canary, received.headers[SIGNATURE_HEADER], received.body, now=int(time.time())
                )
                for _ in range(100):  # the delivery's attempt is recorded (and logged) just after the answer
                    listed = seen(
                        "deliveries", await client.get(f"/api/v1/ingestions/{ingestion_id}/webhook-deliveries")
                    ).json()
                    if all(d["status"] != "PENDING" for d in listed.get("deliveries", [])):
                        break
                    await asyncio.sleep(0.1)

                s3_source = {
                    "uri": f"s3://{bucket}/in/",
                    "endpoint_url": s3.endpoint_url,
                    "region": s3.region,
                    "credentials_ref": f"file:{keys_file}",
                    "format": "csv",
                    "options": {"header": "true"},
                }
                for name, source in (
                    ("s3", s3_source),
                    ("s3_missing_bucket", {**s3_source, "uri": f"s3://missing-{uuid.uuid4().hex[:8]}/in/"}),
                ):
                    made = seen(
                        f"create {name}",
                        await client.post(
                            "/api/v1/ingestions",
                            json={"name": name, "source": source, "destination": {"table": f"canary.{name}"}},
                        ),
                    ).json()
                    seen(f"get {name}", await client.get(f"/api/v1/ingestions/{made['ingestion_id']}"))
                    await run(client, name, made["ingestion_id"])
                    seen(f"runs {name}", await client.get(f"/api/v1/ingestions/{made['ingestion_id']}/runs"))
                    seen(f"files {name}", await client.get(f"/api/v1/ingestions/{made['ingestion_id']}/files"))
        finally:
            stop([executor])
            await stack.stop()
            receiver.stop()
    rows = await stored_text(database_url)
    return {
        "responses": responses,
        "run_status": run_status,
        "signature_valid": signature_valid,
        "service_log": "".join(tee.parts),
        "executor_log": (work / "executor" / "executor.log").read_text(errors="replace"),
        "rows": rows,
    }
