"""The `imagegen` command's arguments: global flags, one sub-command per action, and one
`submit` sub-command per registered source (from `shared.sources`)."""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path

from shared.cli.options import add_fields, add_style_options, request_fields
from shared.contract.states import JobStatus
from shared.contract.submit import DEFAULT_NAME_TEMPLATE, SubmitBase
from shared.runtime.services import SERVICES
from shared.sources import SOURCES

DESCRIPTION = """Text to transparent PNGs, in bulk, over NATS.

Exit codes: 0 success; 1 the job failed or some of its items did; 2 a refused request or an
unreachable server. `--json` (before or after the command) prints machine-readable output."""


def _version() -> str:
    try:
        return metadata.version("imagegen")
    except metadata.PackageNotFoundError:
        return "unknown"


def _json_flag(parser: argparse.ArgumentParser) -> None:
    # Also accepted after the command (`imagegen jobs list --json`); SUPPRESS keeps the global
    # flag's value when it is not repeated here.
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def _submit_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = sub.add_parser("submit", help="submit a job (one image per row of a source)")
    sources = submit.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for spec in SOURCES.values():
        p = sources.add_parser(spec.name, help=spec.summary, description=spec.request.__doc__)
        if spec.takes_files:
            p.add_argument("file", type=Path, help=f"the file to upload ({', '.join(spec.uploads)})")
        p.add_argument("--column", required=True, help="the text column (a name, or a 0-based position)")
        add_fields(p.add_argument_group(f"{spec.name} options"), spec.request, request_fields(spec))
        common = p.add_argument_group("job")
        add_fields(common, SubmitBase, ["name_template", "job_id", "batch_size"])
        common.add_argument("--wait", action="store_true", help="follow the job until it ends")
        rows = p.add_argument_group("per-row columns (empty cell: the job's value)")
        add_fields(rows, SubmitBase, ["filename_column", "color_column", "font_column"])
        rows.add_argument(
            "--style-column",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help="any style field per row, e.g. size=pt (repeatable)",
        )
        add_style_options(p)
        _json_flag(p)
        p.epilog = f"Output names default to {DEFAULT_NAME_TEMPLATE} (the source's own row number)."


_JOB_ID = "the job's id (as `submit` printed it; `jobs list` shows recent ones)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegen", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"imagegen {_version()}")
    parser.add_argument(
        "--nats-url", help="NATS server(s) (default: the local stack, then IMAGEGEN_NATS_URL)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run one service in the foreground (what containers do)")
    serve.add_argument("service", choices=sorted(SERVICES), help="the service to run")

    run = sub.add_parser("run", help="start the local stack, render a CSV, print the summary, stop")
    run.add_argument("--csv", type=Path, help="the CSV to render (default: examples/products.csv)")
    run.add_argument("--column", default="name", help="the text column (default name)")
    for name, text in (("up", "start the local stack and keep it running"), ("run", None)):
        p = sub.choices[name] if text is None else sub.add_parser(name, help=text)
        p.add_argument(
            "--state-dir", type=Path, help="where the stack keeps its servers (default .imagegen/)"
        )
        p.add_argument("--renderers", type=int, default=2, help="renderer replicas (default 2)")
    sub.choices["up"].add_argument("--foreground", action="store_true", help=argparse.SUPPRESS)
    down = sub.add_parser("down", help="stop the stack `imagegen up` started")
    down.add_argument("--state-dir", type=Path, help="the stack's folder (default .imagegen/up)")
    status = sub.add_parser("status", help="the local stack, the services answering, queues and URLs")
    status.add_argument("--state-dir", type=Path, help="the stack's folder (default .imagegen/up)")
    status.add_argument(
        "--env",
        action="store_true",
        help="print shell exports of the stack's NATS URL, client identity and gateway URL "
        '(eval "$(imagegen status --env)"), for programs of your own',
    )
    _json_flag(status)

    nats_group = sub.add_parser(
        "nats", help="the NATS side of a deployment: declare the topology, print the permissions"
    )
    nats_cmds = nats_group.add_subparsers(dest="action", required=True)
    setup = nats_cmds.add_parser(
        "setup", help="declare every stream, bucket and durable consumer (as the admin identity)"
    )
    setup.add_argument("--wait", type=float, default=120.0, help="seconds to wait for NATS (default 120)")
    _json_flag(setup)
    nats_cmds.add_parser(
        "config",
        help="print nats-server's authorization block of the permissions layout",
        description="Passwords are read from nats-server's environment: NATS_PASSWORD_<IDENTITY>.",
    )
    made = nats_cmds.add_parser(
        "credentials",
        help="make a deployment's NATS passwords and gateway API key in FOLDER (keeps existing ones)",
        description="One file per identity (IMAGEGEN_NATS_PASSWORD_FILE), nats.env for nats-server "
        "(NATS_PASSWORD_<IDENTITY>=...) and gateway-api-key, all 0600: compose's init step.",
    )
    made.add_argument("folder", type=Path, help="where the files go (created if missing)")
    _json_flag(made)

    _submit_parsers(sub)

    jobs = sub.add_parser("jobs", help="query and control jobs").add_subparsers(dest="action", required=True)
    show = jobs.add_parser("show", help="one job's status, counts and failures")
    show.add_argument("job_id", help=_JOB_ID)
    fetch = jobs.add_parser("fetch", help="download a job's images and manifest (object store or disk)")
    fetch.add_argument("job_id", help=_JOB_ID)
    fetch.add_argument("-o", "--output", type=Path, required=True, help="folder to write them to")
    for action, text, aliases in (
        ("cancel", "stop a job now: nothing more is rendered and its counts stay as they are", []),
        (
            "retry",
            "the job's next attempt: re-render the failed items of a job that completed with "
            "errors, or resume a cancelled or failed job (render what is not done)",
            ["resume"],
        ),
    ):
        act = jobs.add_parser(action, help=text, description=text, aliases=aliases)
        act.add_argument("job_id", help=_JOB_ID)
        act.add_argument("--wait", action="store_true", help="follow the job until it ends")
    lst = jobs.add_parser("list", help="recent jobs, newest first, with the file or data source each read")
    lst.add_argument(
        "--status", choices=[status.value for status in JobStatus], help="only jobs in this state"
    )
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    for command in {id(c): c for c in jobs.choices.values()}.values():  # an alias repeats its parser
        _json_flag(command)

    _json_flag(sub.add_parser("fonts", help="the font catalogue and the scripts each font covers"))
    sub.add_parser("asyncapi", help="the AsyncAPI 3 document of every subject, stream and message")

    render = sub.add_parser("render", help="render one text locally (no servers needed)")
    render.add_argument("text", help="the text to render")
    render.add_argument("-o", "--output", type=Path, required=True, help="the image file (.png or .webp)")
    add_style_options(render)
    _json_flag(render)
    return parser
