"""The image store interface every service uses, and the facts all stores share.

A store keeps a job's images (and its manifest) under the job's id. Which store a deployment uses
is chosen once, from settings (`shared.storage.open_store`): a folder on a disk the renderers
share, or a NATS Object Store bucket when they share none. Results name each image by its file
name inside the job; the job's `output` is the store's location for it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol

from shared.contract.errors import BadRequest
from shared.storage.naming import sanitize_name

StoreKind = Literal["directory", "object"]

IMAGE_TYPES: Final = {".png": "image/png", ".webp": "image/webp"}
MANIFEST_NAME: Final = "manifest.csv"
OBJECT_SCHEME: Final = "nats-object://"
CHUNK: Final = 256 * 1024

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class ImageFile:
    """One stored image of a job: its file name and size in bytes."""

    name: str
    bytes: int


def natural_key(name: str) -> list[int | str]:
    """Sort key that puts "2.png" before "10.png" (output names are usually indexes)."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]


def check_image_name(name: str) -> str:
    """`name` if it is a safe image file name of a job (one sanitised component with an image
    extension, not hidden), else `BadRequest` naming `name` (names come from URLs and results)."""
    if (
        not name
        or sanitize_name(name) != name
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or Path(name).suffix.lower() not in IMAGE_TYPES
    ):
        raise BadRequest("not an image file name of this job", field="name")
    return name


def media_type(name: str) -> str:
    if name == MANIFEST_NAME:
        return "text/csv; charset=utf-8"
    return IMAGE_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


class ImageStore(Protocol):
    """Where a deployment keeps rendered images and manifests."""

    @property
    def kind(self) -> StoreKind:
        """Which store this is, as `IMAGEGEN_OUTPUT_STORE` names it."""
        ...

    def location(self, job_id: str) -> str:
        """Where a job's files are, as users see it: a folder path or `nats-object://bucket/job/`."""
        ...

    async def put_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Store images of one job (name, bytes); returns their names. A re-render replaces."""
        ...

    async def list(self, job_id: str) -> list[ImageFile]:
        """The job's images so far, in natural name order (no manifest, no temporary files)."""
        ...

    def read(self, job_id: str, name: str) -> AsyncIterator[bytes]:
        """The bytes of one image or the manifest, in chunks; `NotFound` if it is not there."""
        ...

    async def put_manifest(self, job_id: str, path: Path) -> str:
        """Store the manifest written at `path` beside the job's images, replacing any earlier
        one whole; returns its location."""
        ...
