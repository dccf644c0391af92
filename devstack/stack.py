"""The local stack: nats-server, Postgres and the services as child processes.

Used by `imagegen run` / `imagegen up` and by the test suite. With `NATS_URL` / `DATABASE_URL`
(or their `IMAGEGEN_` forms) set it uses those servers instead of starting its own. Services are
started as `python -m services.<name>`, each with its own log file under the state folder, and
the stack is ready when every one of them answers `$SRV.PING`.

The nats-server it starts runs the permissions layout (`shared.runtime.bus.permissions`) with
fresh random passwords (`devstack.natsauth`): the admin identity declares the topology
(`imagegen nats setup`), each service connects as its own identity, clients as `client`. A
server given by URL is used as it is configured; given `nats_credentials` too (the test suite's
own servers), the stack treats it as running the layout with those passwords.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client as NATS

from devstack import NatsServer, PostgresServer, free_port
from devstack._proc import LocalStackError, die_with_parent_hook
from devstack.natsauth import FILE_NAME, NatsCredentials
from devstack.sample import SampleSource, create_sample_source
from shared.cli.stackfile import StackInfo
from shared.client import Client
from shared.runtime.bus.connect import auth_options, connect
from shared.runtime.bus.discovery import ping_all, wait_for_services
from shared.runtime.bus.permissions import ADMIN, CLIENT
from shared.runtime.services import SERVICES
from shared.runtime.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
_AUTH_KEYS = (
    "IMAGEGEN_NATS_USER",
    "IMAGEGEN_NATS_PASSWORD",
    "IMAGEGEN_NATS_TOKEN",
    "IMAGEGEN_NATS_CREDS_FILE",
)


def external_urls() -> tuple[str | None, str | None]:
    env = os.environ
    return (
        env.get("IMAGEGEN_NATS_URL") or env.get("NATS_URL"),
        env.get("IMAGEGEN_DATABASE_URL") or env.get("DATABASE_URL"),
    )


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    metrics_port: int | None = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class LocalStack:
    """Servers plus services for one state folder. Start with `start()`, end with `stop()`.

    Given `nats_url` / `database_url` (or the environment's), it uses those servers and starts
    only the services; `nats_credentials` says the given nats-server runs the permissions layout.
    `python` runs the services and `imagegen nats setup`; with `from_repo=False` they import
    imagegen from that interpreter's own installation (a wheel) and run in the state folder,
    never from this repository.
    """

    state_dir: Path
    renderers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    nats_url: str = ""
    database_url: str = ""
    output_dir: Path = Path()
    nats: NatsServer | None = None
    postgres: PostgresServer | None = None
    sample: SampleSource | None = None
    processes: list[ServiceProcess] = field(default_factory=list)
    metrics: bool = False
    nats_credentials: NatsCredentials | None = None
    python: str = sys.executable
    from_repo: bool = True

    def start_servers(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        self.output_dir = self.state_dir / "output"
        nats_url, database_url = external_urls()
        self.nats_url = self.nats_url or nats_url or ""
        self.database_url = self.database_url or database_url or ""
        if not self.nats_url:
            self.nats_credentials = NatsCredentials.generate()
            self.nats_credentials.save(self.state_dir / FILE_NAME)
            self.nats = NatsServer.start(
                self.state_dir / "nats",
                log_file=self.state_dir / "logs" / "nats-server.log",
                config_text=self.nats_credentials.server_config(),
            )
            self.nats_url = self.nats.url
        if not self.database_url:
            self.postgres = PostgresServer.start(self.state_dir / "postgres")
            self.database_url = self.postgres.create_database("imagegen")
        if "IMAGEGEN_DATA_SOURCES" not in {**os.environ, **self.extra_env}:
            self.sample = asyncio.run(self._create_sample())

    async def _create_sample(self) -> SampleSource:
        """The `local` data source: a sample database read by a reader role, never the ledger."""
        try:
            return await create_sample_source(self.database_url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise LocalStackError(
                f"could not create the sample data source on the stack's Postgres ({exc}); "
                "set IMAGEGEN_DATA_SOURCES to name data sources of your own instead"
            ) from exc

    def env(self, identity: str | None = None, **overrides: str) -> dict[str, str]:
        """The environment of a process connecting as `identity` (a service's own name, ADMIN)."""
        env = dict(os.environ)
        if self.nats_credentials:
            for key in (
                "IMAGEGEN_NATS_USER",
                "IMAGEGEN_NATS_PASSWORD",
                "IMAGEGEN_NATS_TOKEN",
                "IMAGEGEN_NATS_CREDS_FILE",
            ):
                env.pop(key, None)  # the shell's own NATS identity is not the stack's
        env.update(
            IMAGEGEN_NATS_URL=self.nats_url,
            IMAGEGEN_DATABASE_URL=self.database_url,
            IMAGEGEN_OUTPUT_DIR=str(self.output_dir),
            IMAGEGEN_GATEWAY_PORT=env.get("IMAGEGEN_GATEWAY_PORT", "0"),  # a free port; see console_url
            IMAGEGEN_DATA_SOURCES=env.get(
                "IMAGEGEN_DATA_SOURCES", json.dumps({"local": self.sample.reader_url} if self.sample else {})
            ),
        )
        if self.from_repo:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        else:
            env.pop("PYTHONPATH", None)
        env.update(self.extra_env)
        if self.nats_credentials and identity:
            env.update(self.nats_credentials.env(identity))
            env["IMAGEGEN_DECLARE_TOPOLOGY"] = "false"  # `declare_topology` did it as admin
        env.update(overrides)
        return env

    def cwd(self) -> Path | None:
        """Where service processes run: the state folder when they must not see this repository
        (`python -m` would import from the working folder first)."""
        return None if self.from_repo else self.state_dir.resolve()

    def spawn(self, name: str, *, instance: str | None = None, **env: str) -> ServiceProcess:
        """Start one more process of service `name` (e.g. a renderer replica)."""
        label = instance or f"{name}-{sum(p.name == name for p in self.processes) + 1}"
        log_file = self.state_dir / "logs" / f"{label}.log"
        metrics_port = None
        if self.metrics and "IMAGEGEN_METRICS_PORT" not in env:
            # Each process on this host gets its own /metrics port.
            metrics_port = free_port()
            env["IMAGEGEN_METRICS_PORT"] = str(metrics_port)
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [self.python, "-m", SERVICES[name].module],
                env=self.env(name, IMAGEGEN_INSTANCE=label, **env),
                cwd=self.cwd(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent_hook(),
            )
        proc = ServiceProcess(name, process, log_file, metrics_port)
        self.processes.append(proc)
        return proc

    def declare_topology(self) -> None:
        """Declare streams, buckets and consumers as the admin identity, as a deployment's setup
        step does (`imagegen nats setup`). Without the layout the services declare them."""
        if not self.nats_credentials:
            return
        done = subprocess.run(
            [self.python, "-m", "shared.cli.main", "nats", "setup", "--wait", "30"],
            env=self.env(ADMIN),
            cwd=self.cwd(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"imagegen nats setup failed:\n{done.stdout}{done.stderr}")

    def start_services(self) -> None:
        for name in SERVICES:
            for _ in range(self.renderers if name == "renderer" else 1):
                self.spawn(name)

    @property
    def nats_servers(self) -> list[str]:
        """The server URLs in `nats_url` (every member of a cluster), as nats-py takes them."""
        return self.client_settings().nats_servers

    def client_env(self, identity: str = CLIENT) -> dict[str, str]:
        """The NATS settings (beyond the URL) of `identity`, as environment variables."""
        if self.nats_credentials:
            return self.nats_credentials.env(identity)
        return {
            key: value
            for key, value in self.extra_env.items()
            if key.startswith("IMAGEGEN_NATS_") and key != "IMAGEGEN_NATS_URL"
        }

    def client_settings(self, identity: str = CLIENT) -> Settings:
        """Settings to reach this stack's NATS as `identity` (auth and TLS included)."""
        options = {key.removeprefix("IMAGEGEN_").lower(): v for key, v in self.client_env(identity).items()}
        return Settings.model_validate({**options, "nats_url": self.nats_url})

    def client_options(self, identity: str = CLIENT) -> dict[str, Any]:
        """nats-py connect options of `identity` (credentials and inbox only), e.g. for
        `Client.connect(stack.nats_url, **stack.client_options())`. Tests that forge messages
        on purpose connect as a service or as ADMIN this way."""
        if self.nats_credentials:
            return self.nats_credentials.options(identity)
        return auth_options(self.client_settings(identity))

    async def connect_as(self, identity: str, **options: Any) -> NATS:
        """A plain NATS connection as `identity` (fails at once when refused)."""
        return await nats.connect(self.nats_servers, **self.client_options(identity), **options)

    async def client(self, identity: str = CLIENT, **options: Any) -> Client:
        """A client of this stack, as its users connect (credentials included)."""
        return await Client.connect(self.nats_servers, **self.client_options(identity), **options)

    def info(self) -> StackInfo:
        """What `imagegen up` records about this stack for later commands."""
        return StackInfo(
            pid=os.getpid(),
            nats_url=self.nats_url,
            database_url=self.database_url,
            console_url=asyncio.run(self.console_url()),
            monitor_url=(
                f"http://127.0.0.1:{self.nats.monitor_port}" if self.nats and self.nats.monitor_port else None
            ),
            output_dir=str(self.output_dir),
            logs=str(self.state_dir / "logs"),
            client_env=self.client_env(),
        )

    async def console_url(self) -> str | None:
        """The web console's address, as the gateway announces it in its service metadata."""
        nc = await connect(self.client_settings(), "imagegen-stack", retry_for=10)
        try:
            for reply in await ping_all(nc, name="gateway", wait=0.5):
                if url := (reply.get("metadata") or {}).get("url"):
                    return str(url)
        finally:
            await nc.close()
        return None

    async def wait_ready(self, timeout: float = 60.0) -> None:
        expected = {name: (self.renderers if name == "renderer" else 1) for name in SERVICES}

        async def watch_processes() -> None:
            # A service that dies at start-up fails the wait at once, not after the timeout.
            while not any(p.process.poll() is not None for p in self.processes):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            raise TimeoutError("a service exited during start-up")

        nc = await connect(self.client_settings(), "imagegen-stack", retry_for=timeout)
        watcher = asyncio.create_task(watch_processes())
        try:
            ready = asyncio.create_task(wait_for_services(nc, expected, timeout=timeout))
            done, _ = await asyncio.wait({ready, watcher}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            done.pop().result()
        except TimeoutError as exc:
            dead = [p for p in self.processes if p.process.poll() is not None]
            details = "".join(
                f"\n--- {p.log_file.name} (exit {p.process.returncode}) ---\n"
                + p.log_file.read_text(errors="replace")[-3000:]
                for p in dead
            )
            raise RuntimeError(f"{exc}{details}") from exc
        finally:
            watcher.cancel()
            await nc.close()

    def start(self) -> None:
        self.start_servers()
        try:
            self.declare_topology()
            self.start_services()
            asyncio.run(self.wait_ready())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in self.processes:
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.processes:
            proc.stop()
        self.processes.clear()
        if self.nats:
            self.nats.stop()
            self.nats = None
        if self.postgres:
            self.postgres.stop()
            self.postgres = None
