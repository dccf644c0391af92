"""RenderEngine.warm: caches filled ahead of a job, never a different image, never a failure."""

from __future__ import annotations

from shared.contract.style import Style
from shared.render import RenderEngine
from shared.render.warm import common_han

from .helpers import style

SAMPLES = ["上海市浦东新区 Organic Tea 500g", "北京 旗舰店 ¥30.29"]


def test_common_han_is_gb2312_level_one() -> None:
    han = common_han()
    assert len(han) == len(set(han)) == 3755
    assert han[0] == "啊" and han[-1] == "座"  # first and last of level 1, in code order
    assert all("\u4e00" <= ch <= "\u9fff" for ch in han)


def test_warm_caches_samples_and_common_hanzi(engine: RenderEngine) -> None:
    s = style(font="sans-sc", size=40)
    warm = RenderEngine(engine.catalogue)
    cached = warm.warm(s, SAMPLES)
    assert cached >= 3755  # every level-1 hanzi at this size, plus the samples' pieces
    cold = RenderEngine(engine.catalogue)
    for text in [*SAMPLES, "东华门街道 景山街道 Honey 12.5kg", "座 啊"]:
        assert warm.render(text, s).data == cold.render(text, s).data
    before = warm.faces.cached_masks
    warm.render("东华门街道", s)  # level-1 characters: nothing new to rasterise
    assert warm.faces.cached_masks == before


def test_warm_without_han_or_at_huge_sizes_skips_the_common_set(engine: RenderEngine) -> None:
    latin = RenderEngine(engine.catalogue)
    assert latin.warm(style(size=40), ["Organic Green Tea", "Fresh Milk 1L"]) < 50
    huge = RenderEngine(engine.catalogue)
    assert huge.warm(style(font="sans-sc", size=400), SAMPLES) < 50  # would not fit a quarter of the cache


def test_warm_never_raises(engine: RenderEngine) -> None:
    fresh = RenderEngine(engine.catalogue)
    assert fresh.warm(Style(color="not-a-colour"), SAMPLES) == 0  # built without parse_style
    assert fresh.warm(style(), ["", "\u0000\u0001", "ok 好"]) > 0  # bad samples are skipped
