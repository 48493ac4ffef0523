"""The SDK's clients against fakes: paging, update masks, waiting, errors, discovery and the HTTP mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from autoloader import client
from autoloader.client.environment import locate
from autoloader.client.messages import mask_paths, select_paths, to_role
from autoloader.client.paging import iterate_pages
from autoloader.client.waiting import poll_run
from autoloader.control.v1 import control_pb2 as pb
from autoloader.tracker.v1 import tracker_pb2 as tpb
from tests.unit.test_sdk_errors import FakeRpcError

# ------------------------------------------------------------------------------------------------ paging


def test_pages_are_read_lazily_until_the_last_one() -> None:
    pages = {"": ([1, 2], "b"), "b": ([3, 4], "c"), "c": ([5], "")}
    asked: list[tuple[str, int]] = []

    def fetch(token: str, size: int) -> tuple[list[int], str]:
        asked.append((token, size))
        return pages[token]

    items = iterate_pages(fetch, page_size=2)
    assert asked == []  # nothing is fetched before the first item is read
    assert list(items) == [1, 2, 3, 4, 5]
    assert asked == [("", 2), ("b", 2), ("c", 2)]


def test_a_limit_stops_reading_pages_and_bounds_their_size() -> None:
    asked: list[tuple[str, int]] = []

    def fetch(token: str, size: int) -> tuple[list[int], str]:
        asked.append((token, size))
        start = int(token or 0)
        return list(range(start, start + size)), str(start + size)

    assert list(iterate_pages(fetch, limit=3)) == [0, 1, 2]
    assert asked == [("", 3)]
    asked.clear()
    assert len(list(iterate_pages(fetch, page_size=2, limit=5))) == 5
    assert asked == [("", 2), ("2", 2), ("4", 1)]
    assert list(iterate_pages(fetch, limit=2500))[-1] == 2499
    assert max(size for _, size in asked) == 1000


class FakeControl:
    """A ControlService stub holding three ingestions, two per page, that records its calls."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.metadata: list[Any] = []

    def ListIngestions(self, request: pb.ListIngestionsRequest, metadata: Any, timeout: Any) -> Any:
        self.requests.append(request)
        self.metadata.append(metadata)
        ids = ["a", "b", "c"]
        start = int(request.page_token or 0)
        end = start + 2
        return pb.ListIngestionsResponse(
            ingestions=[pb.Ingestion(ingestion_id=i) for i in ids[start:end]],
            next_page_token=str(end) if end < len(ids) else "",
        )

    def UpdateIngestion(self, request: pb.UpdateIngestionRequest, metadata: Any, timeout: Any) -> Any:
        self.requests.append(request)
        return pb.UpdateIngestionResponse(ingestion=request.ingestion)

    def GetIngestion(self, request: pb.GetIngestionRequest, metadata: Any, timeout: Any) -> Any:
        raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"ingestion {request.ingestion_id} not found")


def fake_client() -> tuple[client.AutoloaderClient, FakeControl]:
    sdk = client.AutoloaderClient("127.0.0.1:9", "secret-token")
    fake = FakeControl()
    sdk._control = fake  # type: ignore[assignment]
    return sdk, fake


def test_the_grpc_client_lists_every_page_with_the_token() -> None:
    sdk, fake = fake_client()
    with sdk:
        assert [i.ingestion_id for i in sdk.list_ingestions(page_size=2)] == ["a", "b", "c"]
    assert [r.page_token for r in fake.requests] == ["", "2"]
    assert fake.metadata[0] == (("authorization", "Bearer secret-token"),)


def test_the_grpc_client_raises_the_typed_error() -> None:
    sdk, _ = fake_client()
    with sdk, pytest.raises(client.NotFound, match="ingestion nope not found") as raised:
        sdk.get_ingestion("nope")
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_an_update_from_a_dict_names_the_fields_present() -> None:
    sdk, fake = fake_client()
    with sdk:
        sdk.update_ingestion("a", {"source": {"pattern": "*.csv"}, "max_files_per_run": 5, "schedule": None})
        with pytest.raises(client.InvalidArgument, match="update_mask"):
            sdk.update_ingestion("a", pb.Ingestion(name="x"))
        sdk.update_ingestion("a", pb.Ingestion(name="x"), update_mask=["name"])
    first, second = fake.requests
    assert list(first.update_mask.paths) == ["source.pattern", "max_files_per_run", "schedule"]
    assert first.ingestion.source.pattern == "*.csv"
    assert list(second.update_mask.paths) == ["name"]


def test_masks_and_selections_follow_the_patch_rules() -> None:
    changes = {"source": {"options": {"header": "true"}, "uri": "file:///x/"}, "schedule": {}, "name": "n"}
    assert mask_paths(changes) == ["source.options", "source.uri", "schedule", "name"]
    with pytest.raises(client.InvalidArgument) as raised:
        mask_paths({"source": {"color": "red"}})
    assert raised.value.violations == (client.FieldViolation("source.color", "unknown field"),)
    full = {"name": "n", "source": {"uri": "u", "format": "csv"}}
    assert select_paths(full, ["source.format", "max_retries"]) == {"source": {"format": "csv"}, "max_retries": None}


def test_roles_are_accepted_by_name() -> None:
    assert to_role("editor") == to_role("ROLE_EDITOR") == to_role(pb.ROLE_EDITOR) == pb.ROLE_EDITOR
    with pytest.raises(client.InvalidArgument):
        to_role("owner")


# ---------------------------------------------------------------------------------------------- waiting


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_returns_the_ended_run_and_reports_each_reading() -> None:
    statuses = iter(["QUEUED", "RUNNING", "RUNNING", "PARTIAL_SUCCESS"])
    seen: list[str] = []
    clock = FakeClock()
    run = poll_run(
        lambda: tpb.Run(run_id="run-1", status=next(statuses)),
        timeout=60,
        poll=0.5,
        on_progress=lambda r: seen.append(r.status),
        clock=clock,
        sleep=clock.sleep,
    )
    assert run.status == "PARTIAL_SUCCESS"
    assert seen == ["QUEUED", "RUNNING", "RUNNING", "PARTIAL_SUCCESS"]
    assert clock.now == 1.5


def test_waiting_too_long_raises_run_timeout_with_the_last_reading() -> None:
    clock = FakeClock()
    with pytest.raises(client.RunTimeout) as raised:
        poll_run(
            lambda: tpb.Run(run_id="run-2", status="RUNNING"), timeout=2, poll=0.75, clock=clock, sleep=clock.sleep
        )
    assert raised.value.run.status == "RUNNING"
    assert isinstance(raised.value, TimeoutError) and isinstance(raised.value, client.AutoloaderError)
    assert clock.now == 2.0  # the last sleep is cut to the deadline


# ------------------------------------------------------------------------------------------------- HTTP


def test_the_http_client_pages_sends_queries_and_maps_errors() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path, query = request.url.path, request.url.params
        if path == "/api/v1/ingestions/demo/processed-files" and request.method == "GET":
            token = query.get("page_token", "")
            return httpx.Response(
                200,
                json={
                    "processed_files": [{"key": f"f{token or 0}", "size": "12"}],
                    "next_page_token": "" if token == "1" else "1",
                },
            )
        if path == "/api/v1/ingestions/demo/processed-files":
            return httpx.Response(200, json={"message": "Would clear 2", "files_cleared": 2, "dry_run": True})
        if path == "/api/v1/ingestions":
            body = {"code": 3, "message": "invalid", "details": [
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "field_violations": [{"field": "source.uri", "description": "is required"}]}]}  # fmt: skip
            return httpx.Response(400, json=body)
        return httpx.Response(404, json={"code": 5, "message": f"{path} not found", "details": []})

    sdk = client.AutoloaderHttpClient("http://api.test/", "tok", transport=httpx.MockTransport(handler))
    with sdk:
        files = list(sdk.list_processed_files("demo", status="PROCESSED", page_size=1))
        cleared = sdk.clear_processed_files("demo", keys=["a.csv", "b.csv"], dry_run=True)
        with pytest.raises(client.InvalidArgument) as invalid:
            sdk.create_ingestion({"name": "no source"})
        with pytest.raises(client.NotFound):
            sdk.get_run("run-404")
    assert [(f.key, f.size) for f in files] == [("f0", 12), ("f1", 12)]
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert dict(seen[1].url.params) == {"status": "PROCESSED", "page_size": "1", "page_token": "1"}
    assert seen[2].url.params.get_list("keys") == ["a.csv", "b.csv"] and seen[2].url.params["dry_run"] == "true"
    assert (cleared.files_cleared, cleared.dry_run) == (2, True)
    assert json.loads(seen[3].content) == {"name": "no source"}
    assert invalid.value.violations == (client.FieldViolation("source.uri", "is required"),)
    assert invalid.value.http_status == 400


def test_the_http_client_reports_an_unreachable_api_as_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sdk = client.AutoloaderHttpClient("http://api.test", "tok", transport=httpx.MockTransport(refuse))
    with sdk, pytest.raises(client.Unavailable):
        sdk.whoami()


# -------------------------------------------------------------------------------------------- discovery


def test_the_environment_wins_over_the_running_stack(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(
        json.dumps({"control_address": "127.0.0.1:1", "executor_address": "127.0.0.1:3", "http_url": "http://h:1"})
    )
    (tmp_path / "admin-token").write_text("from-file\n")
    env = {"AUTOLOADER_HOME": str(tmp_path), "AUTOLOADER_CONTROL_ADDRESS": "control:7001"}
    addresses = locate(env)
    assert (addresses.control(), addresses.grpc["executor"], addresses.http_url) == (
        "control:7001",
        "127.0.0.1:3",
        "http://h:1",
    )
    with client.AutoloaderClient.from_environment(env) as sdk:
        assert sdk._metadata == (("authorization", "Bearer from-file"),)
    with client.AutoloaderHttpClient.from_environment(env | {"AUTOLOADER_TOKEN": "t"}) as http:
        assert str(http._http.base_url) == "http://h:1/api/v1/"


def test_missing_pieces_are_named(tmp_path: Path) -> None:
    env = {"AUTOLOADER_HOME": str(tmp_path)}
    with pytest.raises(client.ConfigurationError, match="no running stack found"):
        client.AutoloaderClient.from_environment(env)
    with pytest.raises(client.ConfigurationError, match="no token: set AUTOLOADER_TOKEN"):
        client.AutoloaderClient.from_environment(env | {"AUTOLOADER_CONTROL_ADDRESS": "c:1"})
    with pytest.raises(client.ConfigurationError, match="no HTTP API found"):
        client.AutoloaderHttpClient.from_environment(env | {"AUTOLOADER_TOKEN": "t"})
    with client.AutoloaderClient("c:1", "t") as sdk, pytest.raises(client.ConfigurationError, match="no executor"):
        sdk.sql("SELECT 1")


def test_tls_files_are_checked_when_the_client_is_made(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    env = {"AUTOLOADER_CONTROL_ADDRESS": "c:1", "AUTOLOADER_TOKEN": "t"}
    with pytest.raises(client.TlsConfigError, match=f"AUTOLOADER_TLS_CA_FILE: {not_pem} holds no PEM"):
        client.AutoloaderClient.from_environment(env | {"AUTOLOADER_TLS_CA_FILE": str(not_pem)})
    with pytest.raises(client.TlsConfigError, match="AUTOLOADER_TLS_KEY_FILE is not set"):
        client.TlsOptions.load(cert_file=not_pem)
