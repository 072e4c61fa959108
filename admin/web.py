"""Serves the single-page UI: `/admin` (and every `/admin/...` route of the page) is index.html,
`/admin/static/<file>` its scripts and styles. Everything else it needs is the inbox API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# The page and its files change with each release; `no-cache` makes browsers revalidate.
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get("/admin")
async def page() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html",
        headers={**_HEADERS, "Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer"},
    )


@router.get("/admin/")
async def slash() -> RedirectResponse:
    return RedirectResponse("/admin", status_code=308)


@router.get("/admin/static/{name}")
async def static(name: str) -> FileResponse:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


# Third-party files (admin/static/vendor/README.md says where each comes from): only these.
VENDOR = frozenset({"chart.umd.min.js"})


@router.get("/admin/static/vendor/{name}")
async def vendor(name: str) -> FileResponse:
    if name not in VENDOR:
        raise HTTPException(404, "no such file")
    path = STATIC / "vendor" / name
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


# Scripts and styles only from the hub; images from the hub and data: URLs (previews);
# connections to the hub's API and its events socket.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
