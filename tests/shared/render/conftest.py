"""Fixtures for the render engine tests: one engine for the whole session (fonts load once), and
the pass counts of the Unicode conformance suites, printed in the session summary."""

from __future__ import annotations

import pytest

from shared.render import RenderEngine


@pytest.fixture(scope="session")
def engine() -> RenderEngine:
    return RenderEngine()


_REPORT: list[str] = []


@pytest.fixture
def report() -> list[str]:
    """Lines a test adds here appear under "conformance" at the end of the run."""
    return _REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("conformance")
        for line in _REPORT:
            terminalreporter.write_line(line)
