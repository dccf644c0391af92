"""Settings of the gateway, read from `IMAGEGEN_GATEWAY_*` environment variables.

The connection to NATS and the output folder come from the shared `Settings` (`IMAGEGEN_NATS_URL`,
`IMAGEGEN_OUTPUT_DIR`...); only what is HTTP-specific lives here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.runtime.settings import EnvSettings


class GatewaySettings(EnvSettings):
    """HTTP knobs of the gateway. Field `x` is set by `IMAGEGEN_GATEWAY_X`."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535, description="0 picks a free port")] = 8080
    public_url: str | None = Field(
        default=None, description="The URL users reach the gateway at (behind a proxy); shown in logs."
    )
    # Comma-separated (or a JSON list): browsers on these origins may call the API.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names requests may name (DNS-rebinding guard); loopback names, this host's "
        "name and PUBLIC_URL's host are always allowed. `*` allows any.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Every API call needs it (X-API-Key or Bearer). Listening beyond loopback without "
        "one, the gateway makes a random key, logs the console URL with it and writes it to API_KEY_FILE.",
    )
    api_key_file: Path | None = Field(
        default=None,
        description="The API key's file: read when it exists (beyond loopback, without API_KEY), "
        "else where a generated key is written (0600).",
    )
    max_event_streams_per_client: Annotated[int, Field(ge=1)] = 8
    max_upload_bytes: Annotated[int, Field(ge=1)] = 256 * 1024 * 1024
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024
    request_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    sse_keepalive_seconds: Annotated[float, Field(gt=0)] = 15.0
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 5.0
    max_list_files: Annotated[int, Field(ge=1)] = 10_000
    webfont_cache_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "imagegen-webfonts",
        description="Where the console's web-font slices are kept once made (made again if unwritable).",
    )

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def on_loopback(host: str) -> bool:
    """True when the gateway listens only where this machine alone can reach it."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
