"""The web console: static files under /ui, served by the gateway next to the API they call.

The pages are plain HTML, CSS and JavaScript modules, with no build step. They hold no data of their own: the
browser signs in with an API token (kept in the tab's sessionStorage) and calls /api/v1 like any client, so
the console can do exactly what the token may.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway import errors
from services.shared.errors import NotFound

CONSOLE_DIRECTORY = Path(__file__).parent / "console"
_MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Scripts and styles only from this origin, no inline script, no framing: a token lives in this page.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _console_files() -> dict[str, Path]:
    """Every file the console serves, by its path below /ui/ (nothing outside the directory can be named)."""
    return {
        path.relative_to(CONSOLE_DIRECTORY).as_posix(): path
        for path in CONSOLE_DIRECTORY.rglob("*")
        if path.is_file() and path.suffix in _MEDIA_TYPES
    }


def console_routes() -> list[Route]:
    files = _console_files()

    async def to_index(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=308)

    async def serve(request: Request) -> Response:
        name = request.path_params.get("path") or "index.html"
        path = files.get(name)
        if path is None:
            return errors.from_error(NotFound(f"no console file {name}"))
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)

    return [
        Route("/ui", to_index, methods=["GET"]),
        Route("/ui/", serve, methods=["GET"]),
        Route("/ui/{path:path}", serve, methods=["GET"]),
    ]
