"""Each service serves Prometheus metrics; after a job the named series carry its numbers."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import LocalStack
from shared.sources.csv import SubmitCsv
from tests.stacks import secured_nats


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@pytest.mark.slow
async def test_metrics_after_a_job(database_url: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="imagegen-metrics-"))
    nats, credentials = secured_nats(root / "nats")
    stack = LocalStack(
        root / "stack",
        renderers=1,
        nats_url=nats.url,
        nats_credentials=credentials,
        database_url=database_url,
        metrics=True,
    )
    try:
        await asyncio.to_thread(stack.start)
        async with await stack.client() as client:
            csv_text = "name\n" + "".join(f"指标 {i}\n" for i in range(50)) + '""\n'
            accepted = await client.submit(SubmitCsv(csv=csv_text, column="name", batch_size=10))
            await client.wait(accepted.job_id, timeout=60)
        ports = {p.name: p.metrics_port for p in stack.processes}
        assert all(ports.values()), ports
        renderer = scrape(ports["renderer"] or 0)
        assert renderer["imagegen_items_rendered_total"] == 50
        assert renderer["imagegen_items_failed_total{stage=render}"] == 1
        assert renderer["imagegen_render_seconds_count"] == 50
        assert renderer["imagegen_encode_seconds_count"] == 50
        assert renderer["imagegen_batch_seconds_count"] == 6
        assert renderer["imagegen_tasks_in_flight"] == 0
        notifier = scrape(ports["result-notifier"] or 0)
        assert notifier["imagegen_results_recorded_total{outcome=recorded}"] == 6
        assert notifier["imagegen_jobs_total{state=completed_with_errors}"] == 1
        ingest = scrape(ports["ingest"] or 0)
        assert "imagegen_publish_backpressure_waits_total" in ingest
        assert ingest["imagegen_jobs_total{state=accepted}"] == 1
    finally:
        stack.stop()
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)
