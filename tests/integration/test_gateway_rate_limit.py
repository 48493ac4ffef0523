"""Rate limits through a real gateway in front of the real services: 429 with Retry-After, per token.

`stack`'s own gateway runs without a limit, so this module serves a second gateway on the same backends with a
small one: bursts of 3, refilled at 1 request per second. One second per token is far longer than three
requests take even on a busy machine, so the fourth quick request is refused however slow the backends are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from gateway.app import create_app
from services.shared.auth import Role
from tests.support.stack import InProcessStack, serve_app

pytestmark = pytest.mark.integration

RATE_PER_SECOND, BURST = 1.0, 3
ROUTE = "/api/v1/ingestions"
RESOURCE_EXHAUSTED = 8


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def limited_url(stack: InProcessStack) -> AsyncIterator[str]:
    app = create_app(
        {"control": stack.control.address, "tracker": stack.tracker.address, "executor": stack.executor.address},
        rate_limit_per_second=RATE_PER_SECOND,
        rate_limit_burst=BURST,
    )
    server, task, port = await serve_app(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def client(url: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


def assert_rate_limited(response: httpx.Response) -> int:
    """The refusal's Retry-After, after checking it is a 429 shaped like every other gateway error."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == RESOURCE_EXHAUSTED
    assert "rate limit" in body["message"]
    assert f"{RATE_PER_SECOND:g} requests per second" in body["message"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 1 / RATE_PER_SECOND + 1
    return retry_after


async def test_the_fourth_quick_request_is_refused_until_retry_after_has_passed(
    stack: InProcessStack, limited_url: str
) -> None:
    token = await stack.make_token(Role.VIEWER)
    other_token = await stack.make_token(Role.VIEWER)
    async with client(limited_url, token) as caller, client(limited_url, other_token) as other:
        for _ in range(BURST):
            response = await caller.get(ROUTE)
            assert response.status_code == 200, response.text
        retry_after = assert_rate_limited(await caller.get(ROUTE))

        # Another token has a bucket of its own: its whole burst goes through meanwhile.
        for _ in range(BURST):
            response = await other.get(ROUTE)
            assert response.status_code == 200, response.text

        await asyncio.sleep(retry_after)
        response = await caller.get(ROUTE)
        assert response.status_code == 200, response.text


async def test_health_is_never_limited(stack: InProcessStack, limited_url: str) -> None:
    token = await stack.make_token(Role.VIEWER)
    async with client(limited_url, token) as caller, client(limited_url) as anonymous:
        for _ in range(BURST):
            assert (await caller.get(ROUTE)).status_code == 200
        assert_rate_limited(await caller.get(ROUTE))
        for _ in range(3 * BURST):
            assert (await caller.get("/healthz")).status_code == 200
            assert (await anonymous.get("/healthz")).status_code == 200


async def test_callers_without_a_token_are_limited_by_address_apart_from_tokens(
    stack: InProcessStack, limited_url: str
) -> None:
    token = await stack.make_token(Role.VIEWER)
    async with client(limited_url) as anonymous, client(limited_url, token) as caller:
        statuses = [(await anonymous.get(ROUTE)).status_code for _ in range(BURST)]
        assert statuses == [401] * BURST
        assert_rate_limited(await anonymous.get(ROUTE))
        # A token sent from the same address is counted on its own.
        assert (await caller.get(ROUTE)).status_code == 200
