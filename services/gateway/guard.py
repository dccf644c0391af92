"""What a browser on another site cannot make the gateway do, and which hosts it answers for.

- **Cross-site requests** (CSRF): a state-changing request (POST) from a web page on another
  origin is refused with 403: the browser says so in `Sec-Fetch-Site: cross-site` or in an
  `Origin` that is not the gateway's own and not a configured CORS origin. Such a request can
  only come from a browser; API clients (curl, programs) send neither header and are unaffected.
  Bodies must be JSON or multipart uploads: a `text/plain` or form-encoded POST, which a page can
  send without a CORS preflight, is refused with 415.
- **Host names** (DNS rebinding): a request naming a host that is not allowed gets 400, so a
  hostile domain resolving to 127.0.0.1 cannot talk to a gateway on loopback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from services.gateway.settings import LOOPBACK_HOSTS, GatewaySettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_TYPES = ("application/json", "multipart/form-data")


def allowed_hosts(gateway: GatewaySettings) -> frozenset[str]:
    hosts = {*LOOPBACK_HOSTS, socket.gethostname(), *(h.lower() for h in gateway.allowed_hosts)}
    if gateway.public_url:
        hosts.add((urlsplit(gateway.public_url).hostname or "").lower())
    return frozenset(h for h in hosts if h)


def _host_of(value: str) -> str:
    """`example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`."""
    if value.startswith("["):
        return value.split("]")[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: host check for every request, cross-site and media-type checks for POSTs."""

    def __init__(self, app: ASGIApp, *, gateway: GatewaySettings) -> None:
        self.app = app
        self.any_host = "*" in gateway.allowed_hosts
        self.hosts = allowed_hosts(gateway)
        public = urlsplit(gateway.public_url or "")
        own = {f"{public.scheme}://{public.netloc}"} if public.netloc else set()
        self.origins = frozenset({*(o.rstrip("/") for o in gateway.cors_origins), *own})

    async def _refuse(self, send: Send, status: int, message: str, field: str | None) -> None:
        body = json.dumps({"code": status, "error": message, "field": field}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        if not self.any_host and _host_of(host).lower() not in self.hosts:
            await self._refuse(send, 400, f"host {host!r} is not served here", "Host")
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{host}"
            foreign = (
                origin is not None and origin != "null" and origin.rstrip("/") not in {own, *self.origins}
            )
            cross_site = headers.get("sec-fetch-site") == "cross-site" and (origin or "") not in self.origins
            if foreign or cross_site or origin == "null":
                await self._refuse(send, 403, "cross-site request refused", "Origin")
                return
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type and content_type not in _BODY_TYPES:
                await self._refuse(
                    send, 415, f"send JSON or a multipart upload, not {content_type}", "Content-Type"
                )
                return
        await self.app(scope, receive, send)
