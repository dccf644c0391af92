"""`imagegen run / up / down / status`: the local stack. It is a development tool (the
`imagegen-devstack` package, installed by `make`), so it is imported only when one of these runs."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from types import ModuleType

from shared.cli import stackfile
from shared.cli.output import emit, table
from shared.contract.errors import ImagegenError


def _control() -> ModuleType:
    try:
        from devstack import control
    except ImportError as exc:
        raise ImagegenError(
            "the local stack needs the development install (`make run`, or pip install -e ./devstack)"
        ) from exc
    return control


def stack(args: argparse.Namespace) -> int:
    control = _control()
    state = stackfile.state_dir(args.state_dir, "run" if args.command == "run" else "up")
    if args.command == "run":
        code: int = control.run(state, args.renderers, args.csv, args.column)
        return code
    if args.command == "up":
        code = (
            control.up_foreground(state, args.renderers)
            if args.foreground
            else control.up(state, args.renderers)
        )
        return code
    if args.command == "down":
        code = control.down(state)
        return code
    if getattr(args, "env", False):
        return _exports(state)
    code, report = control.status(state)
    services = report.pop("services", {})
    queues = report.pop("queues", [])
    text = "no stack is up (start one with `imagegen up`)"
    if report.get("up"):
        lines = [f"{key}: {value}" for key, value in report.items() if key != "up"]
        assert isinstance(services, dict) and isinstance(queues, list)
        text = "\n".join(
            [
                *lines,
                "",
                table(("SERVICE", "INSTANCES"), sorted(services.items())),
                "",
                table(
                    ("QUEUE", "STREAM", "WAITING", "IN FLIGHT"),
                    [(q.consumer, q.stream, q.waiting, q.in_flight) for q in queues],
                ),
            ]
        )
    emit(args, {**report, "services": services, "queues": queues}, text)
    return code


def _exports(state: Path) -> int:
    """`export NAME=value` lines for a shell: the variables a program of your own (the Python
    client, curl) needs to reach the stack as its client identity."""
    info = stackfile.read(state)
    if info is None:
        print("no stack is up (start one with `imagegen up`)", file=sys.stderr)
        return 1
    values = {"IMAGEGEN_NATS_URL": info.nats_url, **info.client_env}
    if info.console_url:
        values["IMAGEGEN_GATEWAY_URL"] = info.console_url.rstrip("/")
    if info.monitor_url:
        values["IMAGEGEN_NATS_MONITOR_URL"] = info.monitor_url
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0
