"""The gateway's walls, each attack of issue 12 as a case that must be refused: cross-site
requests (CSRF), foreign host names (DNS rebinding), unbounded event streams, a gateway beyond
loopback with no key. Runs the real app in process against the session's NATS and services."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.stack import LocalStack
from services.gateway.__main__ import ensure_key
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.client import Client
from shared.runtime.settings import Settings
from tests.gateways import start_gateway
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def app_client(stack: LocalStack) -> AsyncIterator[Client]:
    async with await stack.client() as client:
        yield client


def http(client: Client, stack: LocalStack, **gateway: object) -> httpx.AsyncClient:
    app = create_app(
        Settings(nats_url=stack.nats_url, output_dir=stack.output_dir), GatewaySettings(**gateway)
    )  # type: ignore[arg-type]
    app.state.client = client  # the ASGI transport runs no lifespan
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080")


CSV_FORM = {"column": "name"}
CSV_FILE = {"file": ("p.csv", b"name\nhello\n", "text/csv")}


async def test_cross_site_posts_are_refused(app_client: Client, stack: LocalStack) -> None:
    async with http(app_client, stack) as gw:
        own = {"Origin": "http://127.0.0.1:8080"}
        evil = {"Origin": "https://evil.example"}
        # A form or fetch() from another site, with whatever body a page can send without a preflight.
        for headers in (evil, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
            response = await gw.post("/generate/csv", files=CSV_FILE, data=CSV_FORM, headers=headers)
            assert (response.status_code, response.json()["field"]) == (403, "Origin"), headers
            assert (await gw.post("/jobs/x-1/cancel", headers=headers)).status_code == 403
        plain = await gw.post(
            "/generate/db", content=b'{"data_source": "local"}', headers={"Content-Type": "text/plain"}
        )
        assert (plain.status_code, plain.json()["field"]) == (415, "Content-Type")
        form = await gw.post("/generate/db", data={"query": "SELECT 1"}, headers=own)
        assert form.status_code == 415
        # The console itself (same origin) and API clients (no Origin at all) are served.
        same = await gw.post("/generate/csv", files=CSV_FILE, data=CSV_FORM, headers=own)
        assert same.status_code == 202, same.text
        assert (await gw.post("/generate/csv", files=CSV_FILE, data=CSV_FORM)).status_code == 202
        assert (await gw.post("/validate", json={"size": 20})).status_code == 200


async def test_a_configured_cors_origin_may_post(app_client: Client, stack: LocalStack) -> None:
    async with http(app_client, stack, cors_origins=["https://shop.example"]) as gw:
        headers = {"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"}
        assert (await gw.post("/validate", json={"size": 20}, headers=headers)).status_code == 200


async def test_foreign_host_names_are_refused(app_client: Client, stack: LocalStack) -> None:
    async with http(app_client, stack) as gw:
        # A rebinding attack: a hostile name that resolves to 127.0.0.1.
        response = await gw.get("/fonts", headers={"Host": "evil.example:8080"})
        assert (response.status_code, response.json()["field"]) == (400, "Host")
        assert (await gw.get("/fonts", headers={"Host": "localhost:8080"})).status_code == 200
    async with http(app_client, stack, allowed_hosts=["labels.example"]) as gw:
        assert (await gw.get("/fonts", headers={"Host": "labels.example"})).status_code == 200
    async with http(app_client, stack, public_url="https://img.example/") as gw:
        assert (await gw.get("/fonts", headers={"Host": "img.example"})).status_code == 200


async def test_event_streams_per_client_are_capped(
    stack: LocalStack, database_url: str, tmp_path: Path
) -> None:
    # A job that stays active (its request was never queued): its event stream stays open.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO imagegen_jobs (job_id, source, status, request)
               VALUES ('sse-cap', 'csv', 'accepted', '{}') ON CONFLICT DO NOTHING"""
        )
    finally:
        await conn.close()
    gateway = await asyncio.to_thread(
        start_gateway, stack, tmp_path / "gateway.log", IMAGEGEN_GATEWAY_MAX_EVENT_STREAMS_PER_CLIENT="2"
    )
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as gw, AsyncExitStack() as streams:
            readers = []  # keep each body iterator: dropping one closes its response
            for _ in range(2):
                response = await streams.enter_async_context(gw.stream("GET", "/jobs/sse-cap/events"))
                assert response.status_code == 200
                readers.append(response.aiter_bytes())
                assert await anext(readers[-1]) == b"retry: 2000\n\n"  # the stream is really open
            over = await gw.get("/jobs/sse-cap/events")
            assert (over.status_code, over.json()["code"]) == (429, 429)
            await streams.aclose()  # both closed: the slots are free again

            async def reopened() -> bool:  # the server notices a closed stream at its next write
                async with gw.stream("GET", "/jobs/sse-cap/events") as again:
                    return again.status_code == 200

            await eventually(reopened, "a slot free again after both streams closed")
    finally:
        gateway.process.terminate()
        gateway.process.wait(15)


def test_beyond_loopback_a_key_is_required_and_made_when_missing(tmp_path: Path) -> None:
    assert not ensure_key(GatewaySettings(host="127.0.0.1"))
    key_file = tmp_path / "key"
    gateway = GatewaySettings(host="0.0.0.0", api_key_file=key_file)
    assert ensure_key(gateway)
    assert gateway.api_key is not None and len(gateway.api_key.get_secret_value()) >= 32
    assert key_file.read_text().strip() == gateway.api_key.get_secret_value()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The next start (or a deployment's init step that made the file) keeps that key.
    again = GatewaySettings(host="0.0.0.0", api_key_file=key_file)
    assert not ensure_key(again) and again.api_key == gateway.api_key
    given = GatewaySettings(host="0.0.0.0", api_key="mine")  # type: ignore[arg-type]
    assert not ensure_key(given) and given.api_key is not None
    assert given.api_key.get_secret_value() == "mine"


async def test_no_reply_names_a_server_path(app_client: Client, stack: LocalStack) -> None:
    async with http(app_client, stack) as gw:
        accepted = await gw.post("/generate/csv", files=CSV_FILE, data=CSV_FORM)
        job_id = accepted.json()["job_id"]
        await app_client.wait(job_id, timeout=60)
        replies = [
            await gw.get(f"/jobs/{job_id}"),
            await gw.get("/jobs", params={"limit": 5}),
            await gw.get(f"/jobs/{job_id}/events"),
        ]
        server_paths = (str(stack.output_dir), str(stack.output_dir.resolve()))
        for reply in replies:
            assert reply.status_code == 200, reply.text
            assert not any(path in reply.text for path in server_paths), reply.text
        assert replies[0].json()["output"] == f"/jobs/{job_id}/files"
        completed = replies[2].text.split("event: completed\ndata: ", 1)[1].split("\n", 1)[0]
        manifest = json.loads(completed)["manifest"]
        assert manifest == f"/jobs/{job_id}/manifest"
        fetched = await gw.get(manifest)
        assert fetched.status_code == 200 and fetched.text.lstrip("\ufeff").startswith("row,text,file")
