"""`imagegen nats credentials`: compose's init step makes every NATS password and the gateway's
API key; nats-server takes them from `nats.env`, each service from its own file
(`IMAGEGEN_NATS_PASSWORD_FILE`), and a second run changes nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import nats
import nats.errors
import pytest

from devstack import NatsServer
from shared.cli.commands.nats import GATEWAY_API_KEY, SERVER_ENV
from shared.cli.main import main
from shared.runtime.bus.connect import auth_options
from shared.runtime.bus.permissions import IDENTITIES, from_environment, render_authorization
from shared.runtime.settings import Settings


def test_every_secret_is_made_once_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "credentials"
    assert main(["nats", "credentials", str(folder)]) == 0
    names = {*IDENTITIES, GATEWAY_API_KEY, SERVER_ENV}
    assert {path.name for path in folder.iterdir()} == names
    first = {name: (folder / name).read_text() for name in names}
    for name in names:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    passwords = [first[identity].strip() for identity in IDENTITIES]
    assert len(set(passwords)) == len(passwords)
    assert all(len(p) == 32 and p.isascii() and p.isalnum() for p in passwords)  # never a leading "-"
    assert f"NATS passwords of {len(IDENTITIES)} identities" in capsys.readouterr().out

    assert main(["nats", "credentials", str(folder)]) == 0
    assert {name: (folder / name).read_text() for name in names} == first


async def test_nats_server_and_services_use_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "credentials"
    assert main(["nats", "credentials", str(folder)]) == 0
    for line in (folder / SERVER_ENV).read_text().splitlines():
        variable, _, value = line.partition("=")
        monkeypatch.setenv(variable, value)  # as `set -a; . nats.env` does for nats-server
    server = NatsServer.start(tmp_path / "nats", config_text=render_authorization(from_environment))
    try:
        for identity in IDENTITIES:
            settings = Settings(nats_user=identity, nats_password_file=folder / identity)
            nc = await nats.connect(server.url, allow_reconnect=False, **auth_options(settings))
            await nc.close()
        wrong = Settings(nats_user="renderer", nats_password_file=folder / "admin")
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(server.url, allow_reconnect=False, connect_timeout=2, **auth_options(wrong))
    finally:
        server.stop()
