"""Following a job in a terminal: the pace both the bar and the summary show, and the live bar
in a pseudo-terminal (where rich draws it as a person sees it)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from datetime import UTC, datetime, timedelta

from devstack.stack import LocalStack
from shared.cli.follow import Pace
from shared.contract.messages import JobEvent
from shared.contract.states import EventKind, JobStatus
from tests.cli import cli_args, cli_env
from tests.conftest import REPO

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(seconds: float, done: int, failed: int = 0, attempt: int = 1) -> JobEvent:
    return JobEvent(
        job_id="j",
        kind=EventKind.PROGRESS,
        status=JobStatus.RENDERING,
        attempt=attempt,
        done=done,
        failed=failed,
        at=T0 + timedelta(seconds=seconds),
    )


def test_pace_counts_items_of_the_attempt_between_its_events() -> None:
    pace = Pace()
    assert pace.rate is None and pace.seconds is None
    pace.observe(event(0, 0))
    assert pace.rate is None  # one event: no interval yet
    pace.observe(event(2, 90, failed=10))
    assert pace.seconds == 2 and pace.rate == 50


def test_a_retry_counts_only_what_it_rendered_in_its_own_time() -> None:
    pace = Pace()
    pace.observe(event(0, 0))
    pace.observe(event(100, 20_000, failed=2))
    # The retry starts 10 minutes later from the first attempt's counts: 2 items in 1 s.
    pace.observe(event(700, 20_000, failed=0, attempt=2))
    pace.observe(event(701, 20_002, failed=0, attempt=2))
    assert pace.seconds == 1 and pace.rate == 2


def run_in_pty(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run a command with a pseudo-terminal as stdout and stderr; all it wrote, decoded."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=10)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_submit_wait_in_a_terminal_draws_a_live_bar_and_a_matching_summary(stack: LocalStack) -> None:
    env = cli_env(stack, COLUMNS="160")
    env.pop("NO_COLOR", None)
    out = run_in_pty(
        cli_args("submit", "csv", "examples/products.csv", "--column", "name", "--wait", stack=stack), env
    )
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "\x1b[" in out, "no terminal control sequences: the bar was not drawn live"
    assert "Traceback" not in plain and "Task exception" not in plain, plain
    assert re.search(r"completed in [\d.]+s \(([\d,]+) items/s\)", plain), plain
    assert "24 total, 24 rendered, 0 failed" in plain
    rates = re.findall(r"([\d,]+) items/s", plain)
    assert rates[-2] == rates[-1], plain  # the bar's last figure is the summary's
    assert "manifest:" in plain
