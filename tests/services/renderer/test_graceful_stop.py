"""SIGTERM to a renderer mid-job: it finishes and acks the batches in hand, exits cleanly, and
nothing is redelivered because of it (no batch outlived its ack wait unacknowledged)."""

from __future__ import annotations

import asyncio
import signal

import pytest

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.messages import BatchResult
from shared.runtime.bus.discovery import wait_for_services
from shared.sources.csv import SubmitCsv
from tests.conftest import DATA


@pytest.mark.slow
async def test_sigterm_mid_job_loses_and_repeats_nothing(stack: LocalStack, client: Client) -> None:
    extra = stack.spawn("renderer", instance="renderer-sigterm")
    try:
        await wait_for_services(client.nc, {"renderer": 3}, timeout=30)
        text = (DATA / "areas.csv").read_text("utf-8")
        rows = text.count("\n") - 1
        accepted = await client.submit(SubmitCsv(csv=text, column="name", batch_size=8))

        results: list[BatchResult] = []
        items = 0
        stopped = False

        async def read() -> None:
            nonlocal items, stopped
            async for result in client.results(accepted.job_id):
                results.append(result)
                items += len(result.items)
                if not stopped and result.renderer == "renderer-sigterm":
                    # It is working on this job right now: stop it mid-batch.
                    extra.process.send_signal(signal.SIGTERM)
                    stopped = True
                if items >= rows:
                    return

        await asyncio.wait_for(read(), 120)
        final = await client.wait(accepted.job_id, timeout=60)
        assert stopped, "the extra renderer never got work"
        code = await asyncio.to_thread(extra.process.wait, 60)
        assert code == 0, extra.log_file.read_text()[-2000:]

        assert (final.kind, final.done, final.failed) == ("completed", rows, 0)
        indices = sorted(item.index for r in results for item in r.items)
        assert indices == list(range(rows)), "an item is missing or was counted twice"
        redelivered = [(r.batch, r.renderer, r.delivery) for r in results if r.delivery > 1]
        assert redelivered == [], redelivered
        log = extra.log_file.read_text()
        assert "service.stopping" in log and "renderer.drained" in log
    finally:
        extra.stop()
        stack.processes.remove(extra)
