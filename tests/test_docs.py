"""Every command the README and docs show is run, as written, or named by the test that covers it.

The shell and Python blocks of README.md, CONTRIBUTING.md, bench/README.md and docs/*.md are
split into commands. Each command is either *run* here — in a sandbox folder that looks like a
checkout (the repository's entries linked into it), against the stack the docs' own
`imagegen up` starts — or *covered*: it needs what this machine cannot give a unit of the suite
(Docker, Kubernetes, the whole suite itself), and the test names the test that exercises it.
A command that matches neither fails the first test, so a new doc line cannot go unchecked.

Placeholders are the only substitution: `JOB_ID` becomes a job in the state the command needs
(a running job for `cancel`, a cancelled one for `resume`/`retry`, a finished one otherwise).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.benches import run_bench

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PLACEHOLDER = "JOB_ID"
COMMAND_TIMEOUT = 600  # generous: a loaded CI machine renders slowly; speed is in bench/


@dataclass(frozen=True)
class Command:
    doc: Path
    line: int
    lang: str  # "sh" or "python"
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def words(self) -> list[str]:
        """The command's words without leading `NAME=value` assignments and comments."""
        try:
            words = shlex.split(self.text, comments=True)
        except ValueError:
            return self.text.split()
        while words and (assignment := re.fullmatch(r"[A-Z_][A-Z0-9_]*=(.*)", words[0], re.S)):
            # `JOB=$(python3 ...)` runs what it substitutes; a plain value runs nothing.
            value = assignment.group(1)
            words = [value.removeprefix("$("), *words[1:]] if value.startswith("$(") else words[1:]
        return words


COMPOSE_RUN = "tests/image/test_compose.py::test_compose_up_submit_through_the_gateway_and_down"
# Commands covered by a test of their own, by the first words they start with. Each names a test
# (`path::function`, checked to exist) or, for the suite itself, the CI script that runs it.
COVERED: list[tuple[tuple[str, ...], str]] = [
    (("make", "test"), ".ci/run"),
    (("make", "bench"), "tests/shared/render/test_bench_smoke.py::test_bench_render_runs"),
    (
        (".venv/bin/python", "bench/bench_render.py"),
        "tests/shared/render/test_bench_smoke.py::test_bench_render_runs",
    ),
    ((".venv/bin/python", "bench/bench_pipeline.py"), "tests/test_docs.py::test_bench_pipeline_runs"),
    (
        (".venv/bin/python", "bench/bench_ledger.py"),
        "tests/shared/runtime/ledger/test_ledger.py::test_bench_ledger_runs",
    ),
    (
        (".venv/bin/python", "bench/bench_ingest.py"),
        "tests/bench/test_bench_ingest.py::test_bench_ingest_runs",
    ),
    (
        (".venv/bin/python", "bench/bench_overhead.py"),
        "tests/bench/test_bench_overhead.py::test_bench_overhead_runs",
    ),
    (
        (".venv/bin/python", "bench/bench_sizes.py"),
        "tests/shared/runtime/bus/test_limits.py::test_bench_sizes_runs",
    ),
    (("docker", "build"), "tests/deploy/test_manifests.py::test_dockerfile_shape"),
    (("docker", "run"), "tests/deploy/test_manifests.py::test_dockerfile_shape"),
    # compose.yaml runs for real under docker-compose (v1, the same arguments) in `make image-test`.
    (("docker", "compose"), COMPOSE_RUN),
    (("docker-compose",), COMPOSE_RUN),
    (("make", "image-test"), ".ci/run"),
    (("kubectl",), "tests/deploy/test_manifests.py::test_k8s_manifests_validate_against_kubernetes_schemas"),
    (
        ("$EDITOR", "deploy/k8s/secret.yaml"),
        "tests/deploy/test_manifests.py::test_k8s_each_pod_reads_only_its_own_nats_password",
    ),
    (("(cd", "deploy/k8s"), "tests/deploy/test_manifests.py::test_k8s_kustomization_lists_every_manifest"),
]
# A block that drives Docker or Kubernetes is read in that context as a whole (its `export` and
# `imagegen` lines talk to the compose stack), so every line of it counts as covered.
CONTEXT_WORDS = ("docker", "docker-compose", "kubectl")
# What runs here, by first word.
RUNNABLE = {".venv/bin/imagegen", "imagegen", "printf", "eval", "curl", "python", "python3", "make"}
RUNNABLE_MAKE = {"run", "up", "status", "down"}


def logical_lines(block: str) -> Iterator[tuple[int, str]]:
    """(offset, command) for each command of a shell block: a line, joined with the next ones
    while a quote is open, a line ends in a backslash, or a `for` loop has not reached `done`."""
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        start, text = i, lines[i]
        while i + 1 < len(lines) and (
            text.endswith("\\")
            or (text.lstrip().startswith(("for ", "while ")) and "done" not in text)
            or not _balanced(text)
        ):
            i += 1
            text += "\n" + lines[i]
        i += 1
        stripped = text.strip()
        if stripped and not stripped.startswith("#"):
            yield start, text


def _balanced(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True


def blocks() -> Iterator[tuple[Path, int, str, list[Command]]]:
    for doc in DOCS:
        source = doc.read_text(encoding="utf-8")
        for match in _FENCE.finditer(source):
            lang, body = match.group(1), match.group(2)
            first = source.count("\n", 0, match.start(2)) + 1
            if lang == "sh":
                commands = [Command(doc, first + off, "sh", text) for off, text in logical_lines(body)]
            elif lang == "python":
                commands = [Command(doc, first, "python", body)]
            else:
                continue  # diagrams, JSON and SQL samples are not commands
            yield doc, first, lang, commands


def covered_by(command: Command, block: list[Command]) -> str | None:
    words = command.words
    for prefix, test in COVERED:
        if tuple(words[: len(prefix)]) == prefix:
            return test
    if any(c.words and c.words[0] in CONTEXT_WORDS for c in block):
        return "tests/deploy/test_manifests.py::test_compose_config_validates"
    return None


def runnable(command: Command) -> bool:
    if command.lang == "python":
        return True
    words = command.words
    if not words or words[0] not in RUNNABLE:
        return False
    return words[0] != "make" or (len(words) == 2 and words[1] in RUNNABLE_MAKE)


def _test_exists(ref: str) -> bool:
    path, _, function = ref.partition("::")
    file = ROOT / path
    if not file.is_file():
        return False
    return not function or re.search(rf"^(async )?def {function}\(", file.read_text(), re.M) is not None


def test_every_documented_command_is_run_or_covered() -> None:
    unknown, missing = [], []
    count = 0
    for _doc, _line, _lang, commands in blocks():
        for command in commands:
            count += 1
            test = covered_by(command, commands)
            if test is not None:
                if not _test_exists(test):
                    missing.append(f"{command.where}: {test}")
            elif not runnable(command):
                unknown.append(f"{command.where}: {command.text.splitlines()[0]}")
    assert count > 30, f"only {count} commands found: is the block parser broken?"
    assert not unknown, "commands neither run here nor covered:\n" + "\n".join(unknown)
    assert not missing, "covering tests that do not exist:\n" + "\n".join(missing)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_logical_lines_join_quotes_continuations_and_loops() -> None:
    block = "a 'x\ny'\nb \\\n  c\n# comment\nfor i in 1 2; do\n  echo $i; done > f\nd\n"
    assert [text for _, text in logical_lines(block)] == [
        "a 'x\ny'",
        "b \\\n  c",
        "for i in 1 2; do\n  echo $i; done > f",
        "d",
    ]


# --- running them ------------------------------------------------------------------------------


class Sandbox:
    """A folder that looks like a checkout to the docs' commands, and the jobs they refer to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for entry in ROOT.iterdir():
            if entry.name not in {".imagegen", ".git"}:
                (path / entry.name).symlink_to(entry)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
        self.env["PATH"] = f"{path / '.venv' / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self._finished: str | None = None
        self._big = path / "big.csv"
        self._big.write_text("name\n" + "".join(f"行 {i}\n" for i in range(50_000)), encoding="utf-8")

    def sh(self, script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.path,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    def imagegen(self, *args: str) -> dict[str, object]:
        done = self.sh(shlex.join([".venv/bin/imagegen", "--json", *args]))
        assert done.returncode == 0, f"imagegen {' '.join(args)}: {done.stderr}"
        decoded = json.loads(done.stdout)
        assert isinstance(decoded, dict)
        return decoded

    def stack_env(self) -> dict[str, str]:
        """The environment `eval "$(imagegen status --env)"` gives, for programs of one's own."""
        exports = self.sh(".venv/bin/imagegen status --env")
        assert exports.returncode == 0, exports.stderr
        env = dict(self.env)
        for line in exports.stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0] if value else ""
        return env

    def ensure_up(self) -> None:
        if self.sh(".venv/bin/imagegen status").returncode != 0:
            started = self.sh(".venv/bin/imagegen up")
            assert started.returncode == 0, started.stderr

    def job_for(self, command: str) -> str:
        """A job in the state `command` needs."""
        if re.search(r"jobs cancel\s+" + PLACEHOLDER, command):
            return str(
                self.imagegen("submit", "csv", str(self._big), "--column", "name", "--size", "12")["job_id"]
            )
        if re.search(r"jobs (resume|retry)\s+" + PLACEHOLDER, command):
            # Submitted and cancelled in one process, so the cancel lands before the job ends.
            done = subprocess.run(
                [sys.executable, "-c", _SUBMIT_AND_CANCEL],
                env=self.stack_env(),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()
        if self._finished is None:
            examples = str(ROOT / "examples" / "products.csv")
            job = self.imagegen("submit", "csv", examples, "--column", "name", "--wait")
            self._finished = str(job["job_id"])
        return self._finished


_SUBMIT_AND_CANCEL = """
import asyncio
from shared.client import Client
from shared.sources.csv import SubmitCsv

async def main() -> None:
    async with await Client.from_settings() as client:
        rows = "".join(f"行 {i}\\n" for i in range(3000))
        accepted = await client.submit(SubmitCsv(csv="name\\n" + rows, column="name"))
        job = await client.cancel_job(accepted.job_id)
        assert job.status == "cancelled", job.status
        print(job.job_id)

asyncio.run(main())
"""


def _segments(commands: list[Command]) -> Iterator[list[Command]]:
    """Runs of commands that share one shell (variables carry over); a command with a
    placeholder or in Python starts a run of its own, so its job is made when it is reached."""
    run: list[Command] = []
    for command in commands:
        if command.lang == "python" or PLACEHOLDER in command.text:
            if run:
                yield run
            yield [command]
            run = []
        else:
            run.append(command)
    if run:
        yield run


def _run_block(box: Sandbox, doc: Path, commands: list[Command]) -> str | None:
    """Run a block's runnable commands in order; the first failure, described, or None."""
    runnable_here = [c for c in commands if covered_by(c, commands) is None and runnable(c)]
    if not runnable_here:
        return None
    # Blocks after the README's `imagegen up` take the stack as running, as a reader's would be.
    self_contained = all(c.words[:1] == ["make"] for c in runnable_here)
    if not self_contained and not any(c.words[1:2] == ["up"] for c in runnable_here):
        box.ensure_up()
    in_readme = doc == ROOT / "README.md"
    for segment in _segments(runnable_here):
        command = segment[0]
        if command.lang == "python":
            program = box.path / f"doc_{doc.stem}_{command.line}.py"
            program.write_text(command.text, encoding="utf-8")
            script = shlex.join([sys.executable, str(program), box.job_for("")])
        else:
            script = "\n".join(c.text for c in segment)
            if PLACEHOLDER in script:
                script = script.replace(PLACEHOLDER, box.job_for(script))
        # The README's shell lines find the stack by themselves; the other docs (and programs of
        # one's own) are read with its environment exported, as they say.
        env = box.env if in_readme and command.lang == "sh" else box.stack_env()
        done = box.sh(script, env)
        if done.returncode != 0:
            return (
                f"{command.where} (exit {done.returncode}):\n{script}\n"
                f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-3000:]}"
            )
    return None


@pytest.fixture
def sandbox_dir() -> Iterator[Path]:
    # Under /tmp directly, not pytest's 0700 /tmp/pytest-of-root (which another pytest run resets):
    # the stack's Postgres runs as its own user and must reach its data folder.
    path = Path(tempfile.mkdtemp(prefix="imagegen-docs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the whole README and docs, `make run` included, on a loaded machine
def test_documented_commands_run(sandbox_dir: Path) -> None:
    tmp_path = sandbox_dir
    box = Sandbox(tmp_path)
    failures: list[str] = []
    try:
        for doc, _line, _lang, commands in blocks():
            if failure := _run_block(box, doc, commands):
                failures.append(failure)
    finally:
        box.sh(".venv/bin/imagegen down")
    assert not failures, "\n\n".join(failures)
    # What the commands said they made is there.
    assert (tmp_path / "hello.png").stat().st_size > 0
    assert (tmp_path / "images" / "manifest.csv").is_file()
    assert (tmp_path / "fetched" / "manifest.csv").is_file()
    assert (tmp_path / "images.zip").stat().st_size > 0


@pytest.mark.slow
def test_bench_pipeline_runs() -> None:
    out = run_bench("bench_pipeline.py", "--quick", timeout=COMMAND_TIMEOUT)
    assert "CPU per row (user + system" in out, out[-2000:]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_files_that_exist(doc: Path) -> None:
    """Paths a doc names in backticks (deploy/…, tests/…, examples/…) exist in the checkout."""
    text = doc.read_text(encoding="utf-8")
    named = set(
        re.findall(
            r"`((?:deploy|tests|examples|bench|shared|services|docs|devstack)/[\w./-]+?)(?:::\w+)?`", text
        )
    )
    absent = sorted(p for p in named if not (ROOT / p).exists() and "<" not in p and "*" not in p)
    assert not absent, f"{doc.name} names missing files: {absent}"
