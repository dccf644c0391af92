"""The AsyncAPI document is generated from the registry and the Structs, and the official AsyncAPI
parser (npm `@asyncapi/parser`, run with node) accepts it without errors or warnings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shared.asyncapi import document
from shared.contract import subjects
from shared.sources import SOURCES

TOOL = Path(__file__).resolve().parents[1] / "tools" / "asyncapi"


def test_every_source_and_stream_is_a_channel() -> None:
    doc = document()
    addresses = {channel["address"] for channel in doc["channels"].values()}
    for spec in SOURCES.values():
        assert spec.submit_subject in addresses and spec.requests_subject in addresses
    for subject in (subjects.FONTS, subjects.PREVIEW, subjects.JOBS_GET, subjects.JOBS_RETRY):
        assert subject in addresses
    assert "imagegen.events.{job_id}.{kind}" in addresses
    # Payloads are the Structs' own schemas: a source's options appear in its request schema.
    schemas = doc["components"]["schemas"]
    assert "sheet" in schemas["SubmitXlsx"]["properties"]
    assert "data_source" in schemas["SubmitDb"]["properties"]


@pytest.mark.slow
def test_the_official_parser_accepts_it(tmp_path: Path) -> None:
    assert (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir(), "run `make node-deps` (make test does)"
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document()))
    done = subprocess.run(
        ["node", str(TOOL / "validate.js"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, verdict["problems"] or done.stderr
    assert verdict["parsed"] and not verdict["problems"]
    assert len(verdict["channels"]) == len(document()["channels"])


@pytest.mark.slow
def test_the_parser_check_can_fail(tmp_path: Path) -> None:
    # A broken reference must be reported, so the test above is not vacuous.
    doc = document()
    doc["components"]["messages"]["JobEvent"]["payload"] = {"$ref": "#/components/schemas/Nothing"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    done = subprocess.run(
        ["node", str(TOOL / "validate.js"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert any(
        p["code"] == "invalid-ref" for p in json.loads(done.stdout.strip().splitlines()[-1])["problems"]
    )
