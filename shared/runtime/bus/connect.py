"""Connect to NATS the way a long-running service should: retry for ever, log every change."""

from __future__ import annotations

import ssl
from typing import Any

import nats
from nats.aio.client import Client as NATS

from shared.runtime.logging import get_logger
from shared.runtime.retry import retrying
from shared.runtime.settings import Settings

log = get_logger(__name__)


def connect_options(settings: Settings, name: str, *, inbox_prefix: str | None = None) -> dict[str, Any]:
    """nats-py options from settings: auth, TLS and reconnect policy.

    A service passes its own `inbox_prefix` (`permissions.inbox_prefix`): its replies and
    deliveries then arrive where no client may subscribe.
    """
    options: dict[str, Any] = {
        "servers": settings.nats_servers,
        "name": name,
        # Services must outlive a NATS restart of any length: reconnect for ever, quickly.
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "connect_timeout": 5,
        "ping_interval": 10,
        "max_outstanding_pings": 3,
        # Keep publishing through a short outage instead of failing at once.
        "pending_size": 64 * 1024 * 1024,
        **auth_options(settings),
    }
    if inbox_prefix:
        options["inbox_prefix"] = inbox_prefix
    return options


def auth_options(settings: Settings) -> dict[str, Any]:
    """The nats-py options that say who connects (user/password, token, credentials) and how
    the server is trusted (a TLS CA), from settings."""
    options: dict[str, Any] = {}
    if settings.nats_user:
        options["user"] = settings.nats_user
        if settings.nats_password_file:
            options["password"] = settings.nats_password_file.read_text(encoding="utf-8").strip()
        else:
            options["password"] = settings.nats_password or ""
    if settings.nats_token:
        options["token"] = settings.nats_token
    if settings.nats_creds_file:
        options["user_credentials"] = str(settings.nats_creds_file)
    if settings.nats_tls_ca:
        options["tls"] = ssl.create_default_context(cafile=str(settings.nats_tls_ca))
    return options


async def connect(
    settings: Settings, name: str, *, retry_for: float | None = None, inbox_prefix: str | None = None
) -> NATS:
    """Connect, retrying the first connection too (nats-py gives up on it after one pass).

    `retry_for` bounds the wait for a client command; services pass None and wait for ever.
    """

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", error=str(exc) or type(exc).__name__)

    async def on_disconnected() -> None:
        if nc is not None and (nc.is_closed or nc.is_draining):
            return  # our own close or drain, not an outage
        log.warning("nats.disconnected")

    async def on_reconnected() -> None:
        url = nc.connected_url if nc is not None else None
        log.info("nats.reconnected", server=str(url.netloc if url else ""))

    nc: NATS | None = None

    async def attempt() -> NATS:
        nonlocal nc
        nc = await nats.connect(
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            **connect_options(settings, name, inbox_prefix=inbox_prefix),
        )
        return nc

    return await retrying(attempt, on=(Exception,), what="nats.connect", retry_for=retry_for)
