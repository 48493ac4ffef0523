"""The gateway's per-caller token buckets, driven by a clock the tests move by hand."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from starlette.requests import Request

from gateway.app import create_app
from gateway.rate_limit import RateLimiter, caller_key, retry_after_seconds
from services.shared.auth import new_secret
from services.shared.config import GatewaySettings

LIST_INGESTIONS = "/api/v1/ingestions"


class ManualClock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def allowed(limiter: RateLimiter, key: str) -> bool:
    return limiter.acquire(key) == 0.0


def take_all(limiter: RateLimiter, key: str, attempts: int = 1000) -> int:
    """How many requests pass before the first refusal."""
    for passed in range(attempts):
        if not allowed(limiter, key):
            return passed
    raise AssertionError(f"{key} was never refused in {attempts} attempts")


# ----------------------------------------------------------------------------------------------- buckets


def test_burst_allows_that_many_at_once_then_refuses() -> None:
    limiter = RateLimiter(2.0, 3, clock=ManualClock())
    assert take_all(limiter, "a") == 3
    assert not allowed(limiter, "a")


def test_bucket_refills_at_the_configured_rate_up_to_the_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert take_all(limiter, "a") == 3
    clock.advance(0.49)  # a token takes 0.5 s at 2/s
    assert not allowed(limiter, "a")
    clock.advance(0.01)
    assert allowed(limiter, "a")
    assert not allowed(limiter, "a")
    clock.advance(1.0)
    assert take_all(limiter, "a") == 2
    clock.advance(3600)  # a long pause fills the bucket to the burst, no further
    assert take_all(limiter, "a") == 3
    assert allowed(limiter, "b")
    clock.advance(1.25)  # 2 tokens left + 2.5 refilled: capped at 3
    assert take_all(limiter, "b") == 3


def test_refusals_do_not_consume_tokens() -> None:
    clock = ManualClock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert take_all(limiter, "a") == 1
    for _ in range(8):
        clock.advance(0.0625)  # binary fractions: the sums stay exact
        assert not allowed(limiter, "a")
    clock.advance(0.5)  # 1.0 s since the last token was taken
    assert allowed(limiter, "a")


def test_the_wait_is_the_time_until_the_next_token() -> None:
    clock = ManualClock()
    limiter = RateLimiter(0.25, 2, clock=clock)
    assert take_all(limiter, "a") == 2
    assert limiter.acquire("a") == pytest.approx(4.0)
    clock.advance(1.0)
    assert limiter.acquire("a") == pytest.approx(3.0)
    clock.advance(2.5)
    assert limiter.acquire("a") == pytest.approx(0.5)


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (0.5, 1), (1.0, 1), (1.01, 2), (3.0, 3), (59.2, 60)])
def test_retry_after_rounds_up_to_whole_seconds_and_is_at_least_one(wait: float, header: int) -> None:
    assert retry_after_seconds(wait) == header


def test_callers_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(1.0, 2, clock=ManualClock())
    assert take_all(limiter, "a") == 2
    assert take_all(limiter, "b") == 2
    assert not allowed(limiter, "a")


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(0.0, 1, clock=ManualClock())
    assert not limiter.enabled
    assert all(allowed(limiter, "a") for _ in range(1000))
    assert limiter.tracked_callers == 0


@pytest.mark.parametrize(("rate", "burst"), [(-1.0, 1), (float("inf"), 1), (float("nan"), 1), (1.0, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


# ----------------------------------------------------------------------------------------------- memory


def test_tracked_callers_never_exceed_the_maximum() -> None:
    limiter = RateLimiter(1.0, 5, clock=ManualClock(), max_callers=3)
    for n in range(100):
        limiter.acquire(f"caller-{n}")
        assert limiter.tracked_callers <= 3
    assert limiter.tracked_callers == 3


def test_the_least_recently_seen_caller_goes_first() -> None:
    limiter = RateLimiter(1.0, 1, clock=ManualClock(), max_callers=2)
    assert take_all(limiter, "a") == 1
    assert take_all(limiter, "b") == 1
    assert not allowed(limiter, "a")  # a is now the more recently seen
    assert allowed(limiter, "c")  # drops b, keeps a
    assert not allowed(limiter, "a")
    assert allowed(limiter, "b")  # b was forgotten: a fresh bucket


def test_idle_callers_are_dropped_once_their_bucket_would_be_full() -> None:
    clock = ManualClock()
    limiter = RateLimiter(2.0, 4, clock=clock)  # empty to full in 2 s
    for n in range(10):
        take_all(limiter, f"caller-{n}")
    assert limiter.tracked_callers == 10
    clock.advance(1.9)
    limiter.acquire("other")
    assert limiter.tracked_callers == 11
    clock.advance(0.1)
    limiter.acquire("other")
    assert limiter.tracked_callers == 1
    # Dropping lost nothing: a returning caller gets the full burst it would have had anyway.
    assert take_all(limiter, "caller-0") == 4


# ----------------------------------------------------------------------------------------------- caller keys


def request_with(headers: dict[str, str], client: tuple[str, int] | None = ("10.1.2.3", 5555)) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": client,
        }
    )


def test_a_token_is_keyed_by_its_hash_never_by_itself() -> None:
    secret = new_secret()
    key = caller_key(request_with({"Authorization": f"Bearer {secret}"}))
    assert key == "token:" + hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in key
    assert secret.removeprefix("alk_") not in key


def test_spellings_of_one_token_share_a_key_and_tokens_differ() -> None:
    secret = new_secret()
    keys = {
        caller_key(request_with({"Authorization": header}))
        for header in (f"Bearer {secret}", f"bearer {secret}", f"BEARER   {secret}  ")
    }
    assert len(keys) == 1
    assert caller_key(request_with({"Authorization": f"Bearer {new_secret()}"})) not in keys


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}])
def test_requests_without_a_usable_token_are_keyed_by_client_address(headers: dict[str, str]) -> None:
    assert caller_key(request_with(headers)) == "ip:10.1.2.3"
    assert caller_key(request_with(headers, client=("10.9.9.9", 1))) == "ip:10.9.9.9"


# ----------------------------------------------------------------------------------------------- settings


def test_gateway_settings_default_to_a_limit_and_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOADER_CONTROL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("AUTOLOADER_TRACKER_ADDRESS", "127.0.0.1:2")
    defaults = GatewaySettings()
    assert (defaults.rate_limit_per_second, defaults.rate_limit_burst) == (50.0, 100)
    monkeypatch.setenv("AUTOLOADER_RATE_LIMIT_PER_SECOND", "0.5")
    monkeypatch.setenv("AUTOLOADER_RATE_LIMIT_BURST", "7")
    configured = GatewaySettings()
    assert (configured.rate_limit_per_second, configured.rate_limit_burst) == (0.5, 7)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTOLOADER_RATE_LIMIT_PER_SECOND", "-1"),
        ("AUTOLOADER_RATE_LIMIT_PER_SECOND", "inf"),
        ("AUTOLOADER_RATE_LIMIT_BURST", "0"),
    ],
)
def test_gateway_settings_refuse_nonsense_limits(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv("AUTOLOADER_CONTROL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("AUTOLOADER_TRACKER_ADDRESS", "127.0.0.1:2")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable.removeprefix("AUTOLOADER_").lower()):
        GatewaySettings()


# ----------------------------------------------------------------------------------------------- the gateway app
# No backend listens at 127.0.0.1:1: requests let through are answered 503, which is all these tests need.


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def client(clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        {"control": "127.0.0.1:1", "tracker": "127.0.0.1:1"},
        rate_limit_per_second=0.5,
        rate_limit_burst=1,
        rate_limit_clock=clock,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as http,
    ):
        yield http


async def test_the_gateway_answers_429_with_retry_after_and_a_status_body(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    headers = {"Authorization": f"Bearer {new_secret()}"}
    assert (await client.get(LIST_INGESTIONS, headers=headers)).status_code == 503
    refused = await client.get(LIST_INGESTIONS, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.headers["x-request-id"]
    body = refused.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == 8  # RESOURCE_EXHAUSTED
    assert body["details"] == []
    assert "0.5 requests per second" in body["message"]
    assert "retry after 2 s" in body["message"]
    clock.advance(1.5)
    assert (await client.get(LIST_INGESTIONS, headers=headers)).headers["retry-after"] == "1"
    clock.advance(0.5)
    assert (await client.get(LIST_INGESTIONS, headers=headers)).status_code == 503


async def test_the_gateway_counts_refusals_in_its_metrics(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get(LIST_INGESTIONS)
    scraped = (await client.get("/metrics")).text
    line = re.search(r'autoloader_http_requests_total\{route="GET /api/v1/ingestions",status="429"\} (\S+)', scraped)
    assert line is not None, scraped
    assert float(line.group(1)) == 2.0


async def test_health_metrics_openapi_and_unknown_routes_are_not_limited(client: httpx.AsyncClient) -> None:
    await client.get(LIST_INGESTIONS)
    assert (await client.get(LIST_INGESTIONS)).status_code == 429
    for _ in range(5):
        assert (await client.get("/healthz")).status_code == 503
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/v1/no-such-route")).status_code == 404
        assert (await client.get("/api/v1/openapi.json")).status_code == 503
