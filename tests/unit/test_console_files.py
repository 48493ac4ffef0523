"""The gateway serves the console's files, with headers that keep a page holding a token to itself."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.console import CONSOLE_DIRECTORY


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = create_app({"control": "127.0.0.1:1"})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")


async def test_the_console_page_and_its_modules_are_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    async with client:
        page = await client.get("/ui/")
        module = await client.get("/ui/views/ingestion.js")
        redirect = await client.get("/ui")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
    assert module.text == (CONSOLE_DIRECTORY / "views" / "ingestion.js").read_text()
    assert (redirect.status_code, redirect.headers["location"]) == (308, "/ui/")


@pytest.mark.parametrize(
    "path", ["/ui/no-such.js", "/ui/../app.py", "/ui/%2e%2e/console.py", "/ui/views/../../console.py", "/ui/.hidden"]
)
async def test_only_the_console_files_can_be_named(client: httpx.AsyncClient, path: str) -> None:
    async with client:
        response = await client.get(path)

    assert response.status_code == 404
    assert "def " not in response.text


def test_no_console_script_builds_markup_from_strings() -> None:
    """Values reach the page as text nodes (dom.js el()), never through innerHTML, so API data cannot inject."""
    for script in CONSOLE_DIRECTORY.rglob("*.js"):
        text = script.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, script.name
        assert "style:" not in text, f"{script.name}: inline styles are refused by the page's policy"
