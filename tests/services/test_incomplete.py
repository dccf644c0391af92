"""An image that lost characters is never reported as a success: the item is `incomplete` in its
result, the manifest and the ledger, the job is completed_with_errors and counts it, the CLI exits
non-zero, and `strict` turns it into a failed item. U+E000 (private use) is in no bundled font."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.messages import item_status
from shared.contract.style import Style
from shared.render import RenderEngine
from shared.sources.csv import SubmitCsv
from tests.cli import imagegen
from tests.images import decode_rgba
from tests.services.ingest.csv.helpers import read_manifest

MISSING = "\ue000"


async def test_an_item_with_missing_characters_is_incomplete_everywhere(client: Client) -> None:
    accepted = await client.submit(SubmitCsv(csv=f"name\ncomplete 完整\nhalf {MISSING} 半\n", column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.status) == ("completed", "completed_with_errors")
    assert (final.done, final.failed, final.incomplete) == (2, 0, 1)
    assert "1 items lack characters" in (final.message or "")
    job = await client.get_job(accepted.job_id)
    [problem] = job.failures
    assert (problem.row, problem.kind) == (3, "incomplete") and MISSING in problem.reason
    manifest = read_manifest(final)
    assert (manifest[2]["status"], manifest[3]["status"]) == ("ok", "incomplete")
    assert manifest[3]["error"] == f"no font covers: {MISSING}"
    # The image itself is the engine's render of what could be drawn: there, but incomplete.
    async for result in client.results(accepted.job_id):
        statuses = {item.row: item_status(item) for item in result.items}
        assert statuses == {2: "ok", 3: "incomplete"}
        break
    assert final.output is not None
    drawn = decode_rgba((Path(final.output) / "3.png").read_bytes())
    expected = RenderEngine().render(f"half {MISSING} 半", Style())
    assert expected.missing_glyphs == (MISSING,)
    assert drawn.tobytes() == decode_rgba(expected.data).tobytes()


async def test_strict_fails_the_item_instead(client: Client) -> None:
    accepted = await client.submit(
        SubmitCsv(csv=f"name\nhalf {MISSING}\n", column="name", style=Style(strict=True))
    )
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.done, final.failed, final.incomplete) == (0, 1, 0)
    job = await client.get_job(accepted.job_id)
    assert job.failures[0].kind == "failed" and "no font covers: U+E000" in job.failures[0].reason


@pytest.mark.slow
def test_the_cli_exits_non_zero_for_incomplete_images(stack: LocalStack, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(f"name\nfine\nhalf {MISSING}\n", "utf-8")
    done = imagegen("submit", "csv", str(path), "--column", "name", "--wait", stack=stack)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 incomplete" in done.stderr and "row 3 incomplete: no font covers" in done.stderr
    rendered = imagegen("render", f"thai {MISSING} and text", "-o", str(tmp_path / "x.png"))
    assert rendered.returncode == 1 and "incomplete: no font covers" in rendered.stderr
    assert (tmp_path / "x.png").stat().st_size > 0  # written, but not a success
