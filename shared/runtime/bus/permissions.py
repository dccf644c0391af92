"""Who may do what on NATS: one identity per service, a client identity and an admin identity.

This is the least-privilege layout the local stack, compose and Kubernetes run nats-server with
(users with passwords in one account; `render_authorization` writes the `authorization {}` block).
Every subject an identity may publish or subscribe to is listed; everything else is refused by
the server. In short:

- `client` requests submits, job queries, fonts/validate/preview; puts uploads into the inputs
  bucket without being able to read any; replays results and events through ordered consumers;
  reads the images bucket; receives replies on `_INBOX.>`. It publishes no task, result or event,
  touches no key-value bucket and manages no stream or consumer.
- `ingest` queues requests and publishes tasks and the events of the transitions it makes;
  `renderer` publishes results; `result-notifier` publishes progress, completion, cancellation,
  retry and failure events, retry tasks, the failed results of tasks no renderer survived (read
  and deleted by sequence after a MAX_DELIVERIES advisory), and writes the cancel bucket. Each
  pulls only its own durables.
- `admin` declares streams, consumers and buckets (`imagegen nats setup`); nothing else may.
- `gateway` is a client that also registers with the services API.

Services use an inbox prefix of their own (`inbox_prefix`), so that a client, which may
subscribe to `_INBOX.>`, never sees the replies and deliveries meant for a service (an upload
read by ingest arrives on ingest's inbox).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from shared.contract import subjects
from shared.contract.states import EventKind
from shared.runtime.services import SERVICES

ADMIN: Final = "admin"
CLIENT: Final = "client"
GATEWAY: Final = "gateway"
INGEST: Final = "ingest"
RENDERER: Final = "renderer"
NOTIFIER: Final = "result-notifier"

CLIENT_INBOX: Final = "_INBOX"  # nats-py's default: a client needs no setting

_API = "$JS.API"


def inbox_prefix(identity: str) -> str:
    """The inbox prefix an identity's connections use (`_INBOX_<service>` for a service)."""
    return CLIENT_INBOX if identity in (CLIENT, ADMIN) else f"{CLIENT_INBOX}_{identity}"


@dataclass(frozen=True)
class Identity:
    """A NATS user of the layout and the subjects it may use."""

    name: str
    summary: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Services answer requests: the server then lets them publish to each request's reply subject.
    responses: bool = False


# --- building blocks -------------------------------------------------------------------------


def _stream_info(stream: str) -> list[str]:
    return [f"{_API}.STREAM.INFO.{stream}"]


def _read_messages(stream: str) -> list[str]:
    """Get stored messages one by one (by sequence or last by subject): reads the whole stream."""
    return [f"{_API}.STREAM.MSG.GET.{stream}", f"{_API}.DIRECT.GET.{stream}", f"{_API}.DIRECT.GET.{stream}.>"]


def _replay(stream: str) -> list[str]:
    """Ordered (ephemeral push) consumers, as nats-py creates them, with their flow control.

    Only on streams with no durable consumer: the ephemeral create subject also accepts a
    consumer `name` in its body, which updates an existing consumer of that name (checked on
    nats-server 2.15: a durable's filter was rewritten this way).
    """
    return [f"{_API}.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>"]


def _pull(stream: str, consumer: str) -> list[str]:
    """Fetch from, acknowledge and look up one durable pull consumer (`*`: any of the stream)."""
    return [
        f"{_API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"{_API}.CONSUMER.INFO.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


def _undelivered(stream: str) -> list[str]:
    """Read and then delete a work queue's message by sequence: one a MAX_DELIVERIES advisory
    names, which the server no longer delivers but keeps."""
    return [*_read_messages(stream), f"{_API}.STREAM.MSG.DELETE.{stream}"]


def _object_chunks(bucket: str) -> list[str]:
    """Read an object's entry and then its chunks one by one (`shared.storage.chunks`)."""
    stream = subjects.object_stream(bucket)
    return [*_stream_info(stream), *_read_messages(stream)]


def _object_reader(bucket: str) -> list[str]:
    """Also list the bucket and read objects as nats-py and the nats CLI do (ordered consumers)."""
    stream = subjects.object_stream(bucket)
    return [*_object_chunks(bucket), *_replay(stream), f"{_API}.STREAM.NAMES"]


def _object_writer(bucket: str) -> list[str]:
    # nats-py's put reads the name's current entry first and purges replaced chunks after.
    stream = subjects.object_stream(bucket)
    return [
        *_stream_info(stream),
        *_read_messages(stream),
        f"{_API}.STREAM.PURGE.{stream}",
        f"$O.{bucket}.>",
    ]


def _kv_reader(bucket: str) -> list[str]:
    return [*_stream_info(subjects.kv_stream(bucket)), *_read_messages(subjects.kv_stream(bucket))]


def _kv_watcher(bucket: str) -> list[str]:
    """Read keys and watch the bucket (an ordered consumer; nats-py asks its info once)."""
    stream = subjects.kv_stream(bucket)
    return [*_kv_reader(bucket), *_replay(stream), f"{_API}.CONSUMER.INFO.{stream}.*"]


def _kv_writer(bucket: str) -> list[str]:
    return [*_kv_reader(bucket), f"$KV.{bucket}.*"]


def _events(*kinds: EventKind) -> list[str]:
    return [f"{subjects.PREFIX}.events.*.{kind}" for kind in kinds]


def _manifest_reader() -> list[str]:
    """What writing a manifest needs: a short-lived pull consumer on the job's results (named,
    with the job's subject as its filter) and the stream's last sequence for that subject."""
    results = subjects.STREAM_RESULTS
    return [
        f"{_API}.CONSUMER.CREATE.{results}.*.{subjects.PREFIX}.results.*",
        f"{_API}.CONSUMER.MSG.NEXT.{results}.*",
        f"{_API}.CONSUMER.DELETE.{results}.*",
        *_read_messages(results),
    ]


_PING = ["$SRV.PING", "$SRV.PING.>"]
_SERVICES_API = ["$SRV.>"]  # a registered service answers PING, INFO and STATS


def _inbox(identity: str) -> list[str]:
    return [f"{inbox_prefix(identity)}.>"]


_CLIENT_REQUESTS = [
    f"{subjects.PREFIX}.submit.*",
    f"{subjects.PREFIX}.jobs.*",
    subjects.FONTS,
    subjects.VALIDATE,
    subjects.PREVIEW,
]


def _queue_info() -> list[str]:
    """Read the work queues' consumers (counts only: `imagegen status`, `Client.queues`)."""
    return [
        f"{_API}.CONSUMER.INFO.{subjects.STREAM_REQUESTS}.*",
        f"{_API}.CONSUMER.INFO.{subjects.STREAM_TASKS}.{subjects.CONSUMER_RENDERER}",
        f"{_API}.CONSUMER.INFO.{subjects.STREAM_RESULT_QUEUE}.{subjects.CONSUMER_NOTIFIER}",
    ]


def _client_publish() -> list[str]:
    return [
        *_CLIENT_REQUESTS,
        *_PING,
        *_queue_info(),
        *_replay(subjects.STREAM_RESULTS),
        *_replay(subjects.STREAM_EVENTS),
        f"{_API}.STREAM.NAMES",
        *_object_reader(subjects.BUCKET_IMAGES),
        # Uploads only: chunks and the entry. No read: `shared.storage.uploads` skips the
        # existence check nats-py's put makes, since an upload always gets a fresh name.
        f"$O.{subjects.BUCKET_INPUTS}.>",
    ]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --- the layout ------------------------------------------------------------------------------

IDENTITIES: Final[dict[str, Identity]] = {
    identity.name: identity
    for identity in (
        Identity(
            ADMIN,
            "declares streams, consumers and buckets (imagegen nats setup); operators and tests",
            publish=(">",),
            subscribe=(">",),
            responses=True,
        ),
        Identity(
            CLIENT,
            "the CLI, the Python client: submit, query, replay results and events, read images",
            publish=_unique(_client_publish()),
            subscribe=_unique(_inbox(CLIENT)),
        ),
        Identity(
            GATEWAY,
            "the HTTP gateway: a client that registers with the services API",
            publish=_unique(_client_publish()),
            subscribe=_unique([*_SERVICES_API, *_inbox(GATEWAY)]),
            responses=True,
        ),
        Identity(
            INGEST,
            "answers submits, queues requests, publishes render tasks",
            publish=_unique(
                [
                    *_PING,
                    f"{subjects.PREFIX}.requests.*",
                    f"{subjects.PREFIX}.tasks.*",
                    *_events(EventKind.ACCEPTED, EventKind.STARTED, EventKind.FAILED, EventKind.COMPLETED),
                    *_stream_info(subjects.STREAM_REQUESTS),
                    *_stream_info(subjects.STREAM_TASKS),
                    # The renderers' backlog: the fairness cap yields when nothing is waiting.
                    f"{_API}.CONSUMER.INFO.{subjects.STREAM_TASKS}.{subjects.CONSUMER_RENDERER}",
                    *_pull(subjects.STREAM_REQUESTS, "*"),
                    *_kv_reader(subjects.BUCKET_CANCELLED),
                    *_kv_writer(subjects.BUCKET_ACTIVE),
                    *_object_chunks(subjects.BUCKET_INPUTS),
                    *_object_writer(subjects.BUCKET_IMAGES),
                    *_manifest_reader(),
                ]
            ),
            subscribe=_unique([f"{subjects.PREFIX}.submit.*", *_SERVICES_API, *_inbox(INGEST)]),
            responses=True,
        ),
        Identity(
            RENDERER,
            "renders tasks, publishes results; answers fonts, validate and preview",
            publish=_unique(
                [
                    *_PING,
                    f"{subjects.PREFIX}.results.*",
                    *_pull(subjects.STREAM_TASKS, subjects.CONSUMER_RENDERER),
                    *_kv_watcher(subjects.BUCKET_ACTIVE),
                    *_object_writer(subjects.BUCKET_IMAGES),
                ]
            ),
            subscribe=_unique(
                [subjects.FONTS, subjects.VALIDATE, subjects.PREVIEW, *_SERVICES_API, *_inbox(RENDERER)]
            ),
            responses=True,
        ),
        Identity(
            NOTIFIER,
            "counts results into the ledger, publishes job events, answers jobs.*, writes cancellations,"
            " resumes jobs",
            publish=_unique(
                [
                    *_PING,
                    f"{subjects.PREFIX}.tasks.*",  # a retry's tasks
                    f"{subjects.PREFIX}.requests.*",  # a resumed job goes back to ingest
                    # The failed items of a task no renderer survived (a MAX_DELIVERIES advisory).
                    f"{subjects.PREFIX}.results.*",
                    *_events(
                        EventKind.PROGRESS,
                        EventKind.COMPLETED,
                        EventKind.CANCELLED,
                        EventKind.STARTED,
                        EventKind.FAILED,
                    ),
                    *_stream_info(subjects.STREAM_TASKS),
                    *_pull(subjects.STREAM_RESULT_QUEUE, subjects.CONSUMER_NOTIFIER),
                    *_pull(subjects.STREAM_ADVISORIES, subjects.CONSUMER_ADVISORIES),
                    *_undelivered(subjects.STREAM_TASKS),
                    *_undelivered(subjects.STREAM_REQUESTS),
                    *_kv_writer(subjects.BUCKET_CANCELLED),
                    *_kv_writer(subjects.BUCKET_ACTIVE),
                    *_object_writer(subjects.BUCKET_IMAGES),
                    *_manifest_reader(),
                ]
            ),
            subscribe=_unique([f"{subjects.PREFIX}.jobs.*", *_SERVICES_API, *_inbox(NOTIFIER)]),
            responses=True,
        ),
    )
}

# Every service connects as the identity of its own name.
assert set(SERVICES) <= set(IDENTITIES), "every service needs an identity"


# --- the server's configuration --------------------------------------------------------------


def password_variable(identity: str) -> str:
    """The environment variable nats-server reads an identity's password from in deploy files."""
    return "NATS_PASSWORD_" + identity.upper().replace("-", "_")


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def render_authorization(password: Callable[[str], str]) -> str:
    """The nats-server `authorization {}` block of the layout.

    `password(identity)` gives each password as it should appear in the file: a quoted literal
    (the local stack) or an unquoted `$VARIABLE` that nats-server reads from its environment
    (compose, Kubernetes: see `password_variable`).
    """
    lines = [
        "# imagegen's NATS permissions: generated by `imagegen nats config` from",
        "# shared/runtime/bus/permissions.py. Every subject not listed is refused.",
        "authorization {",
        "  users = [",
    ]
    for identity in IDENTITIES.values():
        lines += [
            "    {",
            f"      # {identity.summary}",
            f'      user: "{identity.name}"',
            f"      password: {password(identity.name)}",
            "      permissions: {",
            f"        publish: {{ allow: [{_quoted(identity.publish)}] }}",
            f"        subscribe: {{ allow: [{_quoted(identity.subscribe)}] }}",
        ]
        if identity.responses:
            lines.append("        allow_responses: true")
        lines += ["      }", "    }"]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def literal(value: str) -> str:
    """A password written into the file itself, quoted for the nats-server config syntax."""
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError("a NATS password in the config file must not contain quotes or backslashes")
    return f'"{value}"'


def from_environment(identity: str) -> str:
    """A password nats-server reads from its environment (`password_variable`)."""
    return f"${password_variable(identity)}"
