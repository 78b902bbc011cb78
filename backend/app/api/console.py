"""The supervisor console: a static page and its assets, served by the backend (no build step).

The page only talks to the JSON API, so auth lives there; the page itself is public. Its content
security policy allows no inline script or handler, a second wall behind rendering callers' words
as text."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", headers=HEADERS)


@router.get("/favicon.ico")
async def icon() -> FileResponse:
    """The console's own page declares its icon; /docs and the JSON endpoints opened in a browser
    make it ask here."""
    return FileResponse(CONSOLE_DIR / "icon.svg", media_type="image/svg+xml", headers=HEADERS)


class _WithHeaders:
    """Adds the console's headers to every asset response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console", _WithHeaders(StaticFiles(directory=CONSOLE_DIR)), name="console")
