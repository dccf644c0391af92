"""Fixtures for the render engine tests: one engine for the whole session (fonts load once)."""

from __future__ import annotations

import pytest

from shared.render import RenderEngine


@pytest.fixture(scope="session")
def engine() -> RenderEngine:
    return RenderEngine()
