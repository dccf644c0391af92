"""Settings from the environment: a bad `IMAGEGEN_*` value is refused with an error that names
the variable to fix (and never echoes the value, which may hold a password)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.gateway.settings import GatewaySettings
from shared.runtime.settings import EnvSettings, Settings, SettingsError
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("IMAGEGEN_BATCH_SIZE", "abc", "valid integer"),
        ("IMAGEGEN_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("IMAGEGEN_ACK_WAIT_SECONDS", "-1", "greater than 0"),
        ("IMAGEGEN_LOG_FORMAT", "xml", "'console' or 'json'"),
        ("IMAGEGEN_OUTPUT_STORE", "s3", "'directory' or 'object'"),
        ("IMAGEGEN_DECLARE_TOPOLOGY", "perhaps", "valid boolean"),
        ("IMAGEGEN_NATS_URL", " ", "at least one server"),
        ("IMAGEGEN_DATA_SOURCES", "not json", "not valid JSON"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as err:
        Settings()
    assert err.value.field == variable, str(err.value)
    assert str(err.value).startswith(f"{variable}: ")
    assert words in err.value.message, err.value.message


def test_nats_url_is_named_as_imagegen_nats_url_when_set_through_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IMAGEGEN_NATS_URL", raising=False)
    monkeypatch.setenv("NATS_URL", "  ")
    with pytest.raises(SettingsError) as err:
        Settings()
    assert err.value.field == "IMAGEGEN_NATS_URL"


def test_an_error_inside_a_json_value_names_the_place_and_hides_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sources = '{"shop": {"dsn": "postgresql://reader:s3cret@db/shop", "max_concurrent": 0}}'
    monkeypatch.setenv("IMAGEGEN_DATA_SOURCES", sources)
    with pytest.raises(SettingsError) as err:
        Settings()
    assert err.value.field == "IMAGEGEN_DATA_SOURCES (shop.max_concurrent)"
    assert "s3cret" not in str(err.value)
    monkeypatch.setenv("IMAGEGEN_DATA_SOURCES", '{"shop": 5}')
    with pytest.raises(SettingsError) as err:
        Settings()
    assert err.value.field == "IMAGEGEN_DATA_SOURCES (shop)" and "valid dictionary" in err.value.message


def test_every_problem_is_listed_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_BATCH_SIZE", "many")
    monkeypatch.setenv("IMAGEGEN_LOG_LEVEL", "loud")
    with pytest.raises(SettingsError) as err:
        Settings()
    assert "IMAGEGEN_BATCH_SIZE: Input should be a valid integer" in str(err.value)
    assert "IMAGEGEN_LOG_LEVEL: Input should be" in str(err.value)


def test_good_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_BATCH_SIZE", "64")
    monkeypatch.setenv("IMAGEGEN_DATA_SOURCES", '{"shop": "postgresql://reader@db/shop"}')
    settings = Settings()
    assert settings.batch_size == 64
    assert settings.data_sources["shop"].dsn == "postgresql://reader@db/shop"


def test_the_gateway_settings_name_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert issubclass(GatewaySettings, EnvSettings)
    monkeypatch.setenv("IMAGEGEN_GATEWAY_PORT", "99999")
    with pytest.raises(SettingsError) as err:
        GatewaySettings()
    assert err.value.field == "IMAGEGEN_GATEWAY_PORT"


@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("services.renderer", "IMAGEGEN_BATCH_SIZE", "abc"),
        ("services.gateway", "IMAGEGEN_GATEWAY_PORT", "-5"),
    ],
)
def test_a_service_with_a_bad_value_exits_with_one_clear_line(module: str, variable: str, value: str) -> None:
    env = {**os.environ, variable: value}
    command = [sys.executable, "-m", module]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    service = module.split(".")[1]
    assert done.stderr.strip().splitlines()[-1].startswith(f"{service}: {variable}: "), done.stderr
