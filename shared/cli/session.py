"""Reaching the service set from a command: which NATS, with which credentials, failing fast."""

from __future__ import annotations

import argparse
import os
from typing import Any

import nats.errors

from shared.cli import stackfile
from shared.client import Client, ServiceUnavailable
from shared.runtime.bus.connect import connect_options
from shared.runtime.settings import Settings


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings of the client: `--nats-url`, else the running local stack (`imagegen up`), else
    the environment (`IMAGEGEN_NATS_URL`, `NATS_URL`, credentials), else the default."""
    if getattr(args, "nats_url", None):
        return Settings(nats_url=args.nats_url)  # credentials still come from the environment
    stack = stackfile.read(stackfile.state_dir(None))
    if stack is not None:
        return stack_settings(stack)
    return Settings()


def stack_settings(stack: stackfile.StackInfo) -> Settings:
    """Settings of the client identity `imagegen up` recorded for its stack."""
    values: dict[str, Any] = {"nats_url": stack.nats_url}
    values |= {k.removeprefix("IMAGEGEN_").lower(): v for k, v in stack.client_env.items()}
    return Settings.model_validate(values)


async def _quiet(exc: Exception) -> None:
    """nats-py prints every connection error with a traceback; the CLI reports it once."""


async def connect(args: argparse.Namespace) -> Client:
    """A client for one command: fail fast when NATS is unreachable instead of retrying for
    minutes (the services retry for ever; a person at a shell wants the error now)."""
    settings = settings_for(args)
    options = connect_options(settings, f"imagegen-cli@{os.uname().nodename}")
    options.update(connect_timeout=3, max_reconnect_attempts=2, reconnect_time_wait=1, error_cb=_quiet)
    servers = options.pop("servers")
    try:
        client = await Client.connect(servers, **options)
    except (OSError, nats.errors.Error) as exc:
        raise ServiceUnavailable(
            f"cannot reach NATS at {settings.nats_url} ({exc or type(exc).__name__}); "
            "is the stack up (`imagegen up`, `imagegen status`)?"
        ) from exc
    # nats-py uses one setting for the first connect and for reconnects: once connected, ride out
    # a NATS restart for two minutes while following a long job.
    client.nc.options["max_reconnect_attempts"] = 120
    return client
