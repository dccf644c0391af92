"""The named exceptions of imagegen, one small hierarchy.

`BadRequest` and its kin map to a NATS service error reply (code 400 and friends) at the edge;
`ItemError` fails one item of a job, never the job; everything else is an operational failure.
"""

from __future__ import annotations


class ImagegenError(Exception):
    """Base of every error imagegen raises on purpose."""

    code: int = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class BadRequest(ImagegenError):
    """A request, field or value a client sent is invalid; `field` names it."""

    code = 400


class NotFound(ImagegenError):
    """A job, font, data source or object that was named does not exist."""

    code = 404


class Conflict(ImagegenError):
    """The request clashes with the current state (e.g. retrying a running job)."""

    code = 409


class TooLarge(ImagegenError):
    """A request, reply or preview is larger than the system carries (a NATS message's
    `max_payload`, a preview's memory cap): ask for less."""

    code = 413


class TooMany(ImagegenError):
    """A client is over its share of something (open event streams, say): try again later."""

    code = 429


class Busy(ImagegenError):
    """The system is at a configured limit and refuses new work rather than drop it."""

    code = 503


class ItemError(ImagegenError):
    """One item (a CSV row, a DB row) cannot be rendered; the job goes on without it."""

    code = 422


class RenderError(ItemError):
    """The render engine refused or failed one item (limits, missing glyphs in strict mode...)."""


class StorageError(ImagegenError):
    """Writing or reading a rendered image failed."""


class SourceError(ImagegenError):
    """The input source (a CSV file, a database query) failed while being read."""
