"""The wire contract of imagegen: messages, subjects, job states, errors and the Style model.

Everything a client needs to speak to the service set, and nothing more: this package imports no
imaging library (no Pillow, no fontTools) and no NATS client, so a thin client, a gateway or a
test loads it in milliseconds. The source plug-ins (`shared.sources`) add the submit requests.
"""

from shared.contract.errors import (
    BadRequest,
    Busy,
    Conflict,
    ImagegenError,
    ItemError,
    NotFound,
    RenderError,
    SourceError,
    StorageError,
)
from shared.contract.states import EventKind, JobStatus
from shared.contract.style import Shadow, Style, parse_style

__all__ = [
    "BadRequest",
    "Busy",
    "Conflict",
    "EventKind",
    "ImagegenError",
    "ItemError",
    "JobStatus",
    "NotFound",
    "RenderError",
    "Shadow",
    "SourceError",
    "StorageError",
    "Style",
    "parse_style",
]
