"""What every route depends on: the API key check, the NATS client, the raw body, the store."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.settings import GatewaySettings
from shared.client import Client
from shared.storage import ImageStore, open_store

key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


async def require_key(
    request: Request,
    header_key: Annotated[str | None, Depends(key_header)],
    bearer_key: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    gateway: GatewaySettings = request.app.state.gateway
    if gateway.api_key is None:
        return
    # EventSource and <img> cannot send headers, so the console passes `api_key` in the query.
    given = (
        header_key or (bearer_key.credentials if bearer_key else None) or request.query_params.get("api_key")
    )
    expected = gateway.api_key.get_secret_value()
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise StarletteHTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def nats_client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def image_store(request: Request) -> ImageStore:
    """The deployment's image store, chosen from the gateway's own settings (never from a URL)."""
    state = request.app.state
    if getattr(state, "store", None) is None:
        state.store = open_store(state.settings, nats_client(request).js)
    store: ImageStore = state.store
    return store


async def read_body(request: Request) -> bytes:
    return await request.body()


Nats = Annotated[Client, Depends(nats_client)]
Store = Annotated[ImageStore, Depends(image_store)]
Body = Annotated[bytes, Depends(read_body)]
AUTH = [Depends(require_key)]


def json_bytes(data: bytes, status: int = 200) -> Response:
    """A reply that is already JSON (from a service) passes through as bytes."""
    return Response(content=data, media_type="application/json", status_code=status)
