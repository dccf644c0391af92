"""Wire messages: errors that name the field, codecs, and plain JSON for any client."""

from __future__ import annotations

import json

import msgspec
import pytest

from shared.contract.codec import decode_json, decode_msgpack, encode_json, encode_msgpack
from shared.contract.errors import BadRequest
from shared.contract.messages import (
    Accepted,
    BatchResult,
    ErrorReply,
    ItemResult,
    JobEvent,
    RenderItem,
    RenderTask,
)
from shared.contract.style import Style
from shared.sources.csv import SubmitCsv
from shared.sources.db import SubmitDb


def field_of(payload: bytes, type_: type[object]) -> BadRequest:
    with pytest.raises(BadRequest) as err:
        decode_json(payload, type_)
    assert err.value.code == 400
    return err.value


# --- decode errors name the field ---------------------------------------------------------------


def test_valid_submit_decodes() -> None:
    submit = decode_json(b'{"column": "name", "csv": "name\\nx\\n", "style": {"size": 32}}', SubmitCsv)
    assert submit.column == "name"
    assert submit.csv == "name\nx\n"
    assert submit.style.size == 32
    assert submit.has_header is True and submit.name_template == "{row}"


def test_the_source_tag_is_optional_on_its_own_subject_and_checked_when_given() -> None:
    plain = decode_json(b'{"column": "name", "csv": "x"}', SubmitCsv)
    tagged = decode_json(b'{"source": "csv", "column": "name", "csv": "x"}', SubmitCsv)
    assert plain == tagged
    assert field_of(b'{"source": "db", "column": "name", "csv": "x"}', SubmitCsv).field == "source"


def test_column_index_decodes_as_int() -> None:
    assert decode_json(b'{"column": 2, "csv": "a"}', SubmitCsv).column == 2


def test_nested_wrong_type_names_the_path() -> None:
    err = field_of(b'{"column": "name", "style": {"size": "big"}}', SubmitCsv)
    assert err.field == "style.size"
    assert "int" in err.message


def test_out_of_range_names_the_field() -> None:
    err = field_of(b'{"column": "name", "style": {"size": 0}}', SubmitCsv)
    assert err.field == "style.size"


def test_missing_required_field_is_named() -> None:
    err = field_of(b'{"csv": "name\\nx\\n"}', SubmitCsv)
    assert err.field == "column"
    assert "missing" in err.message.lower()


def test_unknown_field_is_named() -> None:
    err = field_of(b'{"column": "name", "bogus": 1}', SubmitCsv)
    assert err.field == "bogus"
    assert "unknown" in err.message.lower()


def test_list_item_path() -> None:
    payload = b'{"data_source": "shop", "query": "SELECT 1", "column": "c", "params": [1, {"a": 1}, 3]}'
    err = field_of(payload, SubmitDb)
    assert err.field == "params[1]"


def test_negative_column_index_is_refused() -> None:
    assert field_of(b'{"column": -1, "csv": "a"}', SubmitCsv).field == "column"


def test_bad_job_id_is_refused() -> None:
    for job_id in ("a.b", "a b", "a/b", "*", ">", ""):
        payload = json.dumps({"column": "c", "csv": "a", "job_id": job_id}).encode()
        assert field_of(payload, SubmitCsv).field == "job_id", job_id


@pytest.mark.parametrize("payload", [b"{not json", b'{"column": "a",', b"", b"\xff\xfe"])
def test_malformed_json_says_malformed(payload: bytes) -> None:
    err = field_of(payload, SubmitCsv)
    assert "malformed" in err.message.lower()


def test_wrong_top_level_type_is_not_called_malformed() -> None:
    err = field_of(b"[]", SubmitCsv)
    assert "malformed" not in err.message.lower()
    assert "object" in err.message.lower()


# --- codecs --------------------------------------------------------------------------------------


def make_task() -> RenderTask:
    return RenderTask(
        job_id="20250101-000000-abcd",
        attempt=2,
        batch=7,
        items=[
            RenderItem(0, "苹果 Apple", "0"),
            RenderItem(1, "", "1", error="row 2: empty text in column 'name'"),
            RenderItem(2, "line\nbreak 😀", "x-2"),
        ],
        style=Style(size=64, color="#ff0000"),
    )


def test_render_task_msgpack_round_trip() -> None:
    task = make_task()
    data = encode_msgpack(task)
    assert isinstance(data, bytes)
    back = decode_msgpack(data, RenderTask)
    assert back == task
    assert back.items[1].error is not None and back.items[2].text == "line\nbreak 😀"
    assert back.style.size == 64 and back.style.color == "#ff0000"


def test_render_task_msgpack_is_not_json() -> None:
    data = encode_msgpack(make_task())
    with pytest.raises(ValueError):
        json.loads(data)


def test_render_task_bad_msgpack_names_the_field() -> None:
    raw = msgspec.msgpack.decode(encode_msgpack(make_task()))
    raw["attempt"] = 0
    with pytest.raises(BadRequest) as err:
        decode_msgpack(msgspec.msgpack.encode(raw), RenderTask)
    assert err.value.field == "attempt"


def test_render_task_garbage_msgpack_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        decode_msgpack(b"\xc1\xc1\xc1", RenderTask)


def test_accepted_is_plain_json_with_the_documented_keys() -> None:
    reply = Accepted(
        job_id="job-1",
        status="accepted",
        results_subject="imagegen.results.job-1",
        events_subject="imagegen.events.job-1.*",
    )
    parsed = json.loads(encode_json(reply))
    assert parsed == {
        "job_id": "job-1",
        "status": "accepted",
        "results_subject": "imagegen.results.job-1",
        "events_subject": "imagegen.events.job-1.*",
    }
    assert decode_json(json.dumps(parsed).encode(), Accepted) == reply


def test_duplicate_flag_appears_when_set() -> None:
    reply = Accepted(job_id="j", status="running", results_subject="r", events_subject="e", duplicate=True)
    assert json.loads(encode_json(reply))["duplicate"] is True


def test_results_and_events_are_plain_json() -> None:
    result = BatchResult(
        job_id="j",
        attempt=1,
        batch=0,
        items=[
            ItemResult(index=0, ok=True, file="/out/j/0.png", width=10, height=20, bytes=300),
            ItemResult(index=1, ok=False, error="empty text"),
        ],
    )
    parsed = json.loads(encode_json(result))
    assert parsed["items"][0] == {
        "index": 0,
        "ok": True,
        "file": "/out/j/0.png",
        "width": 10,
        "height": 20,
        "bytes": 300,
    }
    assert parsed["items"][1] == {"index": 1, "ok": False, "error": "empty text"}
    assert isinstance(parsed["at"], str)

    event = JobEvent(job_id="j", kind="completed", status="completed", total=2, done=1, failed=1)
    parsed_event = json.loads(encode_json(event))
    assert {k: parsed_event[k] for k in ("job_id", "kind", "status", "total", "done", "failed")} == {
        "job_id": "j",
        "kind": "completed",
        "status": "completed",
        "total": 2,
        "done": 1,
        "failed": 1,
    }


def test_a_client_can_write_a_submit_by_hand() -> None:
    body = json.dumps({"column": 0, "csv": "a,b\n", "has_header": False, "style": {"size": 20}})
    submit = decode_json(body.encode(), SubmitCsv)
    assert (submit.column, submit.has_header, submit.style.size) == (0, False, 20)


def test_error_reply_shape() -> None:
    parsed = json.loads(encode_json(ErrorReply(code=400, error="no such column", field="column")))
    assert parsed == {"code": 400, "error": "no such column", "field": "column"}
