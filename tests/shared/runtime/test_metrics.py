"""BulkHistogram: exported exactly as prometheus_client's Histogram fed the same values."""

from __future__ import annotations

import random
import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from shared.runtime.metrics import BulkHistogram

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.1, 1.0, 2.5)


def exposition(registry: CollectorRegistry) -> list[str]:
    # The standard histogram also exports its creation time, which says nothing about values.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_same_exposition_as_prometheus_histogram() -> None:
    rng = random.Random(7)
    # On the bounds, between them, below the first and past the last.
    values = [*BUCKETS, 0.0, 0.00049, 2.5000001, 30.0] + [rng.uniform(0, 3) for _ in range(2_000)]
    standard, bulk = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("imagegen_x_seconds", "doc", buckets=BUCKETS, registry=standard)
    ours = BulkHistogram("imagegen_x_seconds", "doc", buckets=BUCKETS, registry=bulk)
    for value in values:
        reference.observe(value)
    ours.observe_many(values[:100])
    ours.observe_many([])
    ours.observe_many(values[100:])
    # Every line alike but the sum, which adds a batch's values before the total (float rounding).
    ours_lines, their_lines = exposition(bulk), exposition(standard)
    assert [line for line in ours_lines if "_sum" not in line] == [
        line for line in their_lines if "_sum" not in line
    ]
    (ours_sum,) = (float(line.split()[1]) for line in ours_lines if "_sum" in line)
    (their_sum,) = (float(line.split()[1]) for line in their_lines if "_sum" in line)
    assert ours_sum == pytest.approx(their_sum, rel=1e-12)
    assert 'imagegen_x_seconds_bucket{le="0.0005"} 3.0' in exposition(bulk)  # 0.0, 0.00049, 0.0005
    assert f"imagegen_x_seconds_count {float(len(values))}" in exposition(bulk)


def test_concurrent_batches_all_counted() -> None:
    registry = CollectorRegistry()
    ours = BulkHistogram("imagegen_y_seconds", "doc", buckets=BUCKETS, registry=registry)
    threads = [threading.Thread(target=ours.observe_many, args=([0.003] * 5_000,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "imagegen_y_seconds_count 40000.0" in exposition(registry)
    assert 'imagegen_y_seconds_bucket{le="0.002"} 0.0' in exposition(registry)
