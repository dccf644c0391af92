"""Previews are isolated like batches: a preview too big for its time or memory is answered with
the reason, concurrent ones are refused as busy rather than piled up, a reply too large for NATS
is a 413 through the gateway, and afterwards the renderer answers the next preview, renders a
job, and is back to its memory baseline."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from shared.sources.csv import SubmitCsv
from tests.faults.conftest import FaultStack
from tests.faults.test_faults import DEADLINE
from tests.gateways import start_gateway
from tests.images import decode_rgba, ink_pixels

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * DEADLINE)]

# About 5,000 x 6,900 px with a 100 px blur: seconds of CPU and far more than 300 MB.
HUGE = {"text": "\n".join(["字字字字"] * 4), "style": {"size": 1000, "shadow": {"blur": 100}}}
SMALL = {"text": "预览 Preview", "style": {"size": 32}}


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children, in MiB."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(stat.parent.name))
    total = 0
    for each in pids:
        try:
            total += int(Path(f"/proc/{each}/statm").read_text().split()[1]) * 4096
        except OSError:
            continue
    return total / (1024 * 1024)


async def preview_until_ok(http: httpx.AsyncClient, timeout: float = 60) -> httpx.Response:
    """The next preview, once the renderer's preview child is back (busy answers are retried)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.post("/preview", json=SMALL)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.5)


@pytest.mark.renderers(1)
@pytest.mark.nats_config("max_payload: 65536")
@pytest.mark.stack_env({"IMAGEGEN_ITEM_TIMEOUT_SECONDS": "3", "IMAGEGEN_PREVIEW_MEMORY_MB": "300"})
async def test_huge_previews_fail_cleanly_and_the_renderer_goes_on(fault_stack: FaultStack) -> None:
    stack = fault_stack.stack
    renderer = next(p for p in stack.processes if p.name == "renderer")
    log_file = stack.state_dir / "gateway" / "gateway.log"
    log_file.parent.mkdir()
    gateway = await asyncio.to_thread(start_gateway, stack, log_file)  # it runs its own loop
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            first = await preview_until_ok(http)
            assert first.status_code == 200, first.text
            baseline = tree_rss_mb(renderer.process.pid)

            # One huge preview: refused for memory (413) or stopped at its timeout (422).
            huge = await http.post("/preview", json=HUGE)
            assert huge.status_code in (413, 422), huge.text
            assert any(word in huge.json()["error"] for word in ("memory", "hung")), huge.text

            # Eight at once: each answered (never a hang or a timeout), extra ones as busy.
            started = time.monotonic()
            answers = await asyncio.gather(*(http.post("/preview", json=HUGE) for _ in range(8)))
            codes = sorted(a.status_code for a in answers)
            print(f"8 huge previews answered {codes} in {time.monotonic() - started:.1f}s")
            assert set(codes) <= {413, 422, 503}, [a.text for a in answers]
            assert 503 in codes and any("try again" in a.json()["error"] for a in answers)

            # A PNG larger than the server's max_payload: a clear 413, not silence.
            wide = {"text": "汉字测试文本" * 750, "style": {"size": 24, "max_width": 3000}}
            too_big = await http.post("/preview", json=wide)
            assert too_big.status_code == 413, too_big.text
            assert "max_payload" in too_big.json()["error"]

            after = await preview_until_ok(http)
            assert after.status_code == 200 and ink_pixels(decode_rgba(after.content)) > 100
            now = tree_rss_mb(renderer.process.pid)
            print(f"renderer tree RSS: {baseline:.0f} MiB before, {now:.0f} MiB after")
            assert now < baseline + 150, (baseline, now)
    finally:
        gateway.process.terminate()
        gateway.process.wait(10)
    async with await stack.client() as client:
        job = SubmitCsv(csv="name\n" + "".join(f"作业 {i}\n" for i in range(50)), column="name")
        accepted = await client.submit(job)
        final = await client.wait(accepted.job_id, timeout=DEADLINE)
        assert (final.status, final.done, final.failed) == ("completed", 50, 0)
    assert renderer.process.poll() is None
