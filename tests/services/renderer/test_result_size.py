"""A result that would not fit the server's max_payload (ingest sized its task for a larger
server) still goes out: without its items' texts, names and styles, never refused by NATS."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgspec
import nats
import pytest

from devstack.natsauth import NatsCredentials
from services.renderer.service import Renderer, TaskHeader
from shared.contract.codec import encode_json
from shared.contract.errors import TooLarge
from shared.contract.messages import BatchResult, ItemResult
from shared.runtime.bus.permissions import RENDERER
from tests.conftest import nats_options


async def test_an_oversized_result_is_slimmed_to_fit(
    nats_url: str, nats_credentials: NatsCredentials | None
) -> None:
    nc = await nats.connect(nats_url, **nats_options(nats_credentials, RENDERER))
    try:
        renderer = SimpleNamespace(ctx=SimpleNamespace(nc=nc, instance="renderer-1"))
        task = TaskHeader(job_id="j", attempt=1, batch=0, items=[])
        text = "汉" * 5000  # 15 KB a text: 128 of them are 1.9 MB of JSON
        items = [
            ItemResult(
                index=i, ok=True, row=i + 2, text=text, file=f"{i + 2}.png", width=9, height=9, bytes=99
            )
            for i in range(128)
        ]

        def message(items: list[ItemResult]) -> BatchResult:
            # The items as the render child sends them: already encoded.
            payload = Renderer._message(renderer, task, encode_json(items), 2)  # type: ignore[arg-type]
            assert len(payload) <= nc.max_payload
            return msgspec.json.decode(payload, type=BatchResult)

        slim = message(items)
        assert [item.index for item in slim.items] == list(range(128))
        assert all(item.ok and item.file and item.text is None for item in slim.items)
        small = message(items[:2])
        assert small.items == items[:2]
        assert (small.job_id, small.attempt, small.batch, small.renderer, small.delivery) == (
            "j",
            1,
            0,
            "renderer-1",
            2,
        )
        with pytest.raises(TooLarge):
            message(items * 300)  # 38,400 items
    finally:
        await asyncio.wait_for(nc.close(), 5)
