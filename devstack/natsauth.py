"""Credentials of the NATS permissions layout for a throwaway nats-server.

`NatsCredentials.generate()` makes a random password per identity of
`shared.runtime.bus.permissions`; `server_config()` is the nats-server configuration that
enforces the layout with them; `env(identity)` and `options(identity)` connect as one identity
(a service process, a client, the admin step that declares the topology). The local stack keeps
them in `nats-credentials.json` under its state folder, readable by its owner only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from shared.cli.stackfile import write_private
from shared.runtime.bus.permissions import IDENTITIES, inbox_prefix, literal, render_authorization

FILE_NAME = "nats-credentials.json"


@dataclass(frozen=True)
class NatsCredentials:
    """One password per identity of the layout."""

    passwords: dict[str, str]

    @classmethod
    def generate(cls) -> NatsCredentials:
        return cls({name: secrets.token_urlsafe(24) for name in IDENTITIES})

    @classmethod
    def load(cls, path: Path) -> NatsCredentials:
        return cls(msgspec.json.decode(path.read_bytes(), type=dict[str, str]))

    def save(self, path: Path) -> None:
        write_private(path, msgspec.json.encode(self.passwords))

    def server_config(self) -> str:
        """The nats-server configuration enforcing the layout with these passwords."""
        return render_authorization(lambda identity: literal(self.passwords[identity]))

    def env(self, identity: str) -> dict[str, str]:
        """The settings a process of `identity` connects with (IMAGEGEN_NATS_USER/PASSWORD)."""
        return {"IMAGEGEN_NATS_USER": identity, "IMAGEGEN_NATS_PASSWORD": self.passwords[identity]}

    def options(self, identity: str) -> dict[str, Any]:
        """nats-py connect options for `identity`, its own inbox prefix included."""
        return {
            "user": identity,
            "password": self.passwords[identity],
            "inbox_prefix": inbox_prefix(identity),
        }
