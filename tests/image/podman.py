"""podman for the image tests: run a command, read a container's state, clean up by label.

Every container, volume and network a test makes carries the label `imagegen-test=<run>`, so
one call removes them all, whatever failed on the way. Podman runs HEALTHCHECKs from systemd
timers, which hosts without systemd lack: `health_check()` runs one the way a timer would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# runc and ulimits the host allows, unless the caller (the Makefile) chose a configuration.
os.environ.setdefault("CONTAINERS_CONF", str(HERE / "containers.conf"))
LABEL = "imagegen-test"


class PodmanError(AssertionError):
    """A podman command failed; the message carries its output."""


def podman(*args: str | Path, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("podman")
    if binary is None:
        raise PodmanError("podman not found: `make system-deps` installs it")
    done = subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise PodmanError(
            f"podman {' '.join(map(str, args[:4]))} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done


def inspect(container: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("container", "inspect", container).stdout)
    return data[0]


def health_check(container: str) -> subprocess.CompletedProcess[str]:
    """Run the container's HEALTHCHECK once (exit 0: healthy)."""
    return podman("healthcheck", "run", container, check=False, timeout=60)


def health_log(container: str) -> str:
    """What the container's last health checks printed."""
    state = inspect(container)["State"]
    health = state.get("Health") or state.get("Healthcheck") or {}
    return "\n".join(str(entry.get("Output", "")) for entry in health.get("Log") or [])


def logs(container: str) -> str:
    done = podman("logs", container, check=False)
    return (done.stdout + done.stderr)[-4000:]


def remove_labelled(run: str) -> None:
    """Remove every container, volume and network labelled with this test run."""
    selector = f"label={LABEL}={run}"
    ids = podman("ps", "-aq", "--filter", selector, check=False).stdout.split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids, check=False)
    volumes = podman("volume", "ls", "-q", "--filter", selector, check=False).stdout.split()
    if volumes:
        podman("volume", "rm", "-f", *volumes, check=False)
