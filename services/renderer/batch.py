"""Rendering one task's items: CPU work only, run in the replica's render thread.

Each item is rendered on its own: an item that fails (bad text, over a limit, an engine bug)
fails alone with its reason, and the rest of the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ImagegenError
from shared.logging import get_logger
from shared.messages import RenderItem, RenderTask
from shared.render import RenderedImage, RenderEngine

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    item: RenderItem
    filename: str | None
    image: RenderedImage | None
    error: str | None


def render_batch(engine: RenderEngine, task: RenderTask) -> list[ItemOutcome]:
    outcomes = []
    for item in task.items:
        if item.error is not None:
            outcomes.append(ItemOutcome(item, None, None, item.error))
            continue
        try:
            image = engine.render(item.text, task.style)
        except ImagegenError as exc:
            outcomes.append(ItemOutcome(item, None, None, str(exc)))
            continue
        except Exception as exc:  # an engine bug must cost one item, not the batch
            log.exception("render.crashed", job_id=task.job_id, index=item.index)
            outcomes.append(ItemOutcome(item, None, None, f"internal render error: {exc!r}"))
            continue
        outcomes.append(ItemOutcome(item, f"{item.name}.{image.format}", image, None))
    return outcomes
