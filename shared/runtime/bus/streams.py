"""Idempotent declaration of the JetStream topology: streams, buckets and durable consumers.

Who declares depends on the server. On a server without the permissions layout every service
calls `ensure_topology` at start-up with the durable consumers it pulls from (a renderer its
`renderer`, an ingest one per source it serves), so the first one up creates the streams and
buckets and the others find them there; a changed configuration (limits, TTLs, the replica
counts `IMAGEGEN_STREAM_REPLICAS`, `_KV_REPLICAS`, `_OBJECT_STORE_REPLICAS`) is applied to the
existing streams and buckets in place, as a stream update that keeps their messages. Under
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
    StreamInfo,
    StreamSource,
)
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from shared.contract import subjects
from shared.contract.errors import ImagegenError
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff
from shared.runtime.settings import Settings

log = get_logger(__name__)

HOUR = 3600.0


def _replayable(settings: Settings, name: str, kind: str, max_age_hours: float, max_gib: int) -> StreamConfig:
    """A stream clients replay (results, events): kept for `max_age_hours`, oldest dropped when
    it reaches `max_gib` GiB."""
    return StreamConfig(
        name=name,
        subjects=[f"{subjects.PREFIX}.{kind}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=max_age_hours * HOUR,
        max_bytes=max_gib * 1024 * 1024 * 1024,
        duplicate_window=settings.duplicate_window_seconds,
        num_replicas=settings.stream_replicas,
    )


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """The streams with explicit limits.

    Work-queue streams discard *new* messages at their limits: a publish then fails and the
    submit is refused as busy, rather than older accepted work being dropped silently. Each
    keeps `stream_replicas` copies; durable consumers inherit their stream's count.
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
            num_replicas=settings.stream_replicas,
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
            num_replicas=settings.stream_replicas,
        ),
        _replayable(settings, subjects.STREAM_RESULTS, "results", settings.results_max_age_hours, 4),
        _replayable(settings, subjects.STREAM_EVENTS, "events", settings.events_max_age_hours, 1),
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
            num_replicas=settings.stream_replicas,
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
            num_replicas=settings.stream_replicas,
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


class TopologyError(ImagegenError):
    """The server refused a stream or bucket as configured (e.g. more replicas than servers)."""


def _refused(stream: str, replicas: int, exc: APIError) -> TopologyError:
    return TopologyError(
        f"NATS refused stream {stream} with {replicas} replica(s): {exc.description or exc}. "
        "More than one replica needs a JetStream cluster with that many servers up "
        "(IMAGEGEN_STREAM_REPLICAS, IMAGEGEN_KV_REPLICAS, IMAGEGEN_OBJECT_STORE_REPLICAS)"
    )


async def _create(
    js: JetStreamContext, stream: str, replicas: int, create: Callable[[], Awaitable[object]]
) -> StreamInfo | None:
    """Create `stream` (a bucket's too): None once created, or the info of the stream another
    service created between our lookup and this call. A refusal is a TopologyError naming the
    setting; a cluster not ready yet (503) is raised as it is, for the caller to wait."""
    try:
        await create()
        return None
    except ServiceUnavailableError:
        raise
    except BadRequestError as exc:
        try:
            return await js.stream_info(stream)
        except NotFoundError:
            raise _refused(stream, replicas, exc) from exc
    except APIError as exc:
        raise _refused(stream, replicas, exc) from exc


async def _update(stream: str, replicas: int, call: Awaitable[object]) -> None:
    """Update `stream` in place: a new replica count is accepted at once and reached in the
    background, keeping every message."""
    try:
        await call
    except ServiceUnavailableError:
        raise
    except APIError as exc:
        raise _refused(stream, replicas, exc) from exc


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    name, replicas = config.name or "", config.num_replicas or 1
    try:
        await js.stream_info(name)
    except NotFoundError:
        if await _create(js, name, replicas, partial(js.add_stream, config)) is None:
            log.info("stream.created", stream=name, replicas=replicas)
            return
    await _update(name, replicas, js.update_stream(config))


def bucket_configs(settings: Settings) -> list[ObjectStoreConfig]:
    """Object Store buckets: uploaded inputs expire; rendered images live as long as results."""
    replicas = settings.object_store_replicas or settings.stream_replicas
    return [
        ObjectStoreConfig(
            bucket=subjects.BUCKET_INPUTS,
            description="CSV files uploaded by clients, named in submit requests",
            ttl=settings.inputs_ttl_hours * HOUR,
            storage=StorageType.FILE,
            replicas=replicas,
        ),
        ObjectStoreConfig(
            bucket=subjects.BUCKET_IMAGES,
            description="Rendered images when renderers share no disk",
            ttl=settings.results_max_age_hours * HOUR,
            storage=StorageType.FILE,
            replicas=replicas,
        ),
    ]


def kv_configs(settings: Settings) -> list[KeyValueConfig]:
    """Key-value buckets: cancelled jobs (kept as long as results) and jobs that may render."""
    replicas = settings.kv_replicas or settings.stream_replicas
    return [
        KeyValueConfig(
            bucket=subjects.BUCKET_CANCELLED,
            description="Cancelled jobs: ingest stops publishing and renderers skip their tasks",
            ttl=settings.results_max_age_hours * HOUR,
            storage=StorageType.FILE,
            history=1,
            replicas=replicas,
        ),
        # No TTL: a key lives exactly as long as its job may be rendered, however long that is.
        KeyValueConfig(
            bucket=subjects.BUCKET_ACTIVE,
            description="Jobs that may be rendered, with their current attempt: renderers skip other tasks",
            storage=StorageType.FILE,
            history=1,
            replicas=replicas,
        ),
    ]


async def _ensure_bucket(
    js: JetStreamContext,
    stream: str,
    create: Callable[[], Awaitable[object]],
    *,
    replicas: int,
    ttl: float | None,
) -> None:
    """Create an Object Store or KV bucket unless it exists (another service may race us), else
    bring its stream's replica count and age limit to the configured ones, in place."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        found = await _create(js, stream, replicas, create)
        if found is None:
            log.info("bucket.created", stream=stream, replicas=replicas)
            return
        info = found
    config = info.config
    max_age = ttl or 0.0  # the server reports "no limit" as 0
    if config.num_replicas == replicas and (config.max_age or 0.0) == max_age:
        return
    config.num_replicas, config.max_age = replicas, max_age
    await _update(stream, replicas, js.update_stream(config))
    log.info("bucket.updated", stream=stream, replicas=replicas, max_age=max_age)


async def ensure_topology(
    js: JetStreamContext, settings: Settings, consumers: Sequence[tuple[str, ConsumerConfig]] = ()
) -> None:
    """Create or update every stream and bucket, and the given durable consumers as (stream,
    config) (safe to run concurrently)."""
    for config in stream_configs(settings):
        await _ensure_stream(js, config)
    for bucket in bucket_configs(settings):
        name = bucket.bucket or ""  # every config names its bucket
        await _ensure_bucket(
            js,
            subjects.object_stream(name),
            partial(js.create_object_store, name, config=bucket),
            replicas=bucket.replicas,
            ttl=bucket.ttl,
        )
    for kv in kv_configs(settings):
        await _ensure_bucket(
            js,
            subjects.kv_stream(kv.bucket),
            partial(js.create_key_value, config=kv),
            replicas=kv.replicas,
            ttl=kv.ttl,
        )
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
