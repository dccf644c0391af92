"""Running the `imagegen` command from tests as a person would: a subprocess, pointed at one
stack with `--nats-url` and that stack's client credentials.

The URL goes on the command line because a recorded local stack (`imagegen up` in the folder the
command runs in) wins over the environment: a developer's own stack must never answer a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.stack import LocalStack
from tests.conftest import REPO

COMMAND = [sys.executable, "-m", "shared.cli.main"]


def cli_env(stack: LocalStack | None = None, **extra: str) -> dict[str, str]:
    """The environment of a command run as `stack`'s client identity."""
    return {**os.environ, **(stack.client_env() if stack else {}), **extra}


def cli_args(*args: str, stack: LocalStack | None = None, nats_url: str | None = None) -> list[str]:
    url = stack.nats_url if stack else nats_url
    return [*COMMAND, *(["--nats-url", url] if url else []), *args]


def imagegen(
    *args: str,
    stack: LocalStack | None = None,
    nats_url: str | None = None,
    cwd: Path = REPO,
    timeout: float = 120,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run `imagegen ARGS` against `stack` (as its client identity) or `nats_url`."""
    return subprocess.run(
        cli_args(*args, stack=stack, nats_url=nats_url),
        cwd=cwd,
        env=cli_env(stack, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
