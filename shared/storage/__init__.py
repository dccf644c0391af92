"""Where rendered images go: the `ImageStore` interface, its two stores, and output names.

`open_store(settings, js)` is the one place a deployment's store is chosen; every service and the
gateway call it, so they cannot disagree about where a job's files are.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from shared.runtime.settings import Settings
from shared.storage.base import (
    MANIFEST_NAME,
    ImageFile,
    ImageStore,
    StoreKind,
    check_image_name,
    media_type,
)
from shared.storage.directory import DirectoryStore
from shared.storage.naming import NameTemplate, sanitize_name
from shared.storage.objectstore import ObjectImageStore


def open_store(settings: Settings, js: JetStreamContext) -> ImageStore:
    """The store this deployment's settings name (`IMAGEGEN_OUTPUT_STORE`)."""
    if settings.output_store == "object":
        return ObjectImageStore(js)
    return DirectoryStore(settings.output_dir)


__all__ = [
    "MANIFEST_NAME",
    "DirectoryStore",
    "ImageFile",
    "ImageStore",
    "NameTemplate",
    "ObjectImageStore",
    "StoreKind",
    "check_image_name",
    "media_type",
    "open_store",
    "sanitize_name",
]
