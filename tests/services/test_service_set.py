"""The service set end to end on real NATS JetStream and Postgres: submit, render, count, announce."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from pathlib import Path

import asyncpg
import msgspec
import pytest

from devstack.stack import SERVICES, LocalStack
from shared.client import Client
from shared.contract.errors import BadRequest
from shared.contract.messages import BatchResult, JobEvent
from shared.contract.style import Style
from shared.contract.subjects import CONSUMER_NOTIFIER, STREAM_RESULT_QUEUE
from shared.render import RenderEngine
from shared.runtime.bus.discovery import ping_all
from shared.runtime.bus.permissions import ADMIN, RENDERER
from shared.sources.csv import SubmitCsv
from shared.sources.db import SubmitDb
from tests.conftest import DATA, REPO, SampleDb
from tests.images import corners_transparent, decode_rgba, ink_bbox, ink_pixels
from tests.shared.render.test_tofu import assert_no_tofu
from tests.waiting import consumer_settled, log_entries

PRODUCTS = REPO / "examples" / "products.csv"


async def collect_events(client: Client, job_id: str) -> list[JobEvent]:
    return [event async for event in client.watch(job_id)]


async def collect_results(client: Client, job_id: str, items: int) -> list[BatchResult]:
    results: list[BatchResult] = []
    seen = 0

    async def read() -> None:
        nonlocal seen
        async for result in client.results(job_id):
            results.append(result)
            seen += len(result.items)
            if seen >= items:
                return

    await asyncio.wait_for(read(), 60)
    return results


async def test_every_service_answers_ping(stack: LocalStack, client: Client) -> None:
    replies = await ping_all(client.nc, wait=0.5)
    names = [reply["name"] for reply in replies]
    for name in SERVICES:
        assert name in names, f"{name} did not answer $SRV.PING ({names})"
    assert names.count("renderer") == 2


async def test_csv_job_end_to_end(client: Client, db: asyncpg.Connection) -> None:
    text = PRODUCTS.read_text("utf-8")
    accepted = await client.submit(SubmitCsv(csv=text, column="name"))
    assert accepted.status == "accepted"
    events = await asyncio.wait_for(collect_events(client, accepted.job_id), 60)

    kinds = [event.kind for event in events]
    assert kinds[0] == "accepted" and kinds[1] == "started" and kinds[-1] == "completed", kinds
    assert set(kinds[2:-1]) <= {"progress"}
    final = events[-1]
    rows = text.count("\n") - 1
    assert (final.total, final.done, final.failed) == (rows, rows, 0)
    assert final.output is not None

    row = await db.fetchrow("SELECT * FROM imagegen_jobs WHERE job_id = $1", accepted.job_id)
    assert row["status"] == "completed"
    assert (row["total_items"], row["done_items"], row["failed_items"]) == (rows, rows, 0)
    assert row["created_at"] <= row["started_at"] <= row["finished_at"]
    batches = await db.fetchval(
        "SELECT count(*) FROM imagegen_job_batches WHERE job_id = $1", accepted.job_id
    )
    assert batches == row["total_batches"] >= 1

    # Every image decodes, is transparent around the text and has ink; and it is exactly what
    # the render engine draws for that text (rendering is deterministic).
    names = [line.split(",")[1] for line in text.splitlines()[1:]]
    engine = RenderEngine()
    files = sorted(Path(final.output).glob("*.png"), key=lambda p: int(p.stem))
    # Named by the file's own row numbers: the header is row 1, so data rows start at 2.
    assert [int(p.stem) for p in files] == list(range(2, rows + 2))
    for path in files:
        data = path.read_bytes()
        image = decode_rgba(data)
        assert corners_transparent(image), path
        assert ink_pixels(image) > 200, path
        expected = decode_rgba(engine.render(_csv_cell(text, int(path.stem) - 2), Style()).data)
        assert image.size == expected.size
        assert image.tobytes() == expected.tobytes(), f"{path.name} differs from a local render"
    assert len(names) == rows


def _csv_cell(text: str, index: int) -> str:
    return list(csv.DictReader(io.StringIO(text)))[index]["name"]


async def test_chinese_glyphs_are_real_not_boxes() -> None:
    """A box drawn for a missing glyph looks the same for every character: real ones differ."""
    engine = RenderEngine()
    chars = "东西城区街道北京烤鸭茶"
    glyphs = {c: decode_rgba(engine.render(c, Style(size=48)).data) for c in chars}
    renders = {c: g.getchannel("A").tobytes() for c, g in glyphs.items()}
    assert len(set(renders.values())) == len(chars), "two characters drew the same glyph"
    for c, image in glyphs.items():
        assert ink_pixels(image) > 50, c
        bbox = ink_bbox(image)
        assert bbox is not None
    # And none is the .notdef box of the font the engine chose for it (compared bitmap to
    # bitmap with a code point that font does not map; test_tofu checks the detector sees tofu).
    assert_no_tofu(engine, chars)


@pytest.mark.slow
async def test_two_renderers_share_a_real_data_job(client: Client) -> None:
    """2,978 Chinese county names: both replicas render, every item exactly once."""
    text = (DATA / "areas.csv").read_text("utf-8")
    rows = text.count("\n") - 1
    accepted = await client.submit(SubmitCsv(csv=text, column="name", batch_size=16))
    final = await client.wait(accepted.job_id, timeout=120)
    assert (final.kind, final.done, final.failed) == ("completed", rows, 0)
    results = await collect_results(client, accepted.job_id, rows)
    indices = sorted(item.index for result in results for item in result.items)
    assert indices == list(range(rows))
    by_renderer: dict[str, int] = {}
    for result in results:
        by_renderer[result.renderer] = by_renderer.get(result.renderer, 0) + len(result.items)
    assert len(by_renderer) == 2, by_renderer
    assert min(by_renderer.values()) > rows * 0.1, by_renderer
    # A sample from both replicas: each image is what the engine draws for its row's text.
    names = [row["name"] for row in csv.DictReader(io.StringIO(text))]
    engine = RenderEngine()
    sample = [item for result in results for item in result.items][::60]
    assert final.output is not None
    for item in sample:
        assert item.ok and item.file and item.width and item.height and item.bytes
        assert item.file == f"{item.row}.png" and item.row == item.index + 2
        path = Path(final.output) / item.file
        image = decode_rgba(path.read_bytes())
        assert image.size == (item.width, item.height) and path.stat().st_size == item.bytes
        assert corners_transparent(image) and ink_pixels(image) > 50, item
        expected = decode_rgba(engine.render(names[item.index], Style()).data)
        assert image.tobytes() == expected.tobytes(), f"{item.file} differs from a local render"


async def test_redelivered_result_is_counted_once(
    stack: LocalStack, client: Client, db: asyncpg.Connection
) -> None:
    accepted = await client.submit(SubmitCsv(csv="name\n你好\nworld\n", column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.done, final.failed) == (2, 0)
    [result] = await collect_results(client, accepted.job_id, 2)
    # Publish the same batch result again, without a message id so the stream keeps it:
    # the notifier sees a genuine second delivery and must not count it. (As a renderer: a
    # client may not publish results.)
    async with await stack.client(RENDERER) as renderer:
        await renderer.nc.publish(f"imagegen.results.{accepted.job_id}", msgspec.json.encode(result))
        await renderer.nc.flush()
    marker = await client.submit(SubmitCsv(csv="name\nmarker\n", column="name"))
    await client.wait(marker.job_id, timeout=60)  # results are handled in order: ours is done
    row = await db.fetchrow("SELECT * FROM imagegen_jobs WHERE job_id = $1", accepted.job_id)
    assert (row["done_items"], row["failed_items"], row["status"]) == (2, 0, "completed")
    events = await collect_events(client, accepted.job_id)
    assert [e.kind for e in events].count("completed") == 1


async def test_bad_rows_fail_alone_with_row_numbers(client: Client) -> None:
    csv_text = 'name,price\nGood one,1\n,2\n"ragged",3,extra\n好的,4\n'
    accepted = await client.submit(SubmitCsv(csv=csv_text, column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.status, final.done, final.failed) == (
        "completed",
        "completed_with_errors",
        2,
        2,
    )
    job = await client.get_job(accepted.job_id)
    # Each failure names the file's own row (the header is row 1) and why.
    reasons = {(f.index, f.row): f.reason for f in job.failures}
    assert set(reasons) == {(1, 3), (2, 4)}
    assert "empty" in reasons[1, 3]
    assert "3 fields, expected 2" in reasons[2, 4]


async def test_client_job_id_makes_submits_idempotent(client: Client, db: asyncpg.Connection) -> None:
    request = SubmitCsv(csv="name\nonce\n", column="name", job_id="idem-test-1")
    first = await client.submit(request)
    second = await client.submit(request)
    assert first.job_id == second.job_id == "idem-test-1"
    assert (first.duplicate, second.duplicate) == (False, True)
    await client.wait("idem-test-1", timeout=60)
    assert await db.fetchval("SELECT count(*) FROM imagegen_jobs WHERE job_id = 'idem-test-1'") == 1
    job = await client.get_job("idem-test-1")
    assert (job.total, job.done) == (1, 1)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"{not json", None, "malformed"),
        (b'{"csv": "name\\nx\\n"}', "column", "missing required"),
        (b'{"csv": "name\\nx\\n", "column": "nope"}', "column", "no column 'nope'"),
        (b'{"csv": "name\\nx\\n", "column": "name", "style": {"size": "big"}}', "style.size", "int"),
        (b'{"csv": "name\\nx\\n", "column": "name", "style": {"color": "#12"}}', "style.color", ""),
        (b'{"csv": "name\\nx\\n", "column": 5}', "column", "past the last column"),
        (b'{"csv": "name\\nx\\n", "column": "name", "job_id": "../etc"}', "job_id", ""),
        (b'{"csv": "name\\nx\\n", "column": "name", "bogus": 1}', "bogus", "unknown field"),
        (b'{"csv": "", "column": "name"}', "csv", "empty"),
        (b'{"csv": "name\\n", "column": "name"}', "csv", "no data rows"),
        (b'{"column": "name"}', "csv", "exactly one"),
        (b'{"path": "../../etc/passwd", "column": "name"}', "path", "inside the allowed folder"),
    ],
)
async def test_bad_csv_submits_are_refused_with_the_field(
    client: Client, db: asyncpg.Connection, payload: bytes, field: str | None, words: str
) -> None:
    before = await db.fetchval("SELECT count(*) FROM imagegen_jobs")
    with pytest.raises(BadRequest) as info:
        await client.request("imagegen.submit.csv", payload)
    if field:
        assert info.value.field == field, str(info.value)
    assert words.lower() in str(info.value).lower()
    assert await db.fetchval("SELECT count(*) FROM imagegen_jobs") == before


async def test_csv_from_the_allowed_folder(client: Client, csv_dir: Path) -> None:

    # A GB18030 file with semicolons, as Excel in China writes it, from the allowed folder.
    names = [r["name"] for r in csv.DictReader(io.StringIO((DATA / "areas.csv").read_text("utf-8")))][:30]
    (csv_dir / "gbk.csv").write_bytes(("名称;价格\n" + "".join(f"{n};1\n" for n in names)).encode("gb18030"))
    accepted = await client.submit(SubmitCsv(path="gbk.csv", column="名称"))
    assert (accepted.detected["encoding"], accepted.detected["delimiter"]) == ("gb18030", ";")
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.done, final.failed) == (len(names), 0)


async def test_db_job_streams_a_query(client: Client, sample_db: SampleDb) -> None:
    db = sample_db.conn
    await db.execute("CREATE TABLE IF NOT EXISTS test_places (id int primary key, name text, province text)")
    await db.execute("TRUNCATE test_places")
    await sample_db.readable("test_places")

    rows = list(csv.DictReader(io.StringIO((DATA / "areas.csv").read_text("utf-8"))))[:500]
    await db.executemany(
        "INSERT INTO test_places VALUES ($1, $2, $3)",
        [(int(r["code"]), r["name"], r["provinceCode"]) for r in rows],
    )
    expected = sum(1 for r in rows if r["provinceCode"] == "11")
    accepted = await client.submit(
        SubmitDb(
            data_source="local",
            query="SELECT name, id FROM test_places WHERE province = $1 ORDER BY id",
            params=["11"],
            column="name",
            name_template="{row[id]}",
        )
    )
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.done, final.failed) == ("completed", expected, 0)
    assert final.output is not None
    names = sorted(p.name for p in Path(final.output).glob("*.png"))
    assert names == sorted(f"{r['code']}.png" for r in rows if r["provinceCode"] == "11")


@pytest.mark.parametrize(
    ("source", "query", "field"),
    [
        ("nowhere", "SELECT 1 AS name", "data_source"),
        ("local", "DELETE FROM imagegen_jobs", "query"),
        ("local", "SELECT 1 AS name; DROP TABLE imagegen_jobs", "query"),
        (
            "local",
            "WITH x AS (DELETE FROM imagegen_jobs RETURNING job_id) SELECT job_id AS name FROM x",
            "query",
        ),
        ("local", "SELECT * INTO stolen FROM imagegen_jobs", "query"),
        ("local", "SELECT nope FROM nowhere_table", "query"),
        ("local", "SELECT 1 AS other", "column"),
    ],
)
async def test_bad_db_submits_are_refused(client: Client, source: str, query: str, field: str) -> None:
    with pytest.raises(BadRequest) as info:
        await client.submit(SubmitDb(data_source=source, query=query, column="name"))
    assert info.value.field == field, str(info.value)


async def test_malformed_messages_are_terminated_and_services_survive(
    stack: LocalStack, client: Client
) -> None:
    def malformed(prefix: str) -> int:
        entries = log_entries(stack, None, "message.malformed")
        return len([e for e in entries if e["subject"].startswith(prefix)])

    # Garbage on every queue, as only a broken or hostile service could send it: as admin.
    tag = f"garbage-{secrets.token_hex(4)}"
    queues = {f"imagegen.tasks.{tag}": 3, "imagegen.requests.": 6, f"imagegen.results.{tag}": 3}
    before = {prefix: malformed(prefix) for prefix in queues}
    async with await stack.client(ADMIN) as admin:
        for subject in (
            f"imagegen.tasks.{tag}",
            "imagegen.requests.csv",
            "imagegen.requests.db",
            f"imagegen.results.{tag}",
        ):
            for payload in (b"\xff\x00not anything", b'{"job_id": 5}', b"[]"):
                await admin.js.publish(subject, payload)
        accepted = await client.submit(SubmitCsv(csv="name\nstill alive\n", column="name"))
        final = await client.wait(accepted.job_id, timeout=60)
        assert (final.kind, final.done) == ("completed", 1)
        for proc in stack.processes:
            assert proc.process.poll() is None, f"{proc.name} died"
        # Every queue settles (all it delivered is acknowledged or terminated)...
        for stream, consumer in (
            ("IMAGEGEN_TASKS", "renderer"),
            ("IMAGEGEN_REQUESTS", "ingest-csv"),
            ("IMAGEGEN_REQUESTS", "ingest-db"),
            (STREAM_RESULT_QUEUE, CONSUMER_NOTIFIER),
        ):
            await consumer_settled(admin.js, stream, consumer)
    # ...and each bad message was refused once: terminated, not nak'ed into redeliveries.
    assert {prefix: malformed(prefix) - before[prefix] for prefix in queues} == queues


async def test_preview_fonts_and_validate(client: Client) -> None:
    png = await client.preview("预览 Preview", Style(size=32, color="#336699"))
    image = decode_rgba(png)
    assert corners_transparent(image) and ink_pixels(image) > 100
    fonts = await client.fonts()
    assert any(f.name == "sans" or "sans" in f.name for f in fonts)
    with pytest.raises(BadRequest) as info:
        await client.request("imagegen.validate", b'{"font": "no-such-font"}')
    assert info.value.field == "style.font"
    with pytest.raises(BadRequest):
        await client.request("imagegen.preview", b'{"text": ""}')
