"""Subjects and job ids: ids are checked before they reach a subject or a path."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shared.contract.errors import BadRequest
from shared.contract.subjects import (
    events_filter,
    events_subject,
    job_id_from_subject,
    new_job_id,
    results_subject,
    tasks_subject,
    validate_job_id,
)

GOOD_IDS = ["a", "job-1", "Job_2", "20250101-120000-deadbeef", "x" * 64, "0", "-", "_"]
BAD_IDS = [
    "",
    "a.b",
    "a*",
    "*",
    ">",
    "a>",
    "a b",
    " a",
    "a/b",
    "a\\b",
    "..",
    "a\n",
    "a\tb",
    "x" * 65,
    "任务",
    "a$b",
]

BUILDERS: list[Callable[[str], str]] = [
    tasks_subject,
    results_subject,
    events_filter,
    lambda job_id: events_subject(job_id, "completed"),
]


@pytest.mark.parametrize("job_id", GOOD_IDS)
def test_valid_ids(job_id: str) -> None:
    assert validate_job_id(job_id) == job_id


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_invalid_ids(job_id: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_job_id(job_id)
    assert err.value.field == "job_id"


def test_field_name_can_be_chosen() -> None:
    with pytest.raises(BadRequest) as err:
        validate_job_id("a.b", field="request.job_id")
    assert err.value.field == "request.job_id"


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("job_id", BAD_IDS)
def test_builders_refuse_bad_ids(builder: Callable[[str], str], job_id: str) -> None:
    with pytest.raises(BadRequest):
        builder(job_id)


def test_subjects_match_the_design() -> None:
    assert tasks_subject("j-1") == "imagegen.tasks.j-1"
    assert results_subject("j-1") == "imagegen.results.j-1"
    assert events_subject("j-1", "progress") == "imagegen.events.j-1.progress"
    assert events_filter("j-1") == "imagegen.events.j-1.*"
    for kind in ("accepted", "started", "progress", "completed", "failed", "cancelled"):
        assert events_subject("j", kind).split(".") == ["imagegen", "events", "j", kind]


def test_unknown_event_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        events_subject("j", "exploded")


def test_job_id_round_trips_through_subjects() -> None:
    job_id = new_job_id()
    assert job_id_from_subject(tasks_subject(job_id)) == job_id
    assert job_id_from_subject(results_subject(job_id)) == job_id
    assert job_id_from_subject(events_subject(job_id, "failed")) == job_id


@pytest.mark.parametrize("subject", ["imagegen", "imagegen.tasks", "other.tasks.j", "imagegen.tasks.a*"])
def test_job_id_from_bad_subject(subject: str) -> None:
    with pytest.raises(BadRequest):
        job_id_from_subject(subject)


def test_new_job_id_is_valid_and_unique() -> None:
    ids = [new_job_id() for _ in range(500)]
    assert all(validate_job_id(job_id) == job_id for job_id in ids)
    assert len(set(ids)) == len(ids)


def test_new_job_id_carries_the_current_utc_time() -> None:
    # A few seconds either way: this VM's clock is stepped now and then (a CI run once read the
    # id's second after the `after` taken next). Local time or a stale clock would be hours off.
    slack = timedelta(seconds=5)
    before = datetime.now(UTC).replace(microsecond=0)
    job_id = new_job_id()
    after = datetime.now(UTC)
    match = re.match(r"^(\d{8}-\d{6})-", job_id)
    assert match, job_id
    stamp = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert before - slack <= stamp <= after + slack


def test_new_job_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_700_000_000.0]
    real_gmtime = time.gmtime
    monkeypatch.setattr(time, "gmtime", lambda secs=None: real_gmtime(clock[0]))
    ids = []
    for step in (0, 1, 59, 3600, 86_400, 86_400 * 400):
        clock[0] = 1_700_000_000.0 + step
        ids.append(new_job_id())
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
