"""The web console (one static page, its web fonts) and the readiness check."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from services.gateway.deps import Nats
from services.gateway.openapi import ERRORS
from services.gateway.webfonts import WebFonts
from shared.asyncapi import document
from shared.runtime.bus.discovery import ping_all
from shared.runtime.logging import get_logger
from shared.runtime.services import REQUIRED
from shared.sources import SOURCES

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parents[1] / "static"
# Browsers only talk to the console's own origin; images may be blob: (previews) or data:.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter()


@router.get("/", include_in_schema=False)
async def console() -> FileResponse:
    return FileResponse(
        STATIC / "index.html", headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONSOLE_CSP}
    )


@router.get("/webfonts.css", include_in_schema=False)
async def webfonts_css(request: Request) -> Response:
    fonts: WebFonts = request.app.state.webfonts
    css = await fonts.stylesheet()
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(css, media_type="text/css", headers=headers | {"Content-Encoding": "gzip"})
    return Response(gzip.decompress(css), media_type="text/css", headers=headers)


@router.get("/webfonts/{face}/{block}.woff", include_in_schema=False)
async def webfont(request: Request, face: str, block: str) -> Response:
    fonts: WebFonts = request.app.state.webfonts
    data = await fonts.woff(fonts.find(face, block))
    # The URL carries the file's version (`?v=`), so a browser may keep a slice for long.
    return Response(data, media_type="font/woff", headers={"Cache-Control": "public, max-age=604800"})


@router.get("/asyncapi.json", tags=["operations"], summary="The AsyncAPI 3 document of the NATS interface")
async def asyncapi() -> JSONResponse:
    return JSONResponse(document())


@router.get(
    "/health",
    tags=["operations"],
    summary="Ready when NATS answers, every required service answers $SRV.PING and every source is served",
    responses={503: ERRORS[503]},
)
async def health(client: Nats, request: Request) -> JSONResponse:
    nats_ok = False
    counts: dict[str, int] = dict.fromkeys(REQUIRED, 0)
    served: set[str] = set()
    if client.nc.is_connected:
        try:
            await client.nc.flush(timeout=2)
            nats_ok = True
            for reply in await ping_all(client.nc, wait=0.3):
                name = str(reply.get("name", ""))
                counts[name] = counts.get(name, 0) + 1
                served.update(filter(None, str((reply.get("metadata") or {}).get("sources", "")).split(",")))
        except Exception as exc:
            log.warning("gateway.health_failed", error=repr(exc))
    missing = [name for name in REQUIRED if not counts.get(name)]
    unserved = [name for name in SOURCES if name not in served]
    ok = nats_ok and not missing and not unserved
    body: dict[str, Any] = {
        "status": "ok" if ok else "unavailable",
        "nats": nats_ok,
        "services": counts,
        "missing": missing,
        "sources_unserved": unserved,
        "auth": request.app.state.gateway.api_key is not None,
    }
    if not ok:
        body |= {"code": 503, "field": None}
        if not nats_ok:
            body["error"] = "NATS unreachable"
        elif missing:
            body["error"] = f"services not answering: {', '.join(missing)}"
        else:
            body["error"] = f"no ingest serves: {', '.join(unserved)}"
    return JSONResponse(body, status_code=200 if ok else 503)
