"""Container health check for one imagegen service: exit 0 when healthy, 1 when not.

    python /app/deploy/healthcheck.py [SERVICE] [--timeout SECONDS] [--monitor-url URL]

Used by the image's HEALTHCHECK, compose's `healthcheck:` and the Kubernetes readiness probes.
It connects to NATS with the service's own settings (`IMAGEGEN_NATS_URL` and the user/password,
token, credentials-file and TLS settings, so it works wherever the service can connect) and
checks two things:

1. some instance of SERVICE answers `$SRV.PING.<SERVICE>` (the NATS services API): the service
   is registered and its event loop answers requests;
2. when a monitoring URL is given (`--monitor-url`, or `IMAGEGEN_HEALTHCHECK_MONITOR_URL`), the
   NATS server's `/connz` lists an open connection of *this* container's process: its connection
   name is `IMAGEGEN_INSTANCE`, or `<service>@<hostname>:<pid>`. Without it, check 1 cannot tell
   one replica from another. For a NATS cluster give every server's monitoring URL,
   comma-separated: the process is connected to one of them, and an unreachable one is skipped;
3. for the renderer with the directory store (`IMAGEGEN_OUTPUT_STORE=directory`, the default),
   that this process may write to the output folder (`IMAGEGEN_OUTPUT_DIR`): a volume owned by
   another uid would fail every item it renders.

SERVICE defaults to the one PID 1 runs (`imagegen serve NAME` or `python -m services.NAME`), so
the image's HEALTHCHECK needs no argument. The script only imports what the services import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

from shared.runtime.services import SERVICES


def service_of_pid1() -> str | None:
    """The service PID 1 runs, read from its command line; None when it is not a service."""
    try:
        argv = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return service_in_argv(argv)


def service_in_argv(argv: list[str]) -> str | None:
    """`... serve NAME` or `... -m services.NAME` -> NAME (with dashes); None otherwise."""
    for i, arg in enumerate(argv):
        if arg == "serve" and i + 1 < len(argv) and argv[i + 1] in SERVICES:
            return argv[i + 1]
        if arg.startswith("services."):
            name = arg.removeprefix("services.").replace("_", "-")
            if name in SERVICES:
                return name
    return None


async def ping(service: str, timeout: float) -> list[dict[str, Any]]:
    """Every `$SRV.PING.<service>` reply that arrives within `timeout` seconds."""
    import nats

    from shared.runtime.bus.connect import connect_options
    from shared.runtime.bus.permissions import inbox_prefix
    from shared.runtime.settings import Settings

    async def quiet(exc: Exception) -> None:
        """nats-py prints every connect error with a traceback by default; main() reports one."""

    # The service's own identity and inbox: the only inbox its NATS user may subscribe to.
    options = connect_options(
        Settings(), f"healthcheck:{service}@{socket.gethostname()}", inbox_prefix=inbox_prefix(service)
    )
    # A probe must fail fast, never sit in the services' reconnect-for-ever loop. (nats-py
    # treats max_reconnect_attempts=0 as "no limit" on the first connect: use 1.)
    options.update(
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        connect_timeout=timeout,
        error_cb=quiet,
    )
    nc = await nats.connect(**options)
    try:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish(f"$SRV.PING.{service}", b"", reply=inbox)
        replies: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # The first reply is enough; give the others a moment so the message can count them.
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left if not replies else min(left, 0.2))
            except Exception:
                break
            if not msg.data:  # a status message: 503 "no responders" when nobody listens
                break
            replies.append(json.loads(msg.data))
        return replies
    finally:
        await nc.close()


def own_connection(service: str, monitor_urls: str, timeout: float) -> str | None:
    """The name of this container's NATS connection as some server's `/connz` lists it, or None.

    `monitor_urls` is one monitoring URL or several, comma-separated (the servers of a cluster);
    a server that does not answer is skipped, and when none answers the last error is raised.
    """
    instance = os.environ.get("IMAGEGEN_INSTANCE")
    prefix = f"{service}@{socket.gethostname()}:"  # the services' default instance name

    def ours(name: str) -> bool:
        return name == instance if instance else name.startswith(prefix)

    failure: Exception | None = None
    answered = False
    for monitor_url in filter(None, (url.strip() for url in monitor_urls.split(","))):
        url = f"{monitor_url.rstrip('/')}/connz?state=open&limit=100000"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                connz = json.load(response)
        except (OSError, ValueError) as exc:
            failure = exc
            continue
        answered = True
        names = [str(conn.get("name") or "") for conn in connz.get("connections") or []]
        if found := next((name for name in names if ours(name)), None):
            return found
    if not answered and failure is not None:
        raise failure
    return None


def output_problem(service: str) -> str | None:
    """Why a renderer here could not store images (an unwritable output folder), or None."""
    from shared.contract.errors import StorageError
    from shared.runtime.settings import Settings
    from shared.storage.directory import DirectoryStore

    settings = Settings()
    if service != "renderer" or settings.output_store != "directory":
        return None
    try:
        DirectoryStore(settings.output_dir).check_writable()
    except StorageError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", nargs="?", choices=SERVICES)
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per check (default 3)")
    parser.add_argument(
        "--monitor-url",
        default=os.environ.get("IMAGEGEN_HEALTHCHECK_MONITOR_URL") or None,
        help="NATS monitoring URL, e.g. http://nats:8222 (a cluster: each server's, comma-separated), "
        "to check this container's own connection",
    )
    args = parser.parse_args(argv)
    service = args.service or service_of_pid1()
    if service is None:
        print("unhealthy: no service named and PID 1 runs none", file=sys.stderr)
        return 1
    if problem := output_problem(service):
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    try:
        # Bounded as a whole, whatever the client library does on the way.
        replies = asyncio.run(asyncio.wait_for(ping(service, args.timeout), 3 * args.timeout))
    except Exception as exc:
        print(f"unhealthy: NATS: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not replies:
        print(f"unhealthy: no {service} answered $SRV.PING.{service}", file=sys.stderr)
        return 1
    own = ""
    if args.monitor_url:
        try:
            name = own_connection(service, args.monitor_url, args.timeout)
        except Exception as exc:
            print(f"unhealthy: {args.monitor_url} /connz: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if name is None:
            print(f"unhealthy: no NATS connection of this {service} process", file=sys.stderr)
            return 1
        own = f", this one connected as {name}"
    print(f"healthy: {len(replies)} {service} instance(s) answered PING{own}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
