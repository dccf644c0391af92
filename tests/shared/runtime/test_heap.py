"""settle_after_start: start-up's objects leave the collector's passes; young passes are rarer."""

from __future__ import annotations

import json
import subprocess
import sys

# In a fresh interpreter: the test process's own collector settings stay as they are.
SCRIPT = """
import gc, json
from shared.runtime import heap
kept = [[i] for i in range(50_000)]  # long-lived objects built at start-up
before = (gc.get_threshold()[0], gc.get_freeze_count())
heap.settle_after_start()
print(json.dumps({"before": before, "after": (gc.get_threshold()[0], gc.get_freeze_count())}))
"""


def test_start_up_objects_are_frozen_and_young_passes_rarer() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["before"] == [700, 0]
    threshold, frozen = seen["after"]
    assert threshold == 20_000
    assert frozen >= 50_000  # the lists built before it, at least
