"""The API's documentation pages, Swagger UI at `/docs` and ReDoc at `/redoc`, served offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so without the internet they are blank.
Here their scripts and styles come from the PyPI package `fastapi-offline` (MIT; it bundles
swagger-ui-dist, Apache-2.0, and ReDoc, MIT), mounted at `/docs-static`: the pages name no
other origin. Swagger UI's validator badge (an external image) is turned off, and a
Content-Security-Policy keeps the pages on the gateway's own origin (ReDoc's bundle would
otherwise fetch its sidebar logo from its CDN; blocked, the logo just stays hidden).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PREFIX = "/docs-static"
# The pages start their bundle with an inline script; ReDoc runs its search in a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _own_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def install_docs(app: FastAPI) -> None:
    """Add `/docs`, `/docs/oauth2-redirect`, `/redoc` and their assets (the app is made with
    `docs_url=None, redoc_url=None`)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-static")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return _own_origin_only(
            get_swagger_ui_html(
                openapi_url=base + (app.openapi_url or "/openapi.json"),
                title=f"{app.title} · API",
                swagger_js_url=f"{base}{PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{base}{PREFIX}/favicon.png",
                oauth2_redirect_url=base + "/docs/oauth2-redirect",
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return _own_origin_only(
            get_redoc_html(
                openapi_url=base + (app.openapi_url or "/openapi.json"),
                title=f"{app.title} · API reference",
                redoc_js_url=f"{base}{PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{PREFIX}/favicon.png",
                with_google_fonts=False,
            )
        )
