"""The gateway's HTTP API against the real service set: upload, follow SSE, download, decode.

Every call goes through a real `python -m services.gateway` process to the session's services
on real NATS and Postgres; images are checked with Pillow, as the users' programs would.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import NatsServer
from devstack.stack import LocalStack
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.client import Client
from shared.contract.subjects import BUCKET_IMAGES
from shared.runtime.bus.permissions import RENDERER
from shared.runtime.services import REQUIRED
from shared.runtime.settings import Settings
from shared.sources import SOURCES
from shared.sources.csv import SubmitCsv
from tests.conftest import REPO, SampleDb
from tests.gateways import MAX_UPLOAD
from tests.images import corners_transparent, decode_rgba, ink_pixels

PRODUCTS = REPO / "examples" / "products.csv"


def assert_error(response: httpx.Response, code: int, field: str | None = None) -> dict[str, Any]:
    """The response is the JSON error shape of the NATS replies, with that code and field."""
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) >= {"code", "error", "field"} and body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert body["field"] == field, body
    return body


async def sse_events(http: httpx.AsyncClient, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Read `/jobs/{id}/events` to its end; returns each frame as {id, event, data}."""
    events: list[dict[str, Any]] = []
    async with http.stream("GET", f"/jobs/{job_id}/events", timeout=timeout) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if line == "":
                if "data" in frame:
                    events.append(frame)
                frame = {}
            elif line.startswith(":"):
                continue
            else:
                key, _, value = line.partition(":")
                frame[key] = json.loads(value.strip()) if key == "data" else value.strip()
    return events


async def upload(http: httpx.AsyncClient, text: str, **fields: str) -> httpx.Response:
    files = {"file": ("products.csv", text.encode("utf-8"), "text/csv")}
    return await http.post("/generate/csv", files=files, data=fields)


# --- health, docs, render helpers ----------------------------------------------------------------


async def test_health_is_ready_with_the_services(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["nats"] is True and body["missing"] == []
    assert body["sources_unserved"] == []
    for name in REQUIRED:
        assert body["services"][name] >= 1


async def test_openapi_and_console_are_served(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    for path in ("/jobs/{job_id}/events", "/jobs/{job_id}/zip", "/jobs/{job_id}/manifest"):
        assert path in schema["paths"]
    for spec in SOURCES.values():  # one route per registered source, its request a component
        assert f"/generate/{spec.name}" in schema["paths"]
        assert spec.request.__name__ in schema["components"]["schemas"]
    assert "multipart/form-data" in schema["paths"]["/generate/xlsx"]["post"]["requestBody"]["content"]
    asyncapi = (await http.get("/asyncapi.json")).json()
    assert asyncapi["asyncapi"].startswith("3.") and "submitXlsx" in asyncapi["operations"]
    assert (await http.get("/docs")).status_code == 200
    console = await http.get("/")
    assert console.status_code == 200 and "<html" in console.text.lower()
    assert "default-src 'self'" in console.headers["content-security-policy"]
    assert (await http.get("/static/console.js")).status_code == 200


async def test_fonts_validate_and_preview(http: httpx.AsyncClient) -> None:
    fonts = (await http.get("/fonts")).json()
    assert "sans" in {font["name"] for font in fonts}

    ok = await http.post("/validate", json={"size": 20, "color": "#336699"})
    assert ok.status_code == 200 and ok.json()["style"]["size"] == 20
    assert_error(await http.post("/validate", json={"color": "not-a-colour"}), 400, "style.color")
    assert_error(await http.post("/validate", content=b"{oops"), 400)

    preview = await http.post("/preview", json={"text": "绿茶 Green Tea", "style": {"size": 40}})
    assert preview.status_code == 200, preview.text
    assert preview.headers["content-type"] == "image/png"
    image = decode_rgba(preview.content)
    assert corners_transparent(image) and ink_pixels(image) > 100
    assert_error(await http.post("/preview", json={"style": {}}), 400, "text")
    assert_error(await http.post("/preview", json={"text": "x", "style": {"size": 0}}), 400)
    # The renderer's 422 (nothing left to draw) stays a 422: a client's mistake, not a 500.
    assert_error(await http.post("/preview", json={"text": "\u0011"}), 422)


# --- the CSV path end to end ---------------------------------------------------------------------


async def test_csv_upload_follow_sse_and_download_the_zip(http: httpx.AsyncClient) -> None:
    text = PRODUCTS.read_text("utf-8")
    rows = text.count("\n") - 1
    response = await upload(http, text, column="name", size="32", color="#aa0000", padding="4,8")
    assert response.status_code == 202, response.text
    accepted = response.json()
    job_id = accepted["job_id"]
    assert accepted["links"]["events"] == f"/jobs/{job_id}/events"

    events = await sse_events(http, job_id)
    kinds = [frame["event"] for frame in events]
    assert kinds[0] == "accepted" and kinds[-1] == "completed", kinds
    assert [int(frame["id"]) for frame in events] == list(range(1, len(events) + 1))
    final = events[-1]["data"]
    assert (final["total"], final["done"], final["failed"]) == (rows, rows, 0)

    job = (await http.get(f"/jobs/{job_id}")).json()
    assert job["status"] == "completed" and job["done"] == rows

    listing = (await http.get(f"/jobs/{job_id}/files")).json()
    assert listing["total"] == rows
    names = [f["name"] for f in listing["files"]]
    assert names == [f"{row}.png" for row in range(2, rows + 2)]  # natural order, not "10, 11, 2"
    one = await http.get(listing["files"][0]["url"])
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"

    archive = await http.get(f"/jobs/{job_id}/zip")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    assert f"{job_id}.zip" in archive.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [*names, "manifest.csv"]  # the manifest maps files to rows
        manifest = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
        assert sorted(int(line["row"]) for line in manifest) == list(range(2, rows + 2))
        assert {line["file"] for line in manifest} == set(names)
        for name in names:
            data = zf.read(name)
            image = decode_rgba(data)
            assert corners_transparent(image), name
            assert ink_pixels(image) > 50, name
            # Red ink, as asked: the most opaque pixel is red.
            r, g, b, _ = max(image.get_flattened_data(), key=lambda px: px[3])
            assert r > 150 and g < 60 and b < 60, (name, r, g, b)
        assert zf.read(names[0]) == one.content

    # A reconnect after the end is told there is nothing more (204 stops an EventSource).
    again = await http.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(len(events))})
    assert again.status_code == 204
    listed = (await http.get("/jobs", params={"limit": 100})).json()["jobs"]
    assert job_id in {j["job_id"] for j in listed}


async def test_database_job_by_json(http: httpx.AsyncClient) -> None:
    body = {
        "data_source": "local",
        "query": "SELECT '第' || g || '行 row ' || g AS t FROM generate_series(1, 5) AS g",
        "column": "t",
        "name_template": "item-{index}",
    }
    response = await http.post("/generate/db", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    events = await sse_events(http, job_id)
    assert events[-1]["event"] == "completed" and events[-1]["data"]["done"] == 5
    names = [f["name"] for f in (await http.get(f"/jobs/{job_id}/files")).json()["files"]]
    assert names == [f"item-{i}.png" for i in range(5)]

    assert_error(await http.post("/generate/db", json={**body, "data_source": "nope"}), 400, "data_source")
    assert_error(await http.post("/generate/db", json={**body, "query": "DELETE FROM x"}), 400, "query")
    assert_error(await http.post("/generate/db", json={"data_source": "local"}), 400)


async def test_running_job_zip_conflict_then_cancel_and_resume(
    http: httpx.AsyncClient, sample_db: SampleDb
) -> None:
    # A job that is running for sure, however fast the machine: its query streams five rows,
    # then sleeps while the test's gate is closed (the `busy` source allows pg_sleep).
    await sample_db.conn.execute("CREATE TABLE IF NOT EXISTS test_gate (closed boolean NOT NULL)")
    await sample_db.conn.execute("TRUNCATE test_gate; INSERT INTO test_gate VALUES (true)")
    await sample_db.readable("test_gate")
    body = {
        "data_source": "busy",
        "query": "SELECT 'row ' || g AS t FROM generate_series(1, 5) AS g"
        " UNION ALL SELECT pg_sleep(600)::text FROM test_gate WHERE closed",
        "column": "t",
    }
    response = await http.post("/generate/db", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert_error(await http.get(f"/jobs/{job_id}/zip"), 409, "job_id")
    cancelled = await http.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    events = await sse_events(http, job_id)
    assert events[-1]["event"] == "cancelled"
    assert (await http.get(f"/jobs/{job_id}/zip")).status_code == 200
    # Retrying a cancelled job resumes it: a new attempt reads the source again (the gate is
    # open now) and renders what the first did not.
    await sample_db.conn.execute("UPDATE test_gate SET closed = false")
    retried = await http.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["attempt"], retried.json()["status"]) == (2, "accepted")
    events = await sse_events(http, job_id)
    assert (events[-1]["event"], events[-1]["data"]["attempt"], events[-1]["data"]["done"]) == (
        "completed",
        2,
        5,
    ), events[-1]
    # Finished: a second retry has nothing failed to re-render.
    assert_error(await http.post(f"/jobs/{job_id}/retry"), 409, "job_id")


# --- errors --------------------------------------------------------------------------------------


async def test_bad_submits_are_json_errors_naming_the_field(http: httpx.AsyncClient) -> None:
    text = PRODUCTS.read_text("utf-8")
    body = assert_error(await upload(http, text, column="nme"), 400, "column")
    assert "nme" in body["error"]
    assert_error(await upload(http, text), 400, "column")
    assert_error(await upload(http, text, column="name", color="bogus"), 400, "style.color")
    assert_error(await upload(http, text, column="name", size="0"), 400, "style.size")
    assert_error(await upload(http, text, column="name", style="[1]"), 400, "style")
    assert_error(await upload(http, text, column="name", job_id="../etc"), 400, "job_id")
    no_file = {"notes": ("notes.txt", b"not the csv", "text/plain")}
    assert_error(await http.post("/generate/csv", data={"column": "name"}, files=no_file), 400, "file")
    # A form post that is not a multipart upload is not accepted at all (see tests/security).
    assert_error(await http.post("/generate/csv", data={"column": "name"}), 415, "Content-Type")


async def test_unknown_jobs_and_unsafe_names(http: httpx.AsyncClient, stack: LocalStack) -> None:
    assert_error(await http.get("/jobs/no-such-job"), 404)
    assert_error(await http.get("/jobs/no-such-job/events"), 404)
    assert_error(await http.get("/jobs/no-such-job/zip"), 404)
    assert_error(await http.get("/jobs/bad.id"), 400, "job_id")
    assert_error(await http.get("/nowhere"), 404)

    response = await upload(http, "t\nhello\n", column="t")
    job_id = response.json()["job_id"]
    await sse_events(http, job_id)
    folder = Path(stack.output_dir) / job_id
    outside = folder.parent / f"{job_id}-secret.png"
    outside.write_bytes(b"\x89PNG secret")
    (folder / "link.png").symlink_to(outside)
    (folder / ".hidden.png").write_bytes(b"\x89PNG hidden")
    try:
        for name in (
            "..%2F" + outside.name,
            "%2E%2E",
            ".hidden.png",
            "0.txt",
            "a%5Cb.png",
            "%2Fetc%2Fpasswd",
        ):
            response = await http.get(f"/jobs/{job_id}/files/{name}")
            assert response.status_code in (400, 404), (name, response.status_code)
            assert "secret" not in response.text
            assert_error(response, response.status_code)
        link = await http.get(f"/jobs/{job_id}/files/link.png")  # a link out of the folder
        assert_error(link, 404, "name")  # opened without following links: no such file
        assert_error(await http.get(f"/jobs/{job_id}/files/9.png"), 404, "name")
        names = [f["name"] for f in (await http.get(f"/jobs/{job_id}/files")).json()["files"]]
        assert names == ["2.png"]  # neither the link nor the hidden file
        with zipfile.ZipFile(io.BytesIO((await http.get(f"/jobs/{job_id}/zip")).content)) as zf:
            assert zf.namelist() == ["2.png", "manifest.csv"]
    finally:
        outside.unlink()


async def test_uploads_over_the_limit_get_413(http: httpx.AsyncClient) -> None:
    big = "t\n" + ("x" * 1000 + "\n") * (MAX_UPLOAD // 1000 + 10)
    assert_error(await upload(http, big, column="t"), 413)
    assert_error(await http.post("/validate", content=b"{" + b" " * (2 * 1024 * 1024) + b"}"), 413)


# --- in process: auth and streamed-body limits -------------------------------------------------------


@pytest.fixture
async def app_client(stack: LocalStack) -> AsyncIterator[Client]:
    async with await stack.client() as client:
        yield client


@pytest.mark.slow
async def test_api_key_guards_the_api_but_not_health_or_console(
    app_client: Client, stack: LocalStack
) -> None:
    app = create_app(
        Settings(nats_url=stack.nats_url, output_dir=stack.output_dir),
        GatewaySettings(api_key="s3cret", max_body_bytes=1000),  # type: ignore[arg-type]
        client=app_client,
    )
    app.state.client = app_client  # the ASGI transport runs no lifespan
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        assert_error(await http.get("/fonts"), 401, "api_key")
        assert_error(await http.get("/fonts", headers={"X-API-Key": "wrong"}), 401, "api_key")
        assert (await http.get("/fonts", headers={"X-API-Key": "s3cret"})).status_code == 200
        assert (await http.get("/fonts", headers={"Authorization": "Bearer s3cret"})).status_code == 200
        assert (await http.get("/fonts", params={"api_key": "s3cret"})).status_code == 200
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["auth"] is True
        assert (await http.get("/")).status_code == 200

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b" " * 500

        response = await http.post("/validate", content=chunks(), headers={"X-API-Key": "s3cret"})
        assert_error(response, 413)


async def test_images_from_the_object_store(app_client: Client, stack: LocalStack) -> None:
    """With `IMAGEGEN_OUTPUT_STORE=object` images are read from the `imagegen-images` bucket."""
    accepted = await app_client.submit(SubmitCsv(csv="t\nhello\n", column="t"))
    await app_client.wait(accepted.job_id, timeout=30)
    png = (Path(stack.output_dir) / accepted.job_id / "2.png").read_bytes()
    async with await stack.client(RENDERER) as renderer:  # renderers write images; clients read
        store = await renderer.js.object_store(BUCKET_IMAGES)
        await store.put(f"{accepted.job_id}/2.png", png)
        await store.put(f"{accepted.job_id}/10.png", png)
        await store.put(f"{accepted.job_id}x/9.png", png)  # another job's: not listed
    app = create_app(
        Settings(nats_url=stack.nats_url, output_dir=stack.output_dir / "elsewhere", output_store="object"),
        GatewaySettings(),
        client=app_client,
    )
    app.state.client = app_client
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        listing = (await http.get(f"/jobs/{accepted.job_id}/files")).json()
        assert [f["name"] for f in listing["files"]] == ["2.png", "10.png"]
        one = await http.get(listing["files"][0]["url"])
        assert one.status_code == 200 and one.content == png
        assert_error(await http.get(f"/jobs/{accepted.job_id}/files/7.png"), 404, "name")
        with zipfile.ZipFile(io.BytesIO((await http.get(f"/jobs/{accepted.job_id}/zip")).content)) as zf:
            assert zf.namelist() == ["2.png", "10.png"] and zf.read("10.png") == png


async def test_health_is_503_without_the_services(tmp_path: Path) -> None:
    server = NatsServer.start(tmp_path)  # a NATS with no imagegen service on it
    try:
        async with await Client.connect(server.url) as client:
            app = create_app(Settings(nats_url=server.url), GatewaySettings(), client=client)
            app.state.client = client
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                body = assert_error(await http.get("/health"), 503)
                assert body["nats"] is True and body["status"] == "unavailable"
                assert body["missing"] == list(REQUIRED)
                assert body["sources_unserved"] == list(SOURCES)
                # Calls that need a service say so as a JSON 503, not a crash.
                assert_error(await http.get("/fonts"), 503)
    finally:
        server.stop()
