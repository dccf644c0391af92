"""`python -m services.gateway` runs the gateway: uvicorn serving the app, registered on NATS.

Once listening, it registers a `gateway` service with the NATS services API whose metadata
carries the console's URL, so `$SRV.PING`/`$SRV.INFO` find it like every other service and a
launcher can print where the console is (port 0 picks a free port). SIGTERM stops accepting,
gives open requests `shutdown_grace_seconds`, then drains the NATS connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
from pathlib import Path
from types import FrameType

import uvicorn
from nats.micro import add_service
from pydantic import SecretStr

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings, on_loopback
from shared.runtime.bus.service import VERSION, instance_name
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.metrics import serve_metrics
from shared.runtime.settings import Settings, SettingsError

log = get_logger(__name__)


class QuietServer(uvicorn.Server):
    """uvicorn that wakes once a second at rest, not ten times.

    uvicorn's main loop sleeps 0.1 s between checks for a stop request and refreshes its Date
    header every tenth; each wake-up of an idle process cost ~1 ms of CPU on the 2-core VM this
    was measured on (a bare uvicorn at rest: ~12 ms of CPU per second). Here the loop waits a
    second between ticks, and a signal wakes it at once, so stopping is as prompt as before.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._stop_requested is not None:
            self._loop.call_soon_threadsafe(self._stop_requested.set)

    async def main_loop(self) -> None:
        self._loop, self._stop_requested = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        # on_tick refreshes the Date header when counter % 10 == 0: every tick, once a second.
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), 1.0)


def listening_url(server: uvicorn.Server, gateway: GatewaySettings) -> str:
    if gateway.public_url:
        return gateway.public_url.rstrip("/") + "/"
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    if host in {"0.0.0.0", "::"}:
        host = socket.gethostname()  # a wildcard address is not somewhere a browser can go
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _kept_key(path: Path | None) -> str:
    """The key an earlier start or a deployment's init step left in `path` ("" when none)."""
    return path.read_text(encoding="utf-8").strip() if path is not None and path.is_file() else ""


def ensure_key(gateway: GatewaySettings) -> bool:
    """Listening beyond loopback, the API needs a key: the one in `api_key_file` when that file
    exists (a deployment's init step made it, or an earlier start), else a new one, written there
    with 0600 permissions when the setting is given. Returns True when a key was made."""
    if gateway.api_key is not None or on_loopback(gateway.host):
        return False
    if kept := _kept_key(gateway.api_key_file):
        gateway.api_key = SecretStr(kept)
        return False
    key = secrets.token_urlsafe(24)
    gateway.api_key = SecretStr(key)
    if gateway.api_key_file is not None:
        fd = os.open(gateway.api_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    return True


async def main() -> None:
    settings = Settings()
    gateway = GatewaySettings()
    configure_logging(settings.log_format, settings.log_level, service="gateway")
    generated = ensure_key(gateway)
    serve_metrics(settings.metrics_port)  # its own port, like every service's (not the API's)
    app = create_app(settings, gateway)
    config = uvicorn.Config(
        app,
        host=gateway.host,
        port=gateway.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(gateway.shutdown_grace_seconds) or None,
        proxy_headers=True,
    )
    server = QuietServer(config)
    # uvicorn handles SIGTERM/SIGINT while serving (graceful stop), then restores the previous
    # handlers and raises the signal again. With the defaults that kills the process before it
    # unregisters and drains NATS; these no-op handlers let the re-raised signal pass so the
    # shutdown below runs and the process exits 0 like every other service.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    serving = asyncio.create_task(server.serve())
    # uvicorn offers no start-up event to await; `started` flips once its sockets listen.
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if serving.done():
        await serving  # start-up failed (port taken, NATS settings): let it raise
        return
    url = listening_url(server, gateway)
    svc = await add_service(
        app.state.client.nc,
        name="gateway",
        version=VERSION,
        description="HTTP API and web console of imagegen",
        metadata={"url": url, "instance": instance_name(settings, "gateway")},
    )
    log.info("gateway.listening", url=url, api_key=gateway.api_key is not None)
    if generated and gateway.api_key is not None:
        # Like a notebook server: the one place the generated key is shown is this start-up line.
        console = f"{url}?api_key={gateway.api_key.get_secret_value()}"
        log.warning("gateway.api_key_generated", console=console, key_file=str(gateway.api_key_file or ""))
    try:
        await serving
    finally:
        with contextlib.suppress(Exception):
            await svc.stop()
        log.info("gateway.stopped")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except SettingsError as exc:  # a bad IMAGEGEN_* value: say which, no traceback
        raise SystemExit(f"gateway: {exc}") from None
