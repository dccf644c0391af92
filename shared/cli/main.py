"""`imagegen`: the command line. See `imagegen --help` and README.md."""

from __future__ import annotations

import argparse
import asyncio
import runpy
import sys

from shared.cli.commands.catalogue import asyncapi, fonts
from shared.cli.commands.jobs import jobs
from shared.cli.commands.nats import config as nats_config
from shared.cli.commands.nats import credentials as nats_credentials
from shared.cli.commands.nats import setup as nats_setup
from shared.cli.commands.render import render
from shared.cli.commands.stack import stack
from shared.cli.commands.submit import submit
from shared.cli.output import error
from shared.cli.parser import build_parser
from shared.contract.errors import ImagegenError
from shared.runtime.services import SERVICES


def dispatch(args: argparse.Namespace) -> int:
    if args.command in ("run", "up", "down", "status"):
        return stack(args)
    if args.command == "render":
        return render(args)
    if args.command == "asyncapi":
        return asyncapi(args)
    if args.command == "nats":
        if args.action == "setup":
            return asyncio.run(nats_setup(args))
        return nats_config(args) if args.action == "config" else nats_credentials(args)
    command = {"submit": submit, "jobs": jobs, "fonts": fonts}[args.command]
    return asyncio.run(command(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        module = SERVICES[args.service].module
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    try:
        return dispatch(args)
    except ImagegenError as exc:
        error(args, exc.message, code=exc.code, field=exc.field)
        return 2
    except OSError as exc:
        error(args, f"{exc.strerror or exc}: {exc.filename or ''}", code=500)
        return 2


if __name__ == "__main__":
    sys.exit(main())
