"""The AsyncAPI 3 document of imagegen's NATS interface, generated from the code.

Channels come from the subject builders (`shared.contract.subjects`) and the source registry
(`shared.sources`), message payloads from the msgspec Structs, so the document cannot drift from
what the services speak. `imagegen asyncapi` prints it; the gateway serves it at
`/asyncapi.json`. NATS request/reply is an operation with a `reply` on the requester's inbox
(a channel whose address is only known at run time).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import msgspec

from shared.contract import subjects
from shared.contract.messages import (
    Accepted,
    BatchResult,
    ErrorReply,
    FontInfo,
    IngestRequest,
    JobEvent,
    JobInfo,
    JobRef,
    JobsGet,
    JobsList,
    JobsListReply,
    PreviewRequest,
    RenderTask,
    ValidateReply,
)
from shared.contract.states import EventKind
from shared.contract.style import Style
from shared.sources import SOURCES

JSON = "application/json"
MSGPACK = "application/msgpack"

_JOB_ID = {"description": "a job id: 1-64 letters, digits, '-' or '_'"}


def _version() -> str:
    try:
        return metadata.version("imagegen")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class _Doc:
    def __init__(self) -> None:
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.types: list[Any] = []

    def message(
        self, type_: Any, *, name: str | None = None, content_type: str = JSON, summary: str = ""
    ) -> str:
        key = name or type_.__name__
        if key not in self.messages:
            self.types.append(type_)
            schema_name = key if name else type_.__name__
            self.messages[key] = {
                "name": key,
                "contentType": content_type,
                "payload": {"$ref": f"#/components/schemas/{schema_name}"},
                **({"summary": summary} if summary else {}),
            }
        return key

    def channel(self, key: str, address: str | None, messages: list[str], **extra: Any) -> dict[str, Any]:
        self.channels[key] = {
            "address": address,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            **extra,
        }
        return {"$ref": f"#/channels/{key}"}

    def request_reply(self, key: str, subject: str, request: Any, reply: Any, summary: str) -> None:
        """A request/reply subject answered by a service (a queue group of its replicas)."""
        request_msg = self.message(request) if request is not None else self.message(dict, name="Empty")
        reply_msgs = [self.message(reply) if isinstance(reply, type) else reply, self.message(ErrorReply)]
        channel = self.channel(key, subject, [request_msg])
        reply_channel = self.channel(
            f"{key}Reply", None, reply_msgs, description="the requester's reply inbox"
        )
        self.operations[key] = {
            "action": "receive",
            "summary": summary,
            "channel": channel,
            "messages": [{"$ref": f"{channel['$ref']}/messages/{request_msg}"}],
            "reply": {
                "channel": reply_channel,
                "messages": [{"$ref": f"{reply_channel['$ref']}/messages/{m}"} for m in reply_msgs],
            },
        }

    def stream(self, key: str, address: str, message: str, action: str, summary: str, **extra: Any) -> None:
        channel = self.channel(key, address, [message], **extra)
        self.operations[key] = {
            "action": action,
            "summary": summary,
            "channel": channel,
            "messages": [{"$ref": f"{channel['$ref']}/messages/{message}"}],
        }


def document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document as a JSON-ready dict."""
    doc = _Doc()
    for spec in SOURCES.values():
        name = spec.name.capitalize()
        doc.request_reply(
            f"submit{name}", spec.submit_subject, spec.request, Accepted, f"Submit a job: {spec.summary}"
        )
        doc.stream(
            f"requests{name}",
            spec.requests_subject,
            doc.message(IngestRequest),
            "send",
            f"Accepted {spec.name} jobs, durably queued for ingest",
            **{
                "x-jetstream": {
                    "stream": subjects.STREAM_REQUESTS,
                    "retention": "workqueue",
                    "consumer": spec.durable,
                }
            },
        )
    doc.request_reply(
        "fonts", subjects.FONTS, None, doc.message(list[FontInfo], name="FontList"), "The fonts"
    )
    doc.request_reply("validate", subjects.VALIDATE, Style, ValidateReply, "Check a style")
    doc.request_reply(
        "preview",
        subjects.PREVIEW,
        PreviewRequest,
        doc.message(bytes, name="Image", content_type="image/png"),
        "Render one text now; the reply is the image",
    )
    doc.request_reply("jobsGet", subjects.JOBS_GET, JobsGet, JobInfo, "One job's ledger row")
    doc.request_reply("jobsList", subjects.JOBS_LIST, JobsList, JobsListReply, "Jobs, newest first")
    doc.request_reply("jobsCancel", subjects.JOBS_CANCEL, JobRef, JobInfo, "Stop a job")
    doc.request_reply("jobsRetry", subjects.JOBS_RETRY, JobRef, JobInfo, "Re-render a job's failed items")
    job_id = {"job_id": _JOB_ID}
    doc.stream(
        "tasks",
        f"{subjects.PREFIX}.tasks.{{job_id}}",
        doc.message(RenderTask, content_type=MSGPACK),
        "send",
        "Batches of items to render (MessagePack), shared by every renderer replica",
        parameters=job_id,
        **{
            "x-jetstream": {"stream": subjects.STREAM_TASKS, "retention": "workqueue", "consumer": "renderer"}
        },
    )
    doc.stream(
        "results",
        f"{subjects.PREFIX}.results.{{job_id}}",
        doc.message(BatchResult),
        "send",
        "Per-item outcomes of each render task; replay from the start of the stream",
        parameters=job_id,
        **{"x-jetstream": {"stream": subjects.STREAM_RESULTS, "retention": "limits"}},
    )
    doc.stream(
        "events",
        f"{subjects.PREFIX}.events.{{job_id}}.{{kind}}",
        doc.message(JobEvent),
        "send",
        "A job's lifecycle: accepted, started, progress (throttled), completed, failed, cancelled",
        parameters={"job_id": _JOB_ID, "kind": {"enum": [kind.value for kind in EventKind]}},
        **{"x-jetstream": {"stream": subjects.STREAM_EVENTS, "retention": "limits"}},
    )
    # Messages named by hand (a list, raw bytes, an empty request) get hand-written schemas below.
    schema_types = [t for t in doc.types if isinstance(t, type) and issubclass(t, msgspec.Struct)]
    schema_types.append(FontInfo)
    _, schemas = msgspec.json.schema_components(schema_types, ref_template="#/components/schemas/{name}")
    schemas["Empty"] = {"type": "object", "description": "an empty request"}
    schemas["FontList"] = {"type": "array", "items": {"$ref": "#/components/schemas/FontInfo"}}
    schemas["Image"] = {"type": "string", "format": "binary", "description": "PNG or WebP bytes"}
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "imagegen",
            "version": _version(),
            "description": "Text in, transparent PNGs out, in bulk, over NATS. Requests and replies, results "
            "and events are JSON; render tasks are MessagePack. Errors are NATS service errors "
            "(`Nats-Service-Error-Code` header) with an ErrorReply body.",
        },
        "defaultContentType": JSON,
        "servers": {"local": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "a local stack"}},
        "channels": doc.channels,
        "operations": doc.operations,
        "components": {"messages": doc.messages, "schemas": schemas},
    }
