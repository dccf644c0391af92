"""The progress throttle: at most one progress event per job per interval, each job on its own
clock, in bounded memory. Time is passed in explicitly: no test here reads a clock; the last one
checks the notifier announces through it, with an interval no run can reach."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from devstack import NatsServer
from devstack.stack import LocalStack
from services.result_notifier.progress import ProgressThrottle
from shared.sources.csv import SubmitCsv
from tests.stacks import own_stack


def test_one_event_per_interval_however_many_results() -> None:
    throttle = ProgressThrottle(0.5)
    # A thousand results in the first 0.4 s of a job: only the first one announces progress.
    assert [throttle.due("job", now=10 + i * 0.0004) for i in range(1000)] == [True] + [False] * 999
    assert throttle.due("job", now=10.5)  # one interval after the last announcement
    assert not throttle.due("job", now=10.99)
    assert throttle.due("job", now=11.0)


def test_a_refused_check_does_not_move_the_window() -> None:
    throttle = ProgressThrottle(1.0)
    assert throttle.due("job", now=0.0)
    assert not throttle.due("job", now=0.9)  # refused: the window still starts at 0.0
    assert throttle.due("job", now=1.0)


def test_jobs_are_throttled_independently() -> None:
    throttle = ProgressThrottle(1.0)
    assert throttle.due("a", now=0.0) and throttle.due("b", now=0.1)
    assert not throttle.due("a", now=0.2) and not throttle.due("b", now=0.2)
    assert throttle.due("a", now=1.0) and not throttle.due("b", now=1.0)


def test_over_a_run_the_events_are_spaced_by_the_interval() -> None:
    throttle = ProgressThrottle(0.25)
    times = [i * 0.01 for i in range(1000)]  # a result every 10 ms for 10 s
    announced = [t for t in times if throttle.due("job", now=t)]
    assert len(announced) == 40, len(announced)  # 10 s / 0.25 s
    assert all(b - a >= 0.25 - 1e-9 for a, b in itertools.pairwise(announced))


def test_a_zero_interval_lets_every_event_through() -> None:
    throttle = ProgressThrottle(0.0)
    assert all(throttle.due("job", now=5.0) for _ in range(10))


def test_forget_makes_the_next_event_due_at_once() -> None:
    throttle = ProgressThrottle(10.0)
    assert throttle.due("job", now=0.0)
    throttle.forget("job")
    assert throttle.due("job", now=0.1)
    throttle.forget("never-seen")  # forgetting an unknown job is harmless


def test_memory_is_bounded_by_forgetting_the_oldest_job() -> None:
    throttle = ProgressThrottle(10.0, max_jobs=3)
    for i, job in enumerate(("a", "b", "c")):
        assert throttle.due(job, now=float(i))
    assert throttle.due("d", now=3.0)  # a fourth job: the oldest ("a") is forgotten
    assert throttle.due("a", now=3.1)  # so it is due again, well inside its interval
    assert not throttle.due("c", now=3.2) and not throttle.due("d", now=3.3)


@pytest.mark.slow
async def test_the_notifier_announces_through_the_throttle(
    tmp_path: Path, postgres_admin_url: str, stacks: list[tuple[NatsServer, LocalStack]]
) -> None:
    """Wired in: with an hour's interval, a job of many batches gets exactly one progress event
    (the first result's), whatever the machine's speed."""
    stacks.append(
        await own_stack(tmp_path, postgres_admin_url, renderers=1, IMAGEGEN_PROGRESS_INTERVAL_SECONDS="3600")
    )
    _, stack = stacks[-1]
    async with await stack.client() as client:
        csv_text = "name\n" + "".join(f"进度 {i}\n" for i in range(200))
        accepted = await client.submit(SubmitCsv(csv=csv_text, column="name", batch_size=4))
        final = await client.wait(accepted.job_id, timeout=120)
        assert (final.kind, final.done) == ("completed", 200)
        kinds = [event.kind for event in [e async for e in client.watch(accepted.job_id)]]
    assert kinds == ["accepted", "started", "progress", "completed"], kinds
