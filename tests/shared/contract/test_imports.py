"""The contract is light: importing it (and the source plug-ins' requests) loads no imaging library,
no NATS client and no database driver, so a thin client pays for none of them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("PIL", "fontTools", "nats", "asyncpg", "openpyxl")


def modules_after_import(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after `statement`."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_importing_the_contract_loads_no_engine_nats_or_driver() -> None:
    loaded = modules_after_import(
        "import shared.contract, shared.contract.messages, shared.contract.codec, shared.contract.subjects"
    )
    assert "shared" in loaded  # the import itself happened
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_the_render_engine_does_load_pillow() -> None:
    # The check above can fail: the same probe sees Pillow when the engine is imported.
    assert "PIL" in modules_after_import("import shared.render")


def test_the_client_and_the_source_registry_load_no_engine_or_driver() -> None:
    loaded = modules_after_import("import shared.client, shared.sources, shared.asyncapi")
    assert {"shared", "nats"} <= loaded  # the client does speak NATS
    assert not loaded & {"PIL", "fontTools", "asyncpg", "openpyxl"}, loaded & set(HEAVY)
