"""`imagegen nats setup`, `config` and `credentials`: the NATS side of a deployment.

`setup` declares every stream, bucket and durable consumer as the identity in the environment,
which under the permissions layout must be the admin one (compose and Kubernetes run it once
before the services; the local stack runs it itself). `config` prints the layout's
`authorization {}` block with each password read from nats-server's environment, for an
operator who runs their own nats-server. `credentials` makes the passwords of a deployment that
has no secret store (compose's one-shot init step): one random password per identity in a file
of its own, `nats.env` for nats-server, and the gateway's API key; files already there are kept,
so a restart changes nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import string
from pathlib import Path

import nats.errors

from shared.cli.output import emit
from shared.contract.errors import ImagegenError
from shared.runtime.bus.connect import connect
from shared.runtime.bus.permissions import (
    ADMIN,
    IDENTITIES,
    from_environment,
    password_variable,
    render_authorization,
)
from shared.runtime.settings import Settings
from shared.workflow.topology import declare_all


async def setup(args: argparse.Namespace) -> int:
    # The environment's identity (IMAGEGEN_NATS_USER...), never the local stack's client one.
    settings = Settings(nats_url=args.nats_url) if args.nats_url else Settings()
    nc = await connect(settings, "imagegen-nats-setup", retry_for=args.wait)
    try:
        declared = await declare_all(nc.jetstream(), settings)
    except nats.errors.TimeoutError as exc:
        # The server answers nothing to a request the identity may not send: it only logs it.
        raise ImagegenError(
            f"NATS did not answer the JetStream API ({exc or type(exc).__name__}); "
            f"does {settings.nats_user or 'this connection'} have the {ADMIN} identity's rights?"
        ) from exc
    finally:
        await nc.close()
    emit(
        args,
        {"consumers": declared},
        "declared the streams, buckets and consumers:\n  " + "\n  ".join(declared),
    )
    return 0


def config(args: argparse.Namespace) -> int:
    print(render_authorization(from_environment), end="")
    return 0


GATEWAY_API_KEY = "gateway-api-key"  # the file name of the gateway's API key beside the passwords
SERVER_ENV = "nats.env"  # NATS_PASSWORD_<IDENTITY>=... lines for nats-server's environment
# Letters and digits only: nats-server parses a `$VARIABLE`'s value like configuration text, and
# refuses to start on a password that begins with "-" (1 in 64 of token_urlsafe's).
_ALPHABET = string.ascii_letters + string.digits


def _secret(path: Path) -> str:
    """The secret in `path`, made (random, 0600) when the file is not there yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    value = "".join(secrets.choice(_ALPHABET) for _ in range(32))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def credentials(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    passwords = {identity: _secret(folder / identity) for identity in IDENTITIES}
    _secret(folder / GATEWAY_API_KEY)
    server_env = folder / f".{SERVER_ENV}.tmp"
    fd = os.open(server_env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(f"{password_variable(name)}={value}\n" for name, value in passwords.items())
    server_env.replace(folder / SERVER_ENV)
    emit(
        args,
        {"folder": str(folder), "identities": sorted(passwords)},
        f"NATS passwords of {len(passwords)} identities, {SERVER_ENV} and {GATEWAY_API_KEY} in {folder}",
    )
    return 0
