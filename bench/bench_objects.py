"""Reading an upload from the object store: chunk by chunk (imagegen's reader) against nats-py.

Ingest reads a job's upload whole before its first row (`shared/sources/files.py`). imagegen
reads every chunk with a direct get (`shared/storage/chunks.py`); nats-py's `ObjectStore.get`
reads through an ordered push consumer. Both write into memory here and are timed alternately,
in the same run, on a throwaway nats-server; the bytes read are compared with what was put.

Run: .venv/bin/python bench/bench_objects.py [--megabytes 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.js.api import ObjectStoreConfig  # noqa: E402

from devstack.nats import NatsServer  # noqa: E402
from shared.storage.chunks import object_chunks  # noqa: E402

BUCKET = "bench-objects"


async def run(url: str, megabytes: int, rounds: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.create_object_store(BUCKET, config=ObjectStoreConfig(bucket=BUCKET))
    store = await js.object_store(BUCKET)
    data = os.urandom(megabytes * 1_000_000)
    info = await store.put("upload", data)
    ratios = []
    for n in range(rounds):
        started = time.perf_counter()
        ours = io.BytesIO()
        async for chunk in object_chunks(js, BUCKET, info):
            ours.write(chunk)
        chunked = time.perf_counter() - started
        started = time.perf_counter()
        theirs = io.BytesIO()
        await store.get("upload", writeinto=theirs)
        pushed = time.perf_counter() - started
        assert ours.getvalue() == data and theirs.getvalue() == data, "a reader lost bytes"
        ratios.append(chunked / pushed)
        print(
            f"round {n + 1}: chunk by chunk {chunked:.3f} s ({megabytes / chunked:.0f} MB/s), "
            f"nats-py's get {pushed:.3f} s: {chunked / pushed:.2f}x its time"
        )
    print(f"chunk by chunk takes {statistics.median(ratios):.2f}x nats-py's time (median of {rounds})")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store_dir:
        server = NatsServer.start(Path(store_dir))
        try:
            asyncio.run(run(server.url, args.megabytes, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
