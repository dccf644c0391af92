"""Prometheus metrics of every service, one registry per process, served on a configurable port.

The names are the operator's contract (dashboards and alerts in docs/operations.md use them):
items rendered and failed, render and encode seconds, batch latency, tasks in flight, publish
back-pressure waits and jobs by state. Consumer lag is NATS's own (see the runbook).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

REGISTRY = CollectorRegistry(auto_describe=True)


class BulkHistogram(Collector):
    """A histogram fed a batch's observations at once, exported like prometheus_client's own.

    A replica observes two durations per item; `Histogram.observe` takes two locks per value,
    which came to a fifth of a replica's parent-process CPU at 512-item tasks (py-spy). Here a
    batch is bucketed without a lock and added under one.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(sorted(buckets))  # +Inf is implicit: the last count
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        # Each value counts in the first bucket whose bound it does not exceed: sorted, the
        # values up to a bound are found by bisection, a few steps a bucket instead of a Python
        # step a value (a replica observes two values per item).
        ordered = sorted(values)
        upto = [bisect_right(ordered, bound) for bound in self.bounds] + [len(ordered)]
        counts = [upto[0], *(b - a for a, b in pairwise(upto))]
        total = sum(ordered)
        with self.lock:
            self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
            self.sum += total

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self.lock:
            counts, total = list(self.counts), self.sum
        cumulative, running = [], 0
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=total)


_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

ITEMS_RENDERED = Counter("imagegen_items_rendered", "Items rendered and stored", registry=REGISTRY)
ITEMS_FAILED = Counter("imagegen_items_failed", "Items that failed, by stage", ["stage"], registry=REGISTRY)
RENDER_SECONDS = BulkHistogram(
    "imagegen_render_seconds", "Layout and rasterisation time per item", buckets=_FAST, registry=REGISTRY
)
ENCODE_SECONDS = BulkHistogram(
    "imagegen_encode_seconds", "PNG/WebP encoding time per item", buckets=_FAST, registry=REGISTRY
)
BATCH_SECONDS = Histogram(
    "imagegen_batch_seconds",
    "Time from a task's fetch to its ack (render, store, publish)",
    buckets=_BATCH,
    registry=REGISTRY,
)
TASKS_IN_FLIGHT = Gauge(
    "imagegen_tasks_in_flight", "Render tasks fetched and not yet acked", registry=REGISTRY
)
PUBLISH_WAITS = Counter(
    "imagegen_publish_backpressure_waits",
    "Times a task publish had to wait and retry because JetStream refused it (limits, outage)",
    registry=REGISTRY,
)
PUBLISH_WAIT_SECONDS = Counter(
    "imagegen_publish_backpressure_seconds",
    "Seconds spent waiting to publish tasks",
    registry=REGISTRY,
)
JOBS = Counter("imagegen_jobs", "Job state transitions seen by this process", ["state"], registry=REGISTRY)
RESULTS_RECORDED = Counter(
    "imagegen_results_recorded",
    "Batch results recorded in the ledger (duplicate = a redelivery counted once; refused = one "
    "that does not fit its job)",
    ["outcome"],
    registry=REGISTRY,
)
MESSAGES_REJECTED = Counter(
    "imagegen_messages_rejected",
    "Malformed messages terminated, by subject kind",
    ["kind"],
    registry=REGISTRY,
)
MESSAGES_FAILED = Counter(
    "imagegen_messages_failed",
    "Handler failures on a message, by subject kind and what followed (retried with a delay, "
    "gave_up: recorded as failed and terminated, dropped: even recording the failure failed)",
    ["kind", "outcome"],
    registry=REGISTRY,
)


def serve_metrics(port: int, addr: str = "0.0.0.0") -> None:  # all interfaces: scraped from outside
    """Expose /metrics on `port` (0 picks a free port; a negative port disables it)."""
    if port >= 0:
        start_http_server(port, addr=addr, registry=REGISTRY)
