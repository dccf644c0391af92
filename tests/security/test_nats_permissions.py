"""Every forgery of issue 12 is refused by nats-server itself, and normal use still works.

Run on servers of their own with the permissions layout (`shared.runtime.bus.permissions`),
whatever `NATS_URL` says. A refusal is shown twice: the server tells the connection (a
permissions violation; a JetStream API call gets no answer at all) and the effect is absent when
read back as admin.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError

from shared.contract import subjects
from shared.contract.states import EventKind
from shared.runtime.bus.permissions import (
    ADMIN,
    CLIENT,
    GATEWAY,
    IDENTITIES,
    INGEST,
    NOTIFIER,
    RENDERER,
    inbox_prefix,
)
from shared.sources.csv import SubmitCsv
from shared.workflow.active import ActiveJobs
from tests.conftest import REPO
from tests.images import decode_rgba, ink_pixels
from tests.security.conftest import Probe, Secured, Server
from tests.shared.workflow.conftest import following
from tests.waiting import eventually

JOB = "victim-job-1"
SERVICE_IDENTITIES = {INGEST, RENDERER, NOTIFIER, GATEWAY}


async def stored(admin: Probe, stream: str, subject: str) -> int:
    """How many messages `stream` holds on `subject`, read as admin."""
    info = await admin.js.stream_info(stream, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


# --- nobody without credentials ----------------------------------------------------------------


async def test_an_anonymous_connection_or_a_wrong_password_is_refused(bare: Server) -> None:
    for options in ({}, {"user": CLIENT, "password": "guess"}, {"user": ADMIN, "password": ""}):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(bare.nats.url, allow_reconnect=False, connect_timeout=2, **options)


# --- a client ------------------------------------------------------------------------------------


async def test_a_client_cannot_publish_a_result_a_task_a_request_or_an_event(bare: Server) -> None:
    client, admin = await bare.connect(CLIENT), await bare.connect(ADMIN)
    forged = {
        subjects.results_subject(JOB): subjects.STREAM_RESULTS,
        subjects.tasks_subject(JOB): subjects.STREAM_TASKS,
        subjects.requests_subject("csv"): subjects.STREAM_REQUESTS,
        **{subjects.events_subject(JOB, kind): subjects.STREAM_EVENTS for kind in EventKind},
    }

    async def forge(subject: str) -> None:
        await client.publish_refused(subject, b'{"job_id": "victim-job-1"}')
        # As a JetStream publish too: no acknowledgement, because nothing was stored.
        with pytest.raises(nats.errors.TimeoutError):
            await client.js.publish(subject, b"forged")

    try:
        await asyncio.gather(*(forge(subject) for subject in forged))
        for subject, stream in forged.items():
            assert await stored(admin, stream, subject) == 0, subject
    finally:
        await client.close()
        await admin.close()


async def test_a_client_cannot_write_the_cancel_or_active_buckets(bare: Server) -> None:
    client, admin = await bare.connect(CLIENT), await bare.connect(ADMIN)
    try:
        buckets = (subjects.BUCKET_CANCELLED, subjects.BUCKET_ACTIVE)
        await asyncio.gather(
            *(client.publish_refused(f"$KV.{bucket}.{JOB}", b"1") for bucket in buckets),
            *(client.request_refused(f"$JS.API.STREAM.INFO.KV_{bucket}") for bucket in buckets),  # nor look
        )
        for bucket in buckets:
            kv = await admin.js.key_value(bucket)
            with pytest.raises(KeyNotFoundError):
                await kv.get(JOB)
    finally:
        await client.close()
        await admin.close()


async def test_a_client_cannot_delete_update_or_purge_streams_consumers_or_buckets(bare: Server) -> None:
    client, admin = await bare.connect(CLIENT), await bare.connect(ADMIN)
    streams = [
        subjects.STREAM_REQUESTS,
        subjects.STREAM_TASKS,
        subjects.STREAM_RESULTS,
        subjects.STREAM_RESULT_QUEUE,
        subjects.STREAM_EVENTS,
        f"KV_{subjects.BUCKET_CANCELLED}",
        f"KV_{subjects.BUCKET_ACTIVE}",
        f"OBJ_{subjects.BUCKET_INPUTS}",
        f"OBJ_{subjects.BUCKET_IMAGES}",
    ]
    durables = [
        (subjects.STREAM_TASKS, subjects.CONSUMER_RENDERER),
        (subjects.STREAM_RESULT_QUEUE, subjects.CONSUMER_NOTIFIER),
        (subjects.STREAM_REQUESTS, "ingest-csv"),
    ]
    before = {s: (await admin.js.stream_info(s)).config for s in streams}
    consumers = {d: (await admin.js.consumer_info(*d)).config for d in durables}
    # The one create a client has on a stream with a durable would rewrite that durable
    # (nats-server honours a `name` in an ephemeral create): the notifier's durable is on the
    # result queue, where a client may create nothing.
    hostile = {"stream_name": subjects.STREAM_RESULT_QUEUE, "config": {"name": subjects.CONSUMER_NOTIFIER,
               "filter_subject": "imagegen.results.nothing", "ack_policy": "explicit"}}  # fmt: skip
    calls = [
        *((f"$JS.API.STREAM.{action}.{stream}", b"{}") for stream in streams
          for action in ("DELETE", "UPDATE", "PURGE", "CREATE")),
        *((f"$JS.API.CONSUMER.{action}.{stream}.{durable}", b"{}") for stream, durable in durables
          for action in ("DELETE", "DURABLE.CREATE", "CREATE", "MSG.NEXT")),
        (f"$JS.API.CONSUMER.CREATE.{subjects.STREAM_RESULT_QUEUE}", json.dumps(hostile).encode()),
    ]  # fmt: skip
    try:
        await asyncio.gather(*(client.request_refused(subject, payload) for subject, payload in calls))
        for stream in streams:
            assert (await admin.js.stream_info(stream)).config == before[stream], stream
        for durable in durables:
            assert (await admin.js.consumer_info(*durable)).config == consumers[durable], durable
    finally:
        await client.close()
        await admin.close()


async def test_a_client_can_upload_but_read_no_upload(bare: Server) -> None:
    client, admin = await bare.connect(CLIENT), await bare.connect(ADMIN)
    from shared.storage.uploads import put_upload

    try:
        secret = b"name\nsomeone else's rows\n"
        await put_upload(client.js, "their-upload.csv", secret)  # uploading is allowed
        store = await admin.js.object_store(subjects.BUCKET_INPUTS)
        assert (await store.get("their-upload.csv")).data == secret
        stream = f"OBJ_{subjects.BUCKET_INPUTS}"
        await asyncio.gather(
            client.request_refused(f"$JS.API.STREAM.INFO.{stream}"),
            client.request_refused(f"$JS.API.STREAM.MSG.GET.{stream}", b'{"seq": 1}'),
            client.request_refused(f"$JS.API.DIRECT.GET.{stream}", b'{"seq": 1}'),
            client.request_refused(f"$JS.API.CONSUMER.CREATE.{stream}", b"{}"),
            client.request_refused(f"$JS.API.STREAM.PURGE.{stream}", b"{}"),
        )
    finally:
        await client.close()
        await admin.close()


async def test_ingest_reads_an_upload_chunk_by_chunk_and_creates_no_consumer_on_it(bare: Server) -> None:
    client, ingest = await bare.connect(CLIENT), await bare.connect(INGEST)
    from shared.storage.chunks import object_chunks
    from shared.storage.uploads import put_upload

    try:
        data = bytes(range(256)) * 1200  # three chunks
        info = await put_upload(client.js, "an-upload.csv", data)
        chunks = [chunk async for chunk in object_chunks(ingest.js, subjects.BUCKET_INPUTS, info)]
        assert b"".join(chunks) == data and len(chunks) == 3
        stream = f"OBJ_{subjects.BUCKET_INPUTS}"
        await ingest.request_refused(f"$JS.API.CONSUMER.CREATE.{stream}", b"{}")
    finally:
        await client.close()
        await ingest.close()


async def test_a_renderer_follows_the_active_jobs_bucket_but_cannot_write_it(bare: Server) -> None:
    """The watch that spares a renderer a key read per task (`ActiveJobs.follow`) is allowed;
    the bucket stays read-only to it."""
    notifier, renderer = await bare.connect(NOTIFIER), await bare.connect(RENDERER)
    try:
        await ActiveJobs(notifier.js).start("watched-job", 1)
        async with following(ActiveJobs(renderer.js, trust_seconds=600), renderer.nc) as active:
            assert await active.may_render("watched-job", 1)
            await ActiveJobs(notifier.js).end("watched-job")

            async def skipped() -> bool:
                return not await active.may_render("watched-job", 1)

            await eventually(skipped, "the watch showing the job's end", timeout=10)
        assert not renderer.errors, renderer.errors
        await renderer.publish_refused(f"$KV.{subjects.BUCKET_ACTIVE}.watched-job", b"1")
    finally:
        await notifier.close()
        await renderer.close()


async def test_a_client_subscribes_to_its_inbox_only(bare: Server) -> None:
    client = await bare.connect(CLIENT)
    try:
        for subject in (
            ">",
            "imagegen.>",
            subjects.submit_subject("csv"),  # answering for a service
            subjects.JOBS_CANCEL,
            f"{inbox_prefix(INGEST)}.>",  # a service's replies and deliveries (an upload ingest reads)
            f"{inbox_prefix(NOTIFIER)}.>",
            "$KV.>",
            "$SRV.PING",
        ):
            await client.nc.subscribe(subject)
            await client.nc.flush()
            await client.told(subject)
        await client.nc.subscribe(f"{inbox_prefix(CLIENT)}.mine")
        # The server answers in order: once it has refused a later subscription, a refusal of
        # ours would have arrived before it.
        await client.nc.subscribe("imagegen.barrier")
        await client.nc.flush()
        await client.told("imagegen.barrier")
        assert not any(f"{inbox_prefix(CLIENT)}.mine".lower() in e for e in client.errors)
    finally:
        await client.close()


async def test_a_client_consumer_delivers_nowhere_but_where_something_listens(bare: Server) -> None:
    """A client may create ephemeral consumers on the results and events streams and give them any
    deliver subject. The server delivers only where something subscribes, and nothing in imagegen
    subscribes to a stream's subjects, so pointing one at the task queue stores nothing there."""
    client, admin = await bare.connect(CLIENT), await bare.connect(ADMIN)
    try:
        await admin.js.publish(
            subjects.events_subject(JOB, EventKind.ACCEPTED), b'{"job_id": "victim-job-1"}'
        )
        target = subjects.tasks_subject(JOB)
        info = await client.js.add_consumer(
            subjects.STREAM_EVENTS,
            ConsumerConfig(deliver_subject=target, deliver_policy=DeliverPolicy.ALL, inactive_threshold=5),
        )
        assert info.name
        await asyncio.sleep(1.0)
        assert await stored(admin, subjects.STREAM_TASKS, target) == 0
    finally:
        await client.close()
        await admin.close()


# --- each service: only its own part -------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "subject"),
    [
        (RENDERER, subjects.tasks_subject(JOB)),
        (RENDERER, subjects.events_subject(JOB, EventKind.COMPLETED)),
        (RENDERER, subjects.requests_subject("csv")),
        (RENDERER, f"$KV.{subjects.BUCKET_CANCELLED}.{JOB}"),
        (RENDERER, f"$KV.{subjects.BUCKET_ACTIVE}.{JOB}"),
        (INGEST, subjects.results_subject(JOB)),
        (INGEST, subjects.events_subject(JOB, EventKind.PROGRESS)),
        (INGEST, subjects.events_subject(JOB, EventKind.CANCELLED)),
        (INGEST, f"$KV.{subjects.BUCKET_CANCELLED}.{JOB}"),
        # It deletes only what a MAX_DELIVERIES advisory names, in the work queues.
        (NOTIFIER, f"$JS.API.STREAM.MSG.DELETE.{subjects.STREAM_RESULTS}"),
        (NOTIFIER, f"{subjects.PREFIX}.submit.csv"),  # it resumes jobs (requests), never submits
        (NOTIFIER, subjects.events_subject(JOB, EventKind.ACCEPTED)),
        (GATEWAY, subjects.results_subject(JOB)),
        (GATEWAY, subjects.tasks_subject(JOB)),
        (GATEWAY, f"$KV.{subjects.BUCKET_CANCELLED}.{JOB}"),
    ],
)
async def test_a_service_publishes_only_its_own_messages(bare: Server, identity: str, subject: str) -> None:
    probe = await bare.connect(identity)
    try:
        await probe.publish_refused(subject)
    finally:
        await probe.close()


@pytest.mark.parametrize("identity", [CLIENT, GATEWAY, INGEST, RENDERER, NOTIFIER])
async def test_only_admin_declares_the_topology(bare: Server, identity: str) -> None:
    probe = await bare.connect(identity)
    try:
        durable = f"{subjects.STREAM_TASKS}.{subjects.CONSUMER_RENDERER}"
        await asyncio.gather(
            probe.request_refused(f"$JS.API.STREAM.DELETE.{subjects.STREAM_TASKS}"),
            probe.request_refused(f"$JS.API.STREAM.CREATE.{subjects.STREAM_TASKS}", b"{}"),
            probe.request_refused(f"$JS.API.CONSUMER.DURABLE.CREATE.{durable}", b"{}"),
            probe.request_refused(f"$JS.API.CONSUMER.DELETE.{durable}"),
        )
    finally:
        await probe.close()


def test_every_service_has_an_identity_of_its_own() -> None:
    from shared.runtime.services import SERVICES

    assert set(SERVICES) == SERVICE_IDENTITIES
    assert {inbox_prefix(name) for name in SERVICE_IDENTITIES} | {inbox_prefix(CLIENT)} == {
        "_INBOX",
        *(f"_INBOX_{name}" for name in SERVICE_IDENTITIES),
    }
    # Nobody but admin holds a wildcard over everything.
    assert [name for name, identity in IDENTITIES.items() if ">" in identity.publish] == [ADMIN]


# --- normal use, end to end, with no refusal of a service ------------------------------------------


@pytest.mark.slow
async def test_normal_use_works_and_no_service_is_ever_refused(secured: Secured) -> None:
    stack, server = secured.stack, secured.server
    async with await stack.client() as client:
        # submit inline and by upload, wait, replay results, fetch images from the bucket
        inline = await client.submit(SubmitCsv(csv="name\n许可 allowed\n", column="name"))
        with tempfile.TemporaryDirectory() as tmp:
            upload = Path(tmp) / "upload.csv"
            upload.write_text("name\n上传 upload\nsecond\n", "utf-8")
            uploaded = await client.submit_file(upload, SubmitCsv(column="name"))
            for accepted, rows in ((inline, 1), (uploaded, 2)):
                final = await client.wait(accepted.job_id, timeout=60)
                assert (final.kind, final.done, final.failed) == ("completed", rows, 0)
                results = client.results(accepted.job_id)
                assert sum(len(r.items) for r in [await anext(results)]) >= 1
                await results.aclose()
                out = Path(tmp) / accepted.job_id
                assert await client.fetch_images(accepted.job_id, out) == rows
                assert all(ink_pixels(decode_rgba(p.read_bytes())) > 20 for p in out.glob("*.png"))
        # queries, the catalogue, preview, validate; cancel and retry
        assert {j.job_id for j in await client.list_jobs(limit=10)} >= {inline.job_id, uploaded.job_id}
        assert await client.fonts()
        assert ink_pixels(decode_rgba(await client.preview("预览"))) > 20
        failing = await client.submit(SubmitCsv(csv='name\nok\n""\n', column="name"))
        assert (await client.wait(failing.job_id, timeout=60)).failed == 1
        retried = await client.retry_job(failing.job_id)
        assert (await client.wait(failing.job_id, attempt=retried.attempt, timeout=60)).kind == "completed"
        long = await client.submit(
            SubmitCsv(csv="name\n" + "".join(f"行 {i}\n" for i in range(3000)), column="name", batch_size=8)
        )
        assert (await client.cancel_job(long.job_id)).status == "cancelled"
        assert (await client.wait(long.job_id, timeout=60)).kind == "cancelled"
    # A refusal of our own, logged after everything above: once the server's log has it, it has
    # whatever the services' normal use would have caused.
    probe = await server.connect(CLIENT)
    try:
        await probe.publish_refused("imagegen.barrier")
    finally:
        await probe.close()

    async def logged_barrier() -> bool:
        return any(v.subject == "imagegen.barrier" for v in server.violations())

    await eventually(logged_barrier, "the server logging our own refusal")
    ours = SERVICE_IDENTITIES | {CLIENT}
    refused = [v for v in server.violations() if v.user in ours and v.subject != "imagegen.barrier"]
    assert not refused, f"the layout refused normal use: {refused}"


@pytest.mark.slow
async def test_a_forged_cancellation_does_not_stop_a_running_job(secured: Secured) -> None:
    stack, server = secured.stack, secured.server
    async with await stack.client() as client:
        accepted = await client.submit(
            SubmitCsv(csv="name\n" + "".join(f"job {i}\n" for i in range(400)), column="name", batch_size=8)
        )
        forger = await server.connect(CLIENT)
        try:
            await forger.publish_refused(f"$KV.{subjects.BUCKET_CANCELLED}.{accepted.job_id}", b"cancelled")
            await forger.publish_refused(f"$KV.{subjects.BUCKET_ACTIVE}.{accepted.job_id}", b"99")
        finally:
            await forger.close()
        final = await client.wait(accepted.job_id, timeout=120)
        assert (final.kind, final.done, final.failed) == ("completed", 400, 0)


@pytest.mark.slow
def test_nats_setup_as_anyone_but_admin_fails_with_the_reason(bare: Server) -> None:
    env = {
        **os.environ,
        "IMAGEGEN_NATS_URL": bare.nats.url,
        "IMAGEGEN_NATS_USER": CLIENT,
        "IMAGEGEN_NATS_PASSWORD": bare.credentials.passwords[CLIENT],
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "nats", "setup", "--wait", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "client have the admin identity's rights" in done.stderr


@pytest.mark.slow
async def test_no_stream_a_client_may_create_consumers_on_holds_a_durable(bare: Server) -> None:
    """Why result-notifier pulls from a queue of its own: the ephemeral create a client needs for
    replaying a stream also updates any consumer named in the request body."""
    admin = await bare.connect(ADMIN)
    try:
        await admin.js.add_stream(name="PROBE_DURABLE", subjects=["probe.>"])
        await admin.js.add_consumer(
            "PROBE_DURABLE", ConsumerConfig(durable_name="held", filter_subject="probe.a")
        )
        # Any update the server accepts for that consumer: here, its filter.
        hostile = {"stream_name": "PROBE_DURABLE", "config": {"name": "held", "filter_subject": "probe.b",
                   "ack_policy": "explicit", "deliver_policy": "all"}}  # fmt: skip
        reply = await admin.nc.request(
            "$JS.API.CONSUMER.CREATE.PROBE_DURABLE", json.dumps(hostile).encode(), timeout=2
        )
        assert "error" not in json.loads(reply.data), reply.data
        assert (await admin.js.consumer_info("PROBE_DURABLE", "held")).config.filter_subject == "probe.b"
        await admin.js.delete_stream("PROBE_DURABLE")

        prefix = "$JS.API.CONSUMER.CREATE."
        for identity in (CLIENT, GATEWAY):
            open_streams = [s[len(prefix) :] for s in IDENTITIES[identity].publish if s.startswith(prefix)]
            assert open_streams, identity
            for stream in open_streams:
                assert "." not in stream and "*" not in stream and ">" not in stream, stream
                durables = [c.name for c in await admin.js.consumers_info(stream) if c.config.durable_name]
                assert durables == [], (stream, durables)
    finally:
        await admin.close()
