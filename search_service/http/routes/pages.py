"""The built-in search page: static files served by the app, under a strict Content-Security-Policy.

The page is plain HTML, CSS and JavaScript modules (no build step, nothing from a CDN) that talk to
the public API only. Every response here carries headers that keep injected markup inert even if a
rendering bug slipped through: no inline script or style, no plugins, no framing, no third parties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class PageStaticFiles(StaticFiles):
    """StaticFiles with the page headers; clients revalidate (ETag / Last-Modified) on each load."""

    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def add_pages(app: FastAPI) -> None:
    """Serve the search page at GET / and its assets at /static."""
    app.mount("/static", PageStaticFiles(directory=STATIC_DIR), name="static")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", media_type="text/html", headers={**PAGE_HEADERS, "Cache-Control": "no-cache"}
        )
