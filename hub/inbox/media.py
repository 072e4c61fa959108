"""Files customers sent, served at `/media/<key>` (the link in the message; the key is
unguessable): an image inline or a download, never a page (hub/core/media.py decides which)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse
from starlette.responses import Response

from hub.core.media import CACHE, HEADERS, disposition
from hub.inbox.deps import HubDep

router = APIRouter(tags=["media"])


@router.get("/media/{key:path}")
async def media(key: str, hub: HubDep) -> Response:
    """A file a customer sent (the link in the message; the key is unguessable), served
    as an image or a download, never as a page (hub/core/media.py)."""
    path = hub.media.path(key)
    if path is None:
        headers = {**HEADERS, "Cache-Control": "no-store"}
        return JSONResponse({"detail": "no such file"}, status_code=404, headers=headers)
    served = hub.media.served(key, path)
    headers = {
        **HEADERS,
        "Cache-Control": CACHE,
        "Content-Disposition": disposition(served.inline, path.name),
    }
    return FileResponse(path, media_type=served.mime_type, headers=headers)


# HEAD answers the same headers (one operation in the API schema: the GET)
router.add_api_route("/media/{key:path}", media, methods=["HEAD"], include_in_schema=False)
