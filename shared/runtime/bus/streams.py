"""Idempotent declaration of the JetStream topology: streams, buckets and durable consumers.

Who declares depends on the server. On a server without the permissions layout every service
calls `ensure_topology` at start-up with the durable consumers it pulls from (a renderer its
`renderer`, an ingest one per source it serves), so the first one up creates the streams and
buckets and the others find them there; a changed configuration is applied as an update. Under
the layout (`shared.runtime.bus.permissions`) only the admin identity may declare: `imagegen nats
setup` does it once (`IMAGEGEN_DECLARE_TOPOLOGY=false`), and services `wait_for_consumers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from shared.contract import subjects
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff
from shared.runtime.settings import Settings

log = get_logger(__name__)

HOUR = 3600.0


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """The streams with explicit limits.

    Work-queue streams discard *new* messages at their limits: a publish then fails and the
    submit is refused as busy, rather than older accepted work being dropped silently.
    """
    dup = settings.duplicate_window_seconds
    return [
        StreamConfig(
            name=subjects.STREAM_REQUESTS,
            subjects=[f"{subjects.PREFIX}.requests.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_msgs=100_000,
            max_bytes=1024 * 1024 * 1024,
            max_age=7 * 24 * HOUR,
            duplicate_window=dup,
        ),
        StreamConfig(
            name=subjects.STREAM_TASKS,
            subjects=[f"{subjects.PREFIX}.tasks.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_bytes=settings.tasks_max_bytes,
            max_age=7 * 24 * HOUR,
            duplicate_window=dup,
        ),
        StreamConfig(
            name=subjects.STREAM_RESULTS,
            subjects=[f"{subjects.PREFIX}.results.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=settings.results_max_age_hours * HOUR,
            max_bytes=4 * 1024 * 1024 * 1024,
            duplicate_window=dup,
        ),
        StreamConfig(
            name=subjects.STREAM_EVENTS,
            subjects=[f"{subjects.PREFIX}.events.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=settings.events_max_age_hours * HOUR,
            max_bytes=1024 * 1024 * 1024,
            duplicate_window=dup,
        ),
        StreamConfig(
            name=subjects.STREAM_RESULT_QUEUE,
            description="Results waiting for result-notifier, sourced from IMAGEGEN_RESULTS",
            sources=[StreamSource(name=subjects.STREAM_RESULTS)],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            # Full: sourcing pauses and resumes once the notifier catches up; nothing is dropped.
            discard=DiscardPolicy.NEW,
            max_age=settings.results_max_age_hours * HOUR,
            max_bytes=4 * 1024 * 1024 * 1024,
            duplicate_window=dup,
        ),
        StreamConfig(
            name=subjects.STREAM_ADVISORIES,
            description="MAX_DELIVERIES advisories of the work queues, for result-notifier",
            subjects=[
                subjects.max_deliveries_subject(subjects.STREAM_REQUESTS),
                subjects.max_deliveries_subject(subjects.STREAM_TASKS),
            ],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=settings.results_max_age_hours * HOUR,
            max_bytes=64 * 1024 * 1024,
            duplicate_window=dup,
        ),
    ]


def pull_consumer(
    settings: Settings,
    durable: str,
    filter_subject: str,
    *,
    max_ack_pending: int,
    max_deliver: int | None = None,
) -> ConsumerConfig:
    """A durable pull consumer with explicit acks; replicas of a service bind the same one."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=filter_subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=settings.max_deliver if max_deliver is None else max_deliver,
        max_ack_pending=max_ack_pending,
    )


def ingest_consumer(settings: Settings, durable: str, requests_subject: str) -> tuple[str, ConsumerConfig]:
    return subjects.STREAM_REQUESTS, pull_consumer(settings, durable, requests_subject, max_ack_pending=64)


def renderer_consumer(settings: Settings) -> tuple[str, ConsumerConfig]:
    return subjects.STREAM_TASKS, pull_consumer(
        settings,
        subjects.CONSUMER_RENDERER,
        f"{subjects.PREFIX}.tasks.>",
        max_ack_pending=settings.renderer_max_ack_pending,
    )


def notifier_consumer(settings: Settings) -> tuple[str, ConsumerConfig]:
    # Never give up on a result: a Postgres outage must stall, not drop, it.
    return subjects.STREAM_RESULT_QUEUE, pull_consumer(
        settings,
        subjects.CONSUMER_NOTIFIER,
        f"{subjects.PREFIX}.results.>",
        max_ack_pending=4096,
        max_deliver=-1,
    )


def advisories_consumer(settings: Settings) -> tuple[str, ConsumerConfig]:
    # Like results: a Postgres outage must stall, not drop, an advisory.
    return subjects.STREAM_ADVISORIES, pull_consumer(
        settings,
        subjects.CONSUMER_ADVISORIES,
        f"{subjects.MAX_DELIVERIES_ADVISORY}.>",
        max_ack_pending=64,
        max_deliver=-1,
    )


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("stream.created", stream=config.name)
            return
        except BadRequestError:
            pass  # another service created it between our two calls; update below
    await js.update_stream(config)


def bucket_configs(settings: Settings) -> list[ObjectStoreConfig]:
    """Object Store buckets: uploaded inputs expire; rendered images live as long as results."""
    return [
        ObjectStoreConfig(
            bucket=subjects.BUCKET_INPUTS,
            description="CSV files uploaded by clients, named in submit requests",
            ttl=settings.inputs_ttl_hours * HOUR,
            storage=StorageType.FILE,
        ),
        ObjectStoreConfig(
            bucket=subjects.BUCKET_IMAGES,
            description="Rendered images when renderers share no disk",
            ttl=settings.results_max_age_hours * HOUR,
            storage=StorageType.FILE,
        ),
    ]


async def _ensure_bucket(
    name: str, lookup: Callable[[str], Awaitable[object]], create: Callable[[], Awaitable[object]]
) -> None:
    """Create an Object Store or KV bucket unless it exists (another service may race us)."""
    try:
        await lookup(name)
    except NotFoundError:
        try:
            await create()
            log.info("bucket.created", bucket=name)
        except BadRequestError:
            pass  # created concurrently by another service


async def ensure_topology(
    js: JetStreamContext, settings: Settings, consumers: Sequence[tuple[str, ConsumerConfig]] = ()
) -> None:
    """Create or update every stream and bucket, and the given durable consumers as (stream,
    config) (safe to run concurrently)."""
    for config in stream_configs(settings):
        await _ensure_stream(js, config)
    for bucket in bucket_configs(settings):
        name = bucket.bucket or ""  # every config names its bucket
        await _ensure_bucket(name, js.object_store, partial(js.create_object_store, name, config=bucket))
    cancelled = KeyValueConfig(
        bucket=subjects.BUCKET_CANCELLED,
        description="Cancelled jobs: ingest stops publishing and renderers skip their tasks",
        ttl=settings.results_max_age_hours * HOUR,
        storage=StorageType.FILE,
        history=1,
    )
    await _ensure_bucket(
        subjects.BUCKET_CANCELLED, js.key_value, partial(js.create_key_value, config=cancelled)
    )
    # No TTL: a key lives exactly as long as its job may be rendered, however long that is.
    active = KeyValueConfig(
        bucket=subjects.BUCKET_ACTIVE,
        description="Jobs that may be rendered, with their current attempt: renderers skip other tasks",
        storage=StorageType.FILE,
        history=1,
    )
    await _ensure_bucket(subjects.BUCKET_ACTIVE, js.key_value, partial(js.create_key_value, config=active))
    for stream, consumer in consumers:
        try:
            await js.add_consumer(stream, consumer)
        except BadRequestError as exc:
            # An existing durable with a config the server will not update in place
            # (e.g. a changed filter) keeps running as it is; say so loudly.
            log.warning(
                "consumer.update_refused",
                stream=stream,
                consumer=consumer.durable_name,
                error=str(exc),
            )


async def wait_for_consumers(js: JetStreamContext, consumers: Sequence[tuple[str, ConsumerConfig]]) -> None:
    """Wait until every given durable consumer exists (declared by `imagegen nats setup`)."""
    backoff = Backoff(most=5.0)
    for stream, consumer in consumers:
        durable = consumer.durable_name or ""
        while True:
            try:
                await js.consumer_info(stream, durable)
                break
            except NotFoundError:
                log.warning(
                    "topology.waiting",
                    stream=stream,
                    consumer=durable,
                    hint="declare it with `imagegen nats setup` as the admin identity",
                )
                await backoff.sleep()
