"""A render child warms its caches from the first task it receives: the common hanzi and the
task's first texts are cached before its items render, and the images are those of a cold engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.renderer.batch import WARM_SAMPLES, BatchRenderer
from services.renderer.worker import RenderWorker
from shared.contract.codec import encode_msgpack
from shared.contract.messages import RenderItem, RenderTask
from shared.contract.style import Style
from shared.render import FontCatalogue, RenderEngine
from shared.runtime.settings import Settings

TEXTS = ["上海市浦东新区 Organic Tea 500g", "北京 旗舰店 ¥30.29", "东华门街道", "Fresh Milk 1L"]


def _task(texts: list[str], *, style: Style | None = None) -> RenderTask:
    items = [RenderItem(i, text, f"img-{i}", row=i + 2) for i, text in enumerate(texts)]
    items.append(RenderItem(len(texts), "", "bad", error="empty cell", row=len(texts) + 2))
    return RenderTask(job_id="warm-job", attempt=1, batch=0, items=items, style=style or Style())


def test_batch_warm_caches_common_hanzi_from_the_first_items() -> None:
    engine = RenderEngine(FontCatalogue.load(Settings().font_dirs))
    renderer = BatchRenderer(engine, None)
    assert renderer.warm(_task(TEXTS)) >= 3755
    latin = BatchRenderer(RenderEngine(engine.catalogue), None)
    assert latin.warm(_task(["Organic Green Tea"] * (WARM_SAMPLES + 4))) < 100  # no Han: no hanzi


@pytest.mark.slow
def test_the_child_warms_on_its_first_task_and_renders_what_a_cold_engine_does(tmp_path: Path) -> None:
    settings = Settings()
    worker = RenderWorker(font_dirs=settings.font_dirs, output_dir=tmp_path)
    worker.start()
    try:
        outcome = worker.run(encode_msgpack(_task(TEXTS)), timeout=120)
    finally:
        worker.stop()
    items = outcome.decoded()
    assert outcome.count == len(items) == len(TEXTS) + 1
    assert [item.ok for item in items] == [True] * len(TEXTS) + [False]
    assert items[-1].error == "empty cell"
    cold = RenderEngine(FontCatalogue.load(settings.font_dirs))
    for item, text in zip(items, TEXTS, strict=False):
        assert item.file is not None
        written = (tmp_path / "warm-job" / item.file).read_bytes()
        assert written == cold.render(text, Style()).data
