"""Run a service: connect, declare the topology, register with `nats.micro`, serve, stop well.

A service is a `Service` subclass: a name, request/reply `Endpoint`s and background worker coroutines
(a pull loop, say). `run_service` wires it up and, on SIGTERM or SIGINT, stops pulling, lets the
workers finish and ack what they hold (bounded by `shutdown_grace_seconds`), and drains NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext
from nats.micro import add_service
from nats.micro.request import Request

from shared.contract.codec import encode_json
from shared.contract.errors import ImagegenError
from shared.contract.messages import ErrorReply
from shared.contract.subjects import CLIENT_HEADER
from shared.runtime import heap
from shared.runtime.bus.connect import connect
from shared.runtime.bus.limits import check_reply, payload_budget
from shared.runtime.bus.permissions import inbox_prefix
from shared.runtime.bus.publish import JS_UNAVAILABLE
from shared.runtime.bus.streams import TopologyError, ensure_topology, wait_for_consumers
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.metrics import serve_metrics
from shared.runtime.retry import retrying
from shared.runtime.settings import Settings, SettingsError
from shared.runtime.tasks import TaskSet

log = get_logger(__name__)

VERSION = "0.1.0"

Handler = Callable[[bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class Endpoint:
    """A request/reply subject. `handler` gets the payload and returns the reply body;
    raising `ImagegenError` sends a service error with its code and field."""

    name: str
    subject: str
    handler: Handler


@dataclass
class ServiceContext:
    """What a running service hands its workers."""

    nc: NATS
    js: JetStreamContext
    settings: Settings
    stop: asyncio.Event
    instance: str


class Service:
    """Base of every service, in the spirit of arq's worker: a name, endpoints, workers.

    Subclasses set `name` and `description`, open what they need in `start`, list their
    request/reply `endpoints` and background `workers`, and release things in `stop`.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    async def start(self) -> None:
        """Open connections (the ledger, pools) before endpoints are registered."""

    @classmethod
    def consumers(cls, settings: Settings) -> list[tuple[str, ConsumerConfig]]:
        """The durable consumers this service pulls from, as (stream, config), declared at start."""
        return []

    def metadata(self) -> dict[str, str]:
        """Extra facts for `$SRV.INFO` / `$SRV.PING` (e.g. which sources an ingest serves)."""
        return {}

    def endpoints(self) -> list[Endpoint]:
        return []

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return []

    async def stop(self) -> None:
        """Release what `start` opened; runs after workers have finished."""


def error_reply(exc: ImagegenError) -> tuple[str, str, bytes]:
    body = encode_json(ErrorReply(code=exc.code, error=exc.message, field=exc.field))
    return str(exc.code), str(exc), body


def _wrap(endpoint: Endpoint, tasks: TaskSet, nc: NATS) -> Callable[[Request], Awaitable[None]]:
    """Answer each request in its own task: micro awaits handlers one at a time per endpoint.
    A reply the server would not carry is refused with a 413 error: never left unanswered."""

    async def answer(req: Request) -> None:
        # Who asked, for the audit lines (the client sends its connection name / user).
        headers = req.headers or {}
        structlog.contextvars.bind_contextvars(client=headers.get(CLIENT_HEADER, "unknown"))
        try:
            reply = await endpoint.handler(req.data)
            check_reply(reply, payload_budget(nc))
        except ImagegenError as exc:
            if exc.code >= 500:
                log.error("request.failed", endpoint=endpoint.name, error=str(exc))
            else:
                log.info("request.rejected", endpoint=endpoint.name, error=str(exc))
            code, description, body = error_reply(exc)
            await req.respond_error(code, description, data=body)
            return
        except Exception as exc:
            log.exception("request.crashed", endpoint=endpoint.name)
            await req.respond_error(
                "500",
                f"internal error: {type(exc).__name__}",
                data=encode_json(ErrorReply(code=500, error=f"internal error: {exc}")),
            )
            return
        await req.respond(reply)

    async def handle(req: Request) -> None:
        await tasks.spawn(answer(req))

    return handle


def instance_name(settings: Settings, service: str) -> str:
    return settings.instance or f"{service}@{socket.gethostname()}:{os.getpid()}"


async def serve(service_type: type[Service], settings: Settings) -> None:
    """Run a service until SIGTERM/SIGINT, then shut down gracefully."""
    instance = instance_name(settings, service_type.name)
    structlog.contextvars.bind_contextvars(service=service_type.name, instance=instance)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    serve_metrics(settings.metrics_port)
    nc = await connect(settings, instance, inbox_prefix=inbox_prefix(service_type.name))
    js = nc.jetstream()
    consumers = service_type.consumers(settings)
    # A JetStream cluster still forming (started together with us) answers nothing or 503, and
    # refuses streams while servers their replicas need are down: wait, as for NATS itself,
    # logging why (a count no server set can hold says so every few seconds).
    await retrying(
        lambda: (
            ensure_topology(js, settings, consumers)
            if settings.declare_topology
            else wait_for_consumers(js, consumers)
        ),
        on=(*JS_UNAVAILABLE, TopologyError),
        what="topology",
    )
    ctx = ServiceContext(nc=nc, js=js, settings=settings, stop=stop, instance=instance)
    app = service_type(ctx)
    await app.start()
    heap.settle_after_start()

    requests_in_flight = TaskSet()
    svc = await add_service(
        nc, name=app.name, version=VERSION, description=app.description, metadata=app.metadata()
    )
    endpoints = app.endpoints()
    for endpoint in endpoints:
        await svc.add_endpoint(
            name=endpoint.name,
            subject=endpoint.subject,
            handler=_wrap(endpoint, requests_in_flight, nc),
            queue_group=app.name,
        )
    workers = [asyncio.create_task(coro) for coro in app.workers()]
    log.info("service.started", endpoints=[e.subject for e in endpoints], workers=len(workers))

    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([stop_wait, *workers], return_when=asyncio.FIRST_COMPLETED)
    for worker in workers:
        if worker.done() and not worker.cancelled() and worker.exception():
            log.error("service.worker_died", error=repr(worker.exception()))
    stop.set()
    log.info("service.stopping")
    await svc.stop()
    # Workers see `stop`, finish the batch in hand and ack it; requests in hand are answered.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.shutdown_grace_seconds
    if workers:
        _, pending = await asyncio.wait(workers, timeout=settings.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
    await requests_in_flight.join(timeout=max(deadline - loop.time(), 0.1))
    await app.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.drain(), 5.0)
    if not nc.is_closed:
        with contextlib.suppress(Exception):
            await nc.close()
    log.info("service.stopped")


def run_service(service_type: type[Service], settings: Settings | None = None) -> None:
    """Entry point of `python -m services.<name>`: logging, settings, event loop."""
    try:
        settings = settings or Settings()
    except SettingsError as exc:  # a bad IMAGEGEN_* value: say which, no traceback
        raise SystemExit(f"{service_type.name}: {exc}") from None
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(service_type, settings))
