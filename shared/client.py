"""The typed async Python client of imagegen; the CLI is built on it.

    async with await Client.connect("nats://127.0.0.1:4222") as client:
        accepted = await client.submit(SubmitCsv(csv=text, column="name"))
        final = await client.wait(accepted.job_id, on_event=print)

Every registered source works the same way (`shared.sources`): `submit` sends any request to its
source's subject; `submit_file` uploads a local file first, for the sources that read files.

Errors come back as the same exception classes the services raise (`BadRequest` with its
`field`, `NotFound`, `Busy`...), decoded from the NATS service error reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, DeliverPolicy

from shared.contract import subjects
from shared.contract.codec import decode_lenient, encode_json
from shared.contract.errors import BadRequest, Busy, Conflict, ImagegenError, NotFound, TooLarge
from shared.contract.messages import (
    Accepted,
    BatchResult,
    ErrorReply,
    FontInfo,
    JobEvent,
    JobInfo,
    JobRef,
    JobsGet,
    JobsList,
    JobsListReply,
    PreviewRequest,
)
from shared.contract.states import TERMINAL_EVENTS, JobStatus
from shared.contract.style import Style
from shared.contract.submit import FileSubmit, SubmitBase, upload_name
from shared.runtime.bus.connect import auth_options
from shared.runtime.settings import Settings
from shared.sources import SOURCES, source_of
from shared.storage import MANIFEST_NAME, DirectoryStore, ImageStore, ObjectImageStore
from shared.storage.base import OBJECT_SCHEME, check_image_name
from shared.storage.uploads import put_upload

T = TypeVar("T")

_ERRORS: dict[int, type[ImagegenError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    503: Busy,
}


def _safe_image_name(name: str) -> bool:
    try:
        check_image_name(name)
    except BadRequest:
        return False
    return True


class ServiceUnavailable(ImagegenError):
    """No service answered the request (none running, or NATS unreachable)."""

    code = 503


class Queue(msgspec.Struct, frozen=True):
    """A durable consumer as a work queue: messages not yet delivered, and delivered but not yet
    acknowledged (being worked on, or waiting for a redelivery)."""

    consumer: str
    stream: str
    waiting: int
    in_flight: int


class Client:
    """A connection to an imagegen deployment, over NATS only."""

    def __init__(self, nc: NATS, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.timeout = timeout
        options = getattr(nc, "options", {}) or {}
        # Many clients share one NATS user: the connection name tells them apart in audit lines.
        name = str(options.get("name") or "imagegen-client")
        self.identity = f"{options['user']}/{name}" if options.get("user") else name

    @classmethod
    async def connect(cls, servers: str | list[str] = "nats://127.0.0.1:4222", **options: Any) -> Client:
        options.setdefault("name", "imagegen-client")
        return cls(await nats.connect(servers, **options))

    @classmethod
    async def from_settings(cls, settings: Settings | None = None, **options: Any) -> Client:
        """Connect as the settings say (by default the environment): `IMAGEGEN_NATS_URL` and
        the identity in `IMAGEGEN_NATS_USER`/`_PASSWORD` (or `_TOKEN`, `_CREDS_FILE`, `_TLS_CA`)."""
        settings = settings or Settings()
        return await cls.connect(settings.nats_servers, **auth_options(settings), **options)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object | TracebackType) -> None:
        await self.close()

    async def close(self) -> None:
        if not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), 5.0)
            except Exception:
                await self.nc.close()

    # --- request/reply ----------------------------------------------------------------------

    async def request(self, subject: str, payload: bytes, *, timeout: float | None = None) -> bytes:
        """Send a request; return the reply body or raise the service's error."""
        try:
            msg = await self.nc.request(
                subject,
                payload,
                timeout=timeout or self.timeout,
                headers={subjects.CLIENT_HEADER: self.identity},
            )
        except nats.errors.NoRespondersError as exc:
            raise ServiceUnavailable(f"no service answers {subject}") from exc
        except nats.errors.MaxPayloadError as exc:
            raise TooLarge(
                f"the request is {len(payload)} bytes, more than the NATS server carries "
                f"({self.nc.max_payload}, its max_payload); send a file as an upload instead"
            ) from exc
        except nats.errors.TimeoutError as exc:
            raise ServiceUnavailable(f"no reply on {subject} within {timeout or self.timeout}s") from exc
        headers = msg.headers or {}
        code = headers.get("Nats-Service-Error-Code")
        if code:
            try:
                reply = msgspec.json.decode(msg.data, type=ErrorReply)
                message, field = reply.error, reply.field
            except msgspec.MsgspecError:
                message, field = headers.get("Nats-Service-Error", "error"), None
            status = int(code) if code.isdigit() and 400 <= int(code) <= 599 else 500
            error = _ERRORS.get(status, ImagegenError)(message, field=field)
            error.code = status  # keep the service's own code (e.g. 422 for an item error)
            raise error
        return msg.data

    async def _call(self, subject: str, message: Any, reply_type: type[T], timeout: float | None = None) -> T:
        data = await self.request(subject, encode_json(message), timeout=timeout)
        return msgspec.json.decode(data, type=reply_type)

    async def upload(self, path: Path) -> str:
        """Stream a local file into the `imagegen-inputs` bucket under a fresh random name (a
        client may write uploads but read none); returns the name."""
        name = upload_name(path.name, "upload" + path.suffix)
        with path.open("rb") as handle:
            await put_upload(self.js, name, handle)
        return name

    async def submit(self, request: SubmitBase, *, timeout: float | None = None) -> Accepted:
        """Submit a request of any registered source on that source's subject."""
        return await self._call(source_of(request).submit_subject, request, Accepted, timeout)

    async def submit_file(self, path: Path, request: FileSubmit) -> Accepted:
        """Upload `path` and submit it as `request`'s file: the normal path, for any size."""
        spec = source_of(request)
        if not spec.takes_files:
            raise BadRequest(f"the {spec.name} source reads no files", field="source")
        name = await self.upload(path)
        changes: dict[str, Any] = {"object": name, "path": None}
        if spec.inline:
            changes[spec.inline] = None
        return await self.submit(msgspec.structs.replace(request, **changes))

    async def get_job(self, job_id: str, *, failures_limit: int = 100) -> JobInfo:
        return await self._call(
            subjects.JOBS_GET, JobsGet(job_id=job_id, failures_limit=failures_limit), JobInfo
        )

    async def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        before: datetime | None = None,
        since: datetime | None = None,
    ) -> list[JobInfo]:
        query = JobsList(status=status, limit=limit, before=before, since=since)
        return (await self._call(subjects.JOBS_LIST, query, JobsListReply)).jobs

    async def cancel_job(self, job_id: str) -> JobInfo:
        """Stop a job: ingest stops publishing, renderers skip its remaining tasks."""
        return await self._call(subjects.JOBS_CANCEL, JobRef(job_id=job_id), JobInfo)

    async def retry_job(self, job_id: str) -> JobInfo:
        """The job's next attempt: a job that completed with failed items re-renders those; a
        cancelled or failed job resumes, rendering only what earlier attempts did not."""
        return await self._call(subjects.JOBS_RETRY, JobRef(job_id=job_id), JobInfo)

    async def queues(self) -> list[Queue]:
        """How much work waits in each durable queue (requests per source, render tasks, results
        to count) and how much is being worked on; a queue not declared here is left out."""
        js = self.nc.jetstream()
        queues = [(subjects.STREAM_REQUESTS, spec.durable) for spec in SOURCES.values()]
        queues += [
            (subjects.STREAM_TASKS, subjects.CONSUMER_RENDERER),
            (subjects.STREAM_RESULT_QUEUE, subjects.CONSUMER_NOTIFIER),
        ]
        found: list[Queue] = []
        for stream, durable in queues:
            try:
                info = await js.consumer_info(stream, durable, timeout=self.timeout)
            except nats.js.errors.NotFoundError:
                continue
            found.append(Queue(durable, stream, info.num_pending or 0, info.num_ack_pending or 0))
        return found

    async def fonts(self) -> list[FontInfo]:
        return await self._call(subjects.FONTS, {}, list[FontInfo])

    async def preview(self, text: str, style: Style | None = None) -> bytes:
        return await self.request(
            subjects.PREVIEW, encode_json(PreviewRequest(text=text, style=style or Style()))
        )

    # --- streams ----------------------------------------------------------------------------

    async def _replay(self, stream: str, subject: str, type_: type[T]) -> AsyncIterator[T]:
        """Every message on `subject` from the start of `stream`, then live ones."""
        sub = await self.js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            config=ConsumerConfig(inactive_threshold=60),
        )
        try:
            async for msg in sub.messages:
                try:
                    yield decode_lenient(msg.data, type_)
                except msgspec.MsgspecError:
                    continue  # not ours to judge; a client keeps reading
        finally:
            await sub.unsubscribe()

    async def watch(self, job_id: str, *, attempt: int | None = None) -> AsyncIterator[JobEvent]:
        """A job's events from the first, then live, until a terminal one (which is yielded).

        With `attempt`, terminal events of earlier attempts (before a retry) do not end it.
        """
        async for event in self._replay(subjects.STREAM_EVENTS, subjects.events_filter(job_id), JobEvent):
            yield event
            if event.kind in TERMINAL_EVENTS and (attempt is None or event.attempt >= attempt):
                return

    async def results(self, job_id: str) -> AsyncIterator[BatchResult]:
        """A job's result batches from the first, then live (never ends by itself)."""
        subject = subjects.results_subject(job_id)
        async for result in self._replay(subjects.STREAM_RESULTS, subject, BatchResult):
            yield result

    def job_store(self, job: JobInfo) -> ImageStore:
        """The store a job's files are in, read from the job's `output` location: the images
        bucket, or a folder (readable only on a machine that shares the renderers' disk)."""
        if job.output and job.output.startswith(OBJECT_SCHEME):
            return ObjectImageStore(self.js)
        if not job.output:
            raise NotFound(f"job {job.job_id} has no output yet", field="job_id")
        folder = Path(job.output)
        if not folder.is_dir():
            raise NotFound(
                f"the images of {job.job_id} are in a folder on the server ({job.output}) that this "
                "machine cannot read; fetch them over HTTP from the gateway, or run renderers "
                "with IMAGEGEN_OUTPUT_STORE=object",
                field="job_id",
            )
        return DirectoryStore(folder.parent)

    async def fetch_images(self, job_id: str, out_dir: Path, *, manifest: bool = True) -> int:
        """Copy a finished job's images (and its manifest) into `out_dir`, wherever the
        renderers put them. Returns how many images were written. Only names that are one safe
        file-name component are written, so a result can never place a file outside `out_dir`."""
        job = await self.get_job(job_id, failures_limit=0)
        store = self.job_store(job)
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
        names = [image.name for image in await store.list(job_id) if _safe_image_name(image.name)]
        if manifest:
            names.append(MANIFEST_NAME)
        written = 0
        for name in names:
            target = out_dir / name
            try:
                with target.open("wb") as handle:
                    async for chunk in store.read(job_id, name):
                        await asyncio.to_thread(handle.write, chunk)
            except NotFound:
                target.unlink(missing_ok=True)
                continue
            written += name != MANIFEST_NAME
        return written

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        attempt: int | None = None,
        on_event: Callable[[JobEvent], None] | None = None,
    ) -> JobEvent:
        """Follow a job's events until it ends (its `attempt`, if given); return the terminal event."""

        async def follow() -> JobEvent:
            async for event in self.watch(job_id, attempt=attempt):
                if on_event:
                    on_event(event)
                if event.kind in TERMINAL_EVENTS and (attempt is None or event.attempt >= attempt):
                    return event
            raise ImagegenError(f"event stream of {job_id} ended early")

        return await asyncio.wait_for(follow(), timeout)
