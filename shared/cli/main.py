"""`imagegen`: the command line.

imagegen run                       start the local stack, render the sample CSV, stop
imagegen up / down                 keep the local stack running in the background / stop it
imagegen serve SERVICE             run one service in the foreground (what containers do)
imagegen submit csv FILE --column NAME [style options] [per-row columns] [--wait]
imagegen submit db --source S --query SQL --column NAME [--wait]
imagegen jobs show|cancel|retry JOB | jobs list
imagegen fonts
imagegen render TEXT -o out.png    render locally, no servers needed

`--json` (before or after the command) prints machine-readable output. Exit codes: 0 success,
1 the job failed or some of its items did, 2 a refused request or an unreachable server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import nats.errors

from shared.cli.follow import follow_job, print_summary
from shared.cli.stack import SERVICES, LocalStack
from shared.client import Client, ServiceUnavailable
from shared.contract.errors import BadRequest, ImagegenError
from shared.contract.messages import SubmitCsv, SubmitDb
from shared.render import RenderEngine
from shared.render.styles import parse_style
from shared.settings import Settings

DEFAULT_STATE = Path(".imagegen")
SAMPLE_CSV = Path(__file__).resolve().parents[2] / "examples" / "products.csv"


def _style_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("style")
    group.add_argument("--font", help="font name from `imagegen fonts` (default: sans)")
    group.add_argument("--size", type=int, help="font size in px (default 48)")
    group.add_argument("--color", help="text colour: #rgb, #rrggbb, #rrggbbaa, rgb(), a CSS name")
    group.add_argument("--background", help="background colour (default transparent)")
    group.add_argument("--padding", type=int, help="padding in px on every side")
    group.add_argument("--max-width", type=int, help="wrap lines to this width in px")
    group.add_argument("--style-json", help="a whole style as JSON (the flags above override it)")


def _style_from(args: argparse.Namespace) -> dict[str, Any]:
    style: dict[str, Any] = json.loads(args.style_json) if args.style_json else {}
    for flag in ("font", "size", "color", "background", "padding", "max_width"):
        value = getattr(args, flag)
        if value is not None:
            style[flag] = value
    return style


def _column(value: str) -> str | int:
    """A column as typed: digits mean an index (for header-less files), anything else a name."""
    return int(value) if value.isdigit() else value


def _column_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("per-row columns (a name, or a 0-based index with --no-header)")
    group.add_argument("--filename-column", help="name each image after this column's value")
    group.add_argument("--color-column", help="text colour per row (empty cell: the job's colour)")
    group.add_argument("--font-column", help="font per row (empty cell: the job's font)")
    group.add_argument(
        "--style-column",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="any style field per row, e.g. size=pt (repeatable)",
    )


def _style_columns(args: argparse.Namespace) -> dict[str, str | int]:
    columns: dict[str, str | int] = {}
    for spec in args.style_column:
        field, sep, column = spec.partition("=")
        if not sep or not field or not column:
            raise BadRequest(f"expected FIELD=COLUMN, got {spec!r}", field="--style-column")
        columns[field.strip()] = _column(column.strip()) if args.no_header else column.strip()
    return columns


def _json_flag(parser: argparse.ArgumentParser) -> None:
    # Also accepted after the command (`imagegen jobs list --json`); SUPPRESS keeps the global
    # flag's value when it is not repeated here.
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegen", description="Text to transparent PNGs, in bulk, over NATS."
    )
    parser.add_argument("--nats-url", help="NATS server(s) (default: IMAGEGEN_NATS_URL / NATS_URL)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=sorted(SERVICES))

    for name, help_text in (
        ("run", "start the local stack, render a CSV, print the summary, stop"),
        ("up", "start the local stack and keep it running"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE / name)
        p.add_argument("--renderers", type=int, default=2)
        if name == "run":
            p.add_argument("--csv", type=Path, default=SAMPLE_CSV)
            p.add_argument("--column", default="name")
        else:
            p.add_argument("--foreground", action="store_true", help=argparse.SUPPRESS)
    down = sub.add_parser("down", help="stop the stack `imagegen up` started")
    down.add_argument("--state-dir", type=Path, default=DEFAULT_STATE / "up")

    submit = sub.add_parser("submit", help="submit a job").add_subparsers(dest="source", required=True)
    csv_p = submit.add_parser("csv", help="render one image per CSV row")
    csv_p.add_argument("file", type=Path)
    csv_p.add_argument("--column", required=True, help="the text column (name, or index with --no-header)")
    csv_p.add_argument("--no-header", action="store_true")
    csv_p.add_argument("--name-template", default="{index}")
    csv_p.add_argument("--job-id")
    csv_p.add_argument("--encoding", help="the file's encoding (default: detected)")
    csv_p.add_argument("--delimiter", help="the field delimiter (default: sniffed)")
    csv_p.add_argument("--batch-size", type=int, help="items per render task")
    csv_p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    _style_args(csv_p)
    _column_args(csv_p)
    db_p = submit.add_parser("db", help="render one image per row of a query")
    db_p.add_argument("--source", required=True, help="a data source name configured on the server")
    db_p.add_argument("--query", required=True)
    db_p.add_argument("--param", action="append", default=[], help="query parameter $1, $2, ...")
    db_p.add_argument("--column", required=True)
    db_p.add_argument("--name-template", default="{index}")
    db_p.add_argument("--job-id")
    db_p.add_argument("--wait", action="store_true")
    _style_args(db_p)

    jobs = sub.add_parser("jobs", help="query jobs").add_subparsers(dest="action", required=True)
    show = jobs.add_parser("show", help="one job's status, counts and failures")
    show.add_argument("job_id")
    fetch = jobs.add_parser("fetch", help="download a job's images (from the object store or disk)")
    fetch.add_argument("job_id")
    fetch.add_argument("-o", "--output", type=Path, required=True, help="folder to write them to")
    for action, text in (
        ("cancel", "stop a running job"),
        ("retry", "re-render a finished job's failed items"),
    ):
        act = jobs.add_parser(action, help=text)
        act.add_argument("job_id")
        act.add_argument("--wait", action="store_true", help="follow the job until it ends")
    lst = jobs.add_parser("list", help="recent jobs")
    lst.add_argument("--status")
    lst.add_argument("--limit", type=int, default=20)

    sub.add_parser("fonts", help="the font catalogue")

    render = sub.add_parser("render", help="render one text locally (no servers needed)")
    render.add_argument("text")
    render.add_argument("-o", "--output", type=Path, required=True)
    _style_args(render)
    for command in (csv_p, db_p, show, lst, render, *(jobs.choices[a] for a in ("cancel", "retry"))):
        _json_flag(command)
    _json_flag(sub.choices["fonts"])
    return parser


def _nats_url(args: argparse.Namespace) -> str:
    return args.nats_url or Settings().nats_url


async def _quiet(exc: Exception) -> None:
    """nats-py prints every connection error with a traceback; the CLI reports it once."""


async def _connect(args: argparse.Namespace) -> Client:
    """A client for one command: fail fast when NATS is unreachable instead of retrying for
    minutes (the services retry for ever; a person at a shell wants the error now)."""
    url = _nats_url(args)
    try:
        client = await Client.connect(
            url, connect_timeout=3, max_reconnect_attempts=2, reconnect_time_wait=1, error_cb=_quiet
        )
    except (OSError, nats.errors.Error) as exc:
        raise ServiceUnavailable(f"cannot reach NATS at {url} ({exc or type(exc).__name__})") from exc
    # nats-py uses one setting for the first connect and for reconnects: once connected, ride out
    # a NATS restart for two minutes while following a long job.
    client.nc.options["max_reconnect_attempts"] = 120
    return client


def _print(args: argparse.Namespace, value: Any) -> None:
    print(msgspec.json.encode(value).decode() if args.json else value)


# --- commands ---------------------------------------------------------------------------------


async def _submit(args: argparse.Namespace) -> int:
    async with await _connect(args) as client:
        style = parse_style(_style_from(args))
        if args.source == "csv":

            def col(value: str | None) -> str | int | None:
                return None if value is None else (_column(value) if args.no_header else value)

            request = SubmitCsv(
                column=_column(args.column) if args.no_header else args.column,
                has_header=not args.no_header,
                style=style,
                name_template=args.name_template,
                job_id=args.job_id,
                encoding=args.encoding,
                delimiter=args.delimiter,
                batch_size=args.batch_size,
                filename_column=col(args.filename_column),
                color_column=col(args.color_column),
                font_column=col(args.font_column),
                style_columns=_style_columns(args),
            )
            accepted = await client.submit_csv_file(args.file, request)
        else:
            accepted = await client.submit_db(
                SubmitDb(
                    source=args.source,
                    query=args.query,
                    params=list(args.param),
                    column=args.column,
                    style=style,
                    name_template=args.name_template,
                    job_id=args.job_id,
                )
            )
        if not args.wait:
            _print(args, accepted if args.json else f"accepted job {accepted.job_id}")
            return 0
        final = await follow_job(client, accepted.job_id, quiet=args.json)
        job = await client.get_job(accepted.job_id)
        if args.json:
            _print(args, {**msgspec.to_builtins(job), "manifest": final.manifest})
        else:
            print_summary(job, final)
        return 0 if final.kind == "completed" and final.failed == 0 else 1


async def _jobs(args: argparse.Namespace) -> int:
    async with await _connect(args) as client:
        if args.action == "fetch":
            count = await client.fetch_images(args.job_id, args.output)
            _print(
                args,
                {"job_id": args.job_id, "images": count, "folder": str(args.output)}
                if args.json
                else f"{count} images written to {args.output}",
            )
            return 0
        if args.action in ("show", "cancel", "retry"):
            if args.action == "show":
                job = await client.get_job(args.job_id)
            elif args.action == "cancel":
                job = await client.cancel_job(args.job_id)
            else:
                job = await client.retry_job(args.job_id)
                if args.wait:
                    await follow_job(client, job.job_id, quiet=args.json, attempt=job.attempt)
                    job = await client.get_job(job.job_id)
            if args.json:
                _print(args, job)
            else:
                print_summary(job)
            return 0 if job.status in ("completed", "cancelled", "rendering", "ingesting", "accepted") else 1
        else:
            jobs = await client.list_jobs(status=args.status, limit=args.limit)
            if args.json:
                _print(args, jobs)
            for job in [] if args.json else jobs:
                print(
                    f"{job.job_id}  {job.status:<22} {job.done:>7} done {job.failed:>5} failed  "
                    f"{job.created_at:%Y-%m-%d %H:%M:%S}"
                )
    return 0


async def _fonts(args: argparse.Namespace) -> int:
    async with await _connect(args) as client:
        fonts = await client.fonts()
    if args.json:
        _print(args, fonts)
    for font in [] if args.json else fonts:
        print(f"{font.name:<24} {font.family:<28} {font.style:<10} {', '.join(font.scripts)}")
    return 0


def _render(args: argparse.Namespace) -> int:
    image = RenderEngine().render(args.text, parse_style(_style_from(args)))
    args.output.write_bytes(image.data)
    if args.json:
        _print(
            args,
            {
                "file": str(args.output),
                "width": image.width,
                "height": image.height,
                "bytes": len(image.data),
                "missing_glyphs": list(image.missing_glyphs),
            },
        )
    else:
        print(f"{args.output}: {image.width}x{image.height}, {len(image.data)} bytes")
        if image.missing_glyphs:
            print(f"no font covers: {' '.join(image.missing_glyphs)}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    """The main job: local stack up, sample CSV in, summary out, everything stopped."""
    stack = LocalStack(args.state_dir.resolve(), renderers=args.renderers)
    started = time.monotonic()
    print("starting nats-server, Postgres and the services ...", flush=True)
    stack.start()
    try:
        print(
            f"stack up in {time.monotonic() - started:.1f}s (NATS {stack.nats_url})\n"
            f"  web console: {asyncio.run(stack.console_url())}\n"
            f"submitting {args.csv}",
            flush=True,
        )

        async def go() -> int:
            async with await Client.connect(stack.nats_url) as client:
                accepted = await client.submit_csv_file(args.csv, SubmitCsv(column=args.column))
                final = await follow_job(client, accepted.job_id)
                print_summary(await client.get_job(accepted.job_id))
                return 0 if final.kind == "completed" else 1

        return asyncio.run(go())
    finally:
        stack.stop()
        print("stack stopped", flush=True)


def _up(args: argparse.Namespace) -> int:
    state = args.state_dir.resolve()
    info_file = state / "stack.json"
    if not args.foreground:
        if info_file.exists():
            info = json.loads(info_file.read_text())
            if _alive(info["pid"]):
                print(f"already up (pid {info['pid']}): NATS {info['nats_url']}")
                return 0
        state.mkdir(parents=True, exist_ok=True)
        info_file.unlink(missing_ok=True)
        log = (state / "stack.log").open("ab")
        cmd = [
            sys.executable,
            "-m",
            "shared.cli.main",
            "up",
            "--foreground",
            "--state-dir",
            str(state),
            "--renderers",
            str(args.renderers),
        ]
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 90
        while not info_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                print(f"the stack did not come up; see {state / 'stack.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        info = json.loads(info_file.read_text())
        print(
            f"stack up (pid {info['pid']})\n  NATS:     {info['nats_url']}\n"
            f"  Postgres: {info['database_url']}\n"
            f"  console:  {info.get('console_url')}\n"
            f"  images:   {info['output_dir']}\n  logs:     {state / 'logs'}\n"
            f"try: IMAGEGEN_NATS_URL={info['nats_url']} "
            "imagegen submit csv examples/products.csv --column name --wait\n"
            "stop: imagegen down"
        )
        return 0
    stack = LocalStack(state, renderers=args.renderers)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    try:
        info_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "nats_url": stack.nats_url,
                    "database_url": stack.database_url,
                    "output_dir": str(stack.output_dir),
                    "console_url": asyncio.run(stack.console_url()),
                }
            )
        )
        while not stop:
            time.sleep(0.5)
    finally:
        info_file.unlink(missing_ok=True)
        stack.stop()
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _down(args: argparse.Namespace) -> int:
    info_file = args.state_dir.resolve() / "stack.json"
    if not info_file.exists():
        print("no stack is up")
        return 0
    pid = json.loads(info_file.read_text())["pid"]
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    print("stack stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        sys.argv = [SERVICES[args.service]]
        runpy.run_module(SERVICES[args.service], run_name="__main__", alter_sys=True)
        return 0
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "up":
            return _up(args)
        if args.command == "down":
            return _down(args)
        if args.command == "render":
            return _render(args)
        handler = {"submit": _submit, "jobs": _jobs, "fonts": _fonts}[args.command]
        return asyncio.run(handler(args))
    except ImagegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
