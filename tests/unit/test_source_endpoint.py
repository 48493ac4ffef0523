"""A source's custom S3 endpoint, checked by the executor before boto3 or Spark connect to it (no network:
addresses are numeric or come from a fake resolver)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from services.executor import discover
from services.executor.discover import SourceAccess, SourceLimits, file_heads, list_source, s3_client
from services.executor.load import TableLoader
from services.executor.pipeline import RunConfig
from services.executor.source_endpoint import ALLOWLIST_VARIABLE, EndpointRefused, check_source_endpoint
from services.shared.errors import FailedPrecondition
from services.shared.outbound_http import PUBLIC_ONLY, AddressPolicy

NAMES = {
    "s3.eu-central-1.amazonaws.com": ["52.219.170.60", "2a05:d07a:a0::1"],
    "minio.internal": ["10.1.2.3"],
    "split.example.com": ["52.219.170.61", "192.168.1.9"],  # one public, one private answer
    "localhost": ["127.0.0.1", "::1"],
}


def fake_resolver(table: dict[str, list[str]] = NAMES) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        try:
            return table[host]
        except KeyError:
            # Numeric hosts resolve to themselves (inet_aton's reading of the short forms included).
            try:
                return [socket.inet_ntoa(socket.inet_aton(host))]
            except OSError:
                if ":" in host:
                    return [host]
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

    return resolve


def refusal(endpoint_url: str, policy: AddressPolicy = PUBLIC_ONLY) -> str:
    with pytest.raises(EndpointRefused) as refused:
        check_source_endpoint(endpoint_url, policy, resolve=fake_resolver())
    return refused.value.message


@pytest.mark.parametrize(
    ("endpoint_url", "address", "kind"),
    [
        ("http://127.0.0.1:9000", "127.0.0.1", "loopback"),
        ("http://127.9.9.9:9000", "127.9.9.9", "loopback"),
        ("http://[::1]:9000", "::1", "loopback"),
        ("http://localhost:9000", "127.0.0.1", "loopback"),
        ("http://169.254.1.1", "169.254.1.1", "link-local"),
        ("http://[fe80::1]:9000", "fe80::1", "link-local"),
        ("http://10.0.0.5:9000", "10.0.0.5", "private"),
        ("http://172.16.0.1:9000", "172.16.0.1", "private"),
        ("http://192.168.0.10:9000", "192.168.0.10", "private"),
        ("http://[fd12:3456::1]:9000", "fd12:3456::1", "private"),  # ULA
        ("http://minio.internal:9000", "10.1.2.3", "private"),
        ("http://split.example.com", "192.168.1.9", "private"),
        ("http://0.0.0.0:9000", "0.0.0.0", "unspecified"),
        ("http://[::]:9000", "::", "unspecified"),
        ("http://224.0.0.1", "224.0.0.1", "multicast"),
        ("http://[ff02::1]", "ff02::1", "multicast"),
        ("http://240.0.0.1", "240.0.0.1", "reserved"),
        ("http://169.254.169.254", "169.254.169.254", "cloud metadata"),
        ("http://[fd00:ec2::254]", "fd00:ec2::254", "cloud metadata"),
        ("http://[::ffff:10.0.0.5]:9000", "10.0.0.5", "private"),
        ("http://2130706433:9000", "127.0.0.1", "loopback"),  # decimal
        ("http://0177.0.0.1:9000", "127.0.0.1", "loopback"),  # octal
        ("http://0x7f.1:9000", "127.0.0.1", "loopback"),  # hex
        ("http://127.1:9000", "127.0.0.1", "loopback"),  # short
    ],
)
def test_internal_endpoints_are_refused_naming_field_address_and_setting(
    endpoint_url: str, address: str, kind: str
) -> None:
    message = refusal(endpoint_url)
    assert message.startswith(f"source.endpoint_url {endpoint_url} is not allowed: ")
    assert address in message and kind in message
    assert ALLOWLIST_VARIABLE in message


@pytest.mark.parametrize(
    "endpoint_url", ["http://metadata.google.internal", "http://metadata", "http://instance-data.ec2.internal"]
)
def test_metadata_host_names_are_refused(endpoint_url: str) -> None:
    assert "cloud metadata service" in refusal(endpoint_url)


def test_public_spellings_other_than_dotted_decimal_are_refused() -> None:
    # 0x34dbaa3c is 52.219.170.60, a public address: refused for its spelling alone.
    assert "non-standard form; write it as 52.219.170.60" in refusal("https://0x34dbaa3c")


def test_refused_is_a_failed_precondition() -> None:
    # The executor reports it like a source it cannot list: the run (or preview) fails with this message.
    assert issubclass(EndpointRefused, FailedPrecondition)


@pytest.mark.parametrize(
    "endpoint_url",
    ["https://s3.eu-central-1.amazonaws.com", "https://s3.eu-central-1.amazonaws.com:443", "https://52.219.170.60"],
)
def test_public_endpoints_pass(endpoint_url: str) -> None:
    check_source_endpoint(endpoint_url, PUBLIC_ONLY, resolve=fake_resolver())


@pytest.mark.parametrize("endpoint_url", [None, ""])
def test_no_endpoint_means_aws_and_is_not_resolved(endpoint_url: str | None) -> None:
    def must_not_resolve(host: str, port: int) -> list[str]:
        raise AssertionError("resolved")

    check_source_endpoint(endpoint_url, PUBLIC_ONLY, resolve=must_not_resolve)


def test_the_allowlist_lets_exactly_the_listed_address_and_port_through() -> None:
    policy = AddressPolicy.from_allowlist(["127.0.0.1:9000"])
    check_source_endpoint("http://127.0.0.1:9000", policy, resolve=fake_resolver())
    assert "127.0.0.1 is a loopback address" in refusal("http://127.0.0.1:9001", policy)
    assert "127.0.0.2 is a loopback address" in refusal("http://127.0.0.2:9000", policy)
    assert "::1 is a loopback address" in refusal("http://localhost:9000", policy)  # ::1 is not listed
    assert "10.0.0.5 is a private address" in refusal("http://10.0.0.5:9000", policy)
    assert "non-standard form" in refusal("http://127.1:9000", policy)


def test_an_allowlisted_range_covers_a_named_store() -> None:
    policy = AddressPolicy.from_allowlist(["10.0.0.0/8:9000"])
    check_source_endpoint("http://minio.internal:9000", policy, resolve=fake_resolver())
    assert "10.1.2.3 is a private address" in refusal("http://minio.internal:80", policy)
    # A range does not open the metadata address: only an entry naming it exactly does.
    broad = AddressPolicy.from_allowlist(["169.254.0.0/16"])
    check_source_endpoint("http://169.254.1.1", broad, resolve=fake_resolver())
    assert "cloud metadata" in refusal("http://169.254.169.254", broad)


# --- every way the executor connects to a source checks first ---------------------------------------------

FORBIDDEN = SourceAccess("http://127.0.0.1:9000", "us-east-1", "key", "secret")


@pytest.fixture
def no_boto3_client(monkeypatch: pytest.MonkeyPatch) -> None:
    boto3 = pytest.importorskip("boto3")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a boto3 client was made for a refused endpoint")

    monkeypatch.setattr(boto3, "client", refuse)


@pytest.mark.usefixtures("no_boto3_client")
def test_no_boto3_client_is_made_for_a_refused_endpoint() -> None:
    with pytest.raises(EndpointRefused, match=r"127\.0\.0\.1 is a loopback address"):
        s3_client(FORBIDDEN)
    with pytest.raises(EndpointRefused):
        list(list_source("s3://landing/users/", "", FORBIDDEN))
    with pytest.raises(EndpointRefused):
        file_heads("s3://landing/users/", ["a.csv"], FORBIDDEN)


def test_an_allowlisted_endpoint_gets_its_boto3_client(monkeypatch: pytest.MonkeyPatch) -> None:
    boto3 = pytest.importorskip("boto3")
    made: list[str] = []
    monkeypatch.setattr(boto3, "client", lambda service, **kwargs: made.append(kwargs["endpoint_url"]))
    allowed = SourceAccess(
        "http://127.0.0.1:9000", limits=SourceLimits(AddressPolicy.from_allowlist(["127.0.0.1:9000"]))
    )
    discover.s3_client(allowed)
    assert made == ["http://127.0.0.1:9000"]


class FakeHadoopConf:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def fake_spark(conf: FakeHadoopConf) -> Any:
    return SimpleNamespace(sparkContext=SimpleNamespace(_jsc=SimpleNamespace(hadoopConfiguration=lambda: conf)))


def test_spark_is_not_configured_for_a_refused_endpoint() -> None:
    conf = FakeHadoopConf()
    loader = TableLoader(fake_spark(conf), "autoloader")
    with pytest.raises(EndpointRefused, match=r"127\.0\.0\.1 is a loopback address"):
        loader.configure_s3("s3://landing/users/", FORBIDDEN)
    assert conf.values == {}
    allowed = SourceAccess("http://127.0.0.1:9000", limits=SourceLimits(AddressPolicy.from_allowlist(["127.0.0.1"])))
    loader.configure_s3("s3://landing/users/", allowed)
    assert conf.values["fs.s3a.bucket.landing.endpoint"] == "http://127.0.0.1:9000"


def test_a_runs_source_access_carries_the_executors_limits() -> None:
    config = RunConfig.from_ingestion(
        {"ingestion_id": "i", "source": {"uri": "s3://b/p/", "endpoint_url": "http://127.0.0.1:9000"}}
    )
    limits = SourceLimits(AddressPolicy.from_allowlist(["127.0.0.1"]))
    access = config.source_access(limits)
    assert (access.endpoint_url, access.limits) == ("http://127.0.0.1:9000", limits)
