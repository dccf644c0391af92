"""The gateway's FastAPI app: HTTP outside, NATS inside.

Every route is a thin translation to one NATS call through `shared.client.Client` (replies that
are already JSON pass through as bytes) or a read through the deployment's image store. The
routes live in `routes/`, one router per concern; errors, limits, authentication and the OpenAPI
document each have their module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from services.gateway.docs import install_docs
from services.gateway.errors import install_error_handlers
from services.gateway.guard import Guard
from services.gateway.limits import BodyLimit
from services.gateway.openapi import install_openapi
from services.gateway.routes import console, files, jobs, render, submit
from services.gateway.settings import GatewaySettings
from services.gateway.webfonts import WebFonts
from shared.client import Client
from shared.runtime.bus.connect import connect
from shared.runtime.bus.permissions import GATEWAY, inbox_prefix
from shared.runtime.bus.service import instance_name
from shared.runtime.settings import Settings

DESCRIPTION = (
    "HTTP access to imagegen: text from files and SQL queries rendered to transparent PNG images. "
    "Errors are JSON `{code, error, field}` with the same codes as the NATS replies."
)


def create_app(
    settings: Settings | None = None,
    gateway: GatewaySettings | None = None,
    *,
    client: Client | None = None,
) -> FastAPI:
    """The gateway app. Without `client` it connects to NATS in its lifespan and drains at exit."""
    settings = settings or Settings()
    gateway = gateway or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = None
        if client is None:
            # Named like every service's connection, so its container's health check finds it.
            name = instance_name(settings, GATEWAY)
            nc = await connect(settings, name, inbox_prefix=inbox_prefix(GATEWAY))
            owned = Client(nc, timeout=gateway.request_timeout_seconds)
        app.state.client = client or owned
        try:
            yield
        finally:
            app.state.webfonts.close()
            if owned is not None:
                await owned.close()

    app = FastAPI(
        title="imagegen gateway",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.state.event_streams = {}  # client address -> open event streams (a cap per client)
    app.state.webfonts = WebFonts(gateway.webfont_cache_dir)
    app.add_middleware(
        BodyLimit,
        default=gateway.max_body_bytes,
        uploads=gateway.max_upload_bytes,
        upload_paths=submit.upload_paths(),
    )
    if gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gateway.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "Last-Event-ID"],
        )
    # Added last, so it runs first: a foreign host or a cross-site POST never reaches a route.
    app.add_middleware(Guard, gateway=gateway)
    app.mount("/static", StaticFiles(directory=console.STATIC), name="static")
    for module in (console, render, submit, jobs, files):
        app.include_router(module.router)
    return app
