"""The image tests run the image `make image-test` built (IMAGEGEN_TEST_IMAGE) on podman.

`IMAGEGEN_TEST_BASE` is the base it was built on; the stand-in NATS and Postgres images of the
compose test are built on it too (tests/image/standins/). tests/conftest.py collects this folder
only when IMAGEGEN_TEST_IMAGE is set.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def image() -> str:
    return os.environ["IMAGEGEN_TEST_IMAGE"]


@pytest.fixture(scope="session")
def base_image() -> str:
    return os.environ.get("IMAGEGEN_TEST_BASE") or "localhost/imagegen-debian-base:bookworm"
