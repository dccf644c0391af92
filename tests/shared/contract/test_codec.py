"""Lenient decoding of stream messages from newer servers."""

from __future__ import annotations

import msgspec
import pytest

from shared.contract.codec import decode_lenient
from shared.contract.messages import JobEvent


def test_an_event_with_a_field_this_client_does_not_know_still_decodes() -> None:
    raw = {"job_id": "j1", "kind": "completed", "status": "completed", "done": 3, "from_the_future": 1}
    event = decode_lenient(msgspec.json.encode(raw), JobEvent)
    assert (event.job_id, event.kind, event.done) == ("j1", "completed", 3)


def test_a_wrong_type_is_still_an_error() -> None:
    raw = {"job_id": "j1", "kind": "completed", "status": "completed", "done": "three"}
    with pytest.raises(msgspec.ValidationError):
        decode_lenient(msgspec.json.encode(raw), JobEvent)
    with pytest.raises(msgspec.ValidationError):
        decode_lenient(b"[1, 2]", JobEvent)
