"""`imagegen run / up / down / status`: the local stack as a person drives it.

`up` starts the stack in a background process of its own and records it in the state folder
(`shared.cli.stackfile`), so every later `imagegen` command in this folder finds it; `down` stops
it; `status` shows it; `run` is the main job: up, render a CSV, print the summary, down.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.sample import SAMPLE_CSV
from devstack.stack import LocalStack
from shared.cli import stackfile
from shared.cli.follow import follow_job, print_summary
from shared.cli.session import stack_settings
from shared.client import Client, Queue
from shared.runtime.bus.connect import connect
from shared.runtime.bus.discovery import ping_all
from shared.sources.csv import SubmitCsv


def run(state: Path, renderers: int, csv: Path | None, column: str) -> int:
    """The main job: local stack up, the sample CSV in, summary out, everything stopped."""
    stack = LocalStack(state, renderers=renderers)
    started = time.monotonic()
    print("starting nats-server, Postgres and the services ...", flush=True)
    stack.start()
    try:
        print(f"stack up in {time.monotonic() - started:.1f}s (NATS {stack.nats_url})", flush=True)
        source = csv or SAMPLE_CSV
        print(f"submitting {source}", flush=True)

        async def go() -> int:
            async with await stack.client() as client:
                accepted = await client.submit_file(source, SubmitCsv(column=column))
                followed = await follow_job(client, accepted.job_id)
                final = followed.final
                print_summary(await client.get_job(accepted.job_id), followed)
                return 0 if final.kind == "completed" and final.failed == 0 and final.incomplete == 0 else 1

        return asyncio.run(go())
    finally:
        stack.stop()
        print("stack stopped", flush=True)


def up(state: Path, renderers: int) -> int:
    """Start the stack in the background (a process of its own) and print where it is."""
    running = stackfile.read(state)
    if running is not None:
        print(f"already up (pid {running.pid})")
        _print_info(running)
        return 0
    state.mkdir(parents=True, exist_ok=True)
    stackfile.info_file(state).unlink(missing_ok=True)
    log = (state / "stack.log").open("ab")
    cmd = [sys.executable, "-m", "shared.cli.main", "up", "--foreground", "--state-dir", str(state)]
    cmd += ["--renderers", str(renderers)]
    process = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while (info := stackfile.read(state)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            print(f"the stack did not come up; see {state / 'stack.log'}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"stack up (pid {info.pid})")
    _print_info(info)
    print("every imagegen command in this folder now uses it; stop it with: imagegen down")
    return 0


def _print_info(info: stackfile.StackInfo) -> None:
    print(
        f"  NATS:     {info.nats_url}\n  Postgres: {info.database_url}\n"
        f"  console:  {info.console_url}\n  images:   {info.output_dir}\n  logs:     {info.logs}"
    )


def up_foreground(state: Path, renderers: int) -> int:
    """The background process of `up`: run the stack until SIGTERM."""
    stack = LocalStack(state, renderers=renderers)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    try:
        stackfile.write(state, stack.info())
        while not stop:
            time.sleep(0.5)
    finally:
        stackfile.info_file(state).unlink(missing_ok=True)
        stack.stop()
    return 0


def down(state: Path) -> int:
    info = stackfile.read(state)
    if info is None:
        print("no stack is up")
        return 0
    subprocess.run(["kill", "-TERM", str(info.pid)], check=False)
    deadline = time.monotonic() + 60
    while stackfile.alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    print("stack stopped")
    return 0


def status(state: Path) -> tuple[int, dict[str, object]]:
    """(exit code, report) of the local stack: recorded URLs and the services answering."""
    info = stackfile.read(state)
    if info is None:
        return 1, {"up": False, "state_dir": str(state)}

    async def ask() -> tuple[dict[str, int], list[Queue]]:
        nc = await connect(stack_settings(info), "imagegen-status", retry_for=5)
        async with Client(nc) as client:
            counts: dict[str, int] = {}
            for reply in await ping_all(client.nc, wait=0.5):
                name = str(reply.get("name", ""))
                counts[name] = counts.get(name, 0) + 1
            return counts, await client.queues()

    report: dict[str, object] = {"up": True}
    report |= {name: getattr(info, name) for name in info.__struct_fields__ if name != "client_env"}
    report["services"], report["queues"] = asyncio.run(ask())
    return 0, report
