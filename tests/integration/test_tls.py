"""TLS between the services and on the gateway, with certificates made for this module.

The stack here is mutual TLS throughout: tracker and control serve gRPC over TLS and require client
certificates; control calls the tracker with its own certificate; the gateway serves HTTPS, requires client
certificates too, and calls both services with its certificate. Single servers with health only (no database)
cover TLS without client certificates and certificates of another CA.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from autoloader.cli.connection import connect
from autoloader.control.v1 import control_pb2, control_pb2_grpc
from autoloader.stack.bootstrap import prepare_database
from gateway.app import create_app
from services.control.app import start as start_control
from services.shared.config import CommonSettings, ControlSettings, TrackerSettings
from services.shared.grpc_server import GrpcServer, start_grpc_server
from services.shared.service_runtime import RunningService
from services.shared.tls import TlsMaterial, channel_factory, server_credentials, uvicorn_ssl_options
from services.tracker.app import start as start_tracker
from tests.conftest import create_database
from tests.support.certs import CertFiles, CertificateAuthority
from tests.support.stack import serve_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10.0


@dataclass
class TlsStack:
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    client: CertFiles  # signed by ca: what a caller of the services presents
    stranger: CertFiles  # signed by other_ca
    tracker: RunningService
    control: RunningService
    gateway_settings: CommonSettings
    gateway_port: int
    admin_token: str

    def mutual_tls(self, files: CertFiles | None = None) -> CommonSettings:
        """Client settings trusting ca, presenting `files` (if any)."""
        return tls_settings(self.ca, files)


def tls_settings(
    ca: CertificateAuthority | None, files: CertFiles | None, *, client_auth: bool = False
) -> CommonSettings:
    return CommonSettings(
        tls_ca_file=ca.cert_file if ca else None,
        tls_cert_file=files.cert if files else None,
        tls_key_file=files.key if files else None,
        tls_client_auth=client_auth,
    )


async def health(address: str, channel: grpc.aio.Channel) -> str:
    """SERVING, or the status code name of the failed call."""
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def secure_health(address: str, settings: CommonSettings) -> Any:
    return health(address, TlsMaterial.from_settings(settings).open_channel(address))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, CertificateAuthority]:
    directory = tmp_path_factory.mktemp("tls")
    return CertificateAuthority(directory, "ours"), CertificateAuthority(directory, "other")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_stack(
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    certificates: tuple[CertificateAuthority, CertificateAuthority],
) -> AsyncIterator[TlsStack]:
    ca, other_ca = certificates
    home = tmp_path_factory.mktemp("tls-home")
    database_url = await create_database(postgres_url, "autoloader_tls")
    credentials = await prepare_database(database_url, home)
    url = SecretStr(database_url)

    def mutual_tls(name: str) -> dict[str, Any]:
        """Serve with a certificate of our CA, call others with it, and require one of callers."""
        files = ca.issue(name)
        return {
            "tls_cert_file": files.cert,
            "tls_key_file": files.key,
            "tls_ca_file": ca.cert_file,
            "tls_client_auth": True,
        }

    tracker = await start_tracker(
        TrackerSettings(database_url=url, home=home, metrics_port=-1, **mutual_tls("tracker"))
    )
    try:
        control = await start_control(
            ControlSettings(
                database_url=url,
                home=home,
                metrics_port=-1,
                tracker_address=tracker.address,
                token=SecretStr(credentials.executor_token),
                schedule_poll_seconds=3600,
                **mutual_tls("control"),
            )
        )
    except BaseException:
        await tracker.stop(grace=0)
        raise
    gateway_settings = CommonSettings(**mutual_tls("gateway"))
    app = create_app(
        {"control": control.address, "tracker": tracker.address}, open_channel=channel_factory(gateway_settings)
    )
    try:
        server, task, port = await serve_app(app, **uvicorn_ssl_options(gateway_settings))
    except BaseException:
        await control.stop(grace=0)
        await tracker.stop(grace=0)
        raise
    try:
        yield TlsStack(
            ca=ca,
            other_ca=other_ca,
            client=ca.issue("client", server=False),
            stranger=other_ca.issue("stranger"),
            tracker=tracker,
            control=control,
            gateway_settings=gateway_settings,
            gateway_port=port,
            admin_token=credentials.admin_token,
        )
    finally:
        server.should_exit = True
        await task
        await control.stop(grace=0.5)
        await tracker.stop(grace=0.5)


def https_client(stack: TlsStack, files: CertFiles | None) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(stack.ca.cert_file))
    if files is not None:
        context.load_cert_chain(str(files.cert), str(files.key))
    return httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{stack.gateway_port}",
        verify=context,
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=TIMEOUT_S,
    )


# ---------------------------------------------------------------------------------------- the stack over TLS


async def test_https_request_reaches_control_and_tracker_over_tls(tls_stack: TlsStack) -> None:
    ingestion_id = f"tls-{uuid.uuid4().hex[:12]}"
    body = {
        "ingestion_id": ingestion_id,
        "name": "over TLS",
        "source": {"uri": "s3://landing/tls/", "format": "csv"},
        "destination": {"table": "raw.tls_orders"},
    }
    async with https_client(tls_stack, tls_stack.client) as client:
        created = await client.post("/api/v1/ingestions", json=body)
        assert created.status_code == 201, created.text
        # Queuing a run makes control call the tracker; listing runs makes the gateway call it.
        queued = await client.post(f"/api/v1/ingestions/{ingestion_id}/run", json={})
        assert queued.status_code == 202, queued.text
        runs = await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")
        assert runs.status_code == 200, runs.text
        assert [run["run_id"] for run in runs.json()["runs"]] == [queued.json()["run_id"]]
        healthz = await client.get("/healthz")
        assert healthz.json()["services"] == {"control": "SERVING", "tracker": "SERVING"}


async def test_gateway_over_https_refuses_plain_http(tls_stack: TlsStack) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"http://127.0.0.1:{tls_stack.gateway_port}/healthz")


async def test_gateway_with_client_auth_refuses_https_without_a_certificate(tls_stack: TlsStack) -> None:
    async with https_client(tls_stack, None) as client:
        with pytest.raises(httpx.TransportError):
            await client.get("/healthz")


async def test_gateway_refuses_a_client_certificate_of_another_ca(tls_stack: TlsStack) -> None:
    async with https_client(tls_stack, tls_stack.stranger) as client:
        with pytest.raises(httpx.TransportError):
            await client.get("/healthz")
    async with https_client(tls_stack, tls_stack.client) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_plaintext_grpc_client_is_refused(tls_stack: TlsStack) -> None:
    address = tls_stack.tracker.address
    assert await health(address, grpc.aio.insecure_channel(address)) == "UNAVAILABLE"


async def test_mutual_tls_refuses_a_client_without_a_certificate(tls_stack: TlsStack) -> None:
    for service in (tls_stack.tracker, tls_stack.control):
        assert await secure_health(service.address, tls_stack.mutual_tls(None)) == "UNAVAILABLE"
        assert await secure_health(service.address, tls_stack.mutual_tls(tls_stack.client)) == "SERVING"


async def test_mutual_tls_refuses_a_client_certificate_of_another_ca(tls_stack: TlsStack) -> None:
    address = tls_stack.tracker.address
    assert await secure_health(address, tls_stack.mutual_tls(tls_stack.stranger)) == "UNAVAILABLE"


async def test_cli_channel_uses_tls_and_its_client_certificate(
    tls_stack: TlsStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTOLOADER_HOME", str(tmp_path))
    monkeypatch.setenv("AUTOLOADER_CONTROL_ADDRESS", tls_stack.control.address)
    monkeypatch.setenv("AUTOLOADER_TOKEN", tls_stack.admin_token)
    monkeypatch.setenv("AUTOLOADER_TLS_CA_FILE", str(tls_stack.ca.cert_file))
    monkeypatch.setenv("AUTOLOADER_TLS_CERT_FILE", str(tls_stack.client.cert))
    monkeypatch.setenv("AUTOLOADER_TLS_KEY_FILE", str(tls_stack.client.key))
    connection = connect()

    def who_am_i() -> str:
        with connection.channel() as channel:
            reply = control_pb2_grpc.ControlServiceStub(channel).GetCaller(
                control_pb2.GetCallerRequest(), metadata=connection.metadata(), timeout=TIMEOUT_S
            )
        return str(reply.role)

    # A blocking call: in a thread, so this event loop keeps serving it.
    assert await asyncio.to_thread(who_am_i)


# ----------------------------------------------------------------------------------- the container health check


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "docker" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve_environment(monkeypatch: pytest.MonkeyPatch, ca: CertificateAuthority, files: CertFiles) -> None:
    monkeypatch.setenv("AUTOLOADER_TLS_CA_FILE", str(ca.cert_file))
    monkeypatch.setenv("AUTOLOADER_TLS_CERT_FILE", str(files.cert))
    monkeypatch.setenv("AUTOLOADER_TLS_KEY_FILE", str(files.key))
    monkeypatch.setenv("AUTOLOADER_TLS_CLIENT_AUTH", "true")


async def test_health_check_probes_over_mutual_tls(
    tls_stack: TlsStack, healthcheck: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the container: the probe reads the serving process's own TLS variables."""
    serve_environment(monkeypatch, tls_stack.ca, tls_stack.ca.issue("probe"))
    assert await asyncio.to_thread(healthcheck.grpc_serving, str(tls_stack.tracker.grpc.port))
    assert await asyncio.to_thread(healthcheck.http_serving, str(tls_stack.gateway_port))
    # A process whose certificate is of another CA gets no answer.
    serve_environment(monkeypatch, tls_stack.other_ca, tls_stack.stranger)
    assert not await asyncio.to_thread(healthcheck.grpc_serving, str(tls_stack.tracker.grpc.port))


# ------------------------------------------------------------------------ single servers: TLS, other CA


@pytest_asyncio.fixture(loop_scope="session")
async def tls_only_server(
    certificates: tuple[CertificateAuthority, CertificateAuthority],
) -> AsyncIterator[GrpcServer]:
    """Health only, TLS without client certificates."""
    ca, _ = certificates
    server = await start_grpc_server(
        host="127.0.0.1",
        port=0,
        service_names=[],
        add_servicers=lambda server: None,
        interceptors=[],
        credentials=server_credentials(tls_settings(None, ca.issue("plain-tls"))),
    )
    try:
        yield server
    finally:
        await server.stop(0)


async def test_tls_without_client_auth_accepts_a_client_without_a_certificate(
    tls_only_server: GrpcServer, certificates: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    ca, _ = certificates
    address = f"127.0.0.1:{tls_only_server.port}"
    assert await secure_health(address, tls_settings(ca, None)) == "SERVING"
    assert await health(address, grpc.aio.insecure_channel(address)) == "UNAVAILABLE"


async def test_server_certificate_of_another_ca_is_refused(
    tls_only_server: GrpcServer, certificates: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    _, other_ca = certificates
    address = f"127.0.0.1:{tls_only_server.port}"
    assert await secure_health(address, tls_settings(other_ca, None)) == "UNAVAILABLE"


@pytest.fixture(autouse=True)
def _no_tls_variables_leak(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings built here must not pick up TLS variables of the shell running the tests."""
    for name in ("CA_FILE", "CERT_FILE", "KEY_FILE", "CLIENT_AUTH"):
        monkeypatch.delenv(f"AUTOLOADER_TLS_{name}", raising=False)
    yield


async def test_health_check_without_tls_variables_probes_plaintext(healthcheck: ModuleType) -> None:
    server = await start_grpc_server(
        host="127.0.0.1", port=0, service_names=[], add_servicers=lambda server: None, interceptors=[]
    )
    try:
        assert await asyncio.to_thread(healthcheck.grpc_serving, str(server.port))
    finally:
        await server.stop(0)
