"""The generated Kubernetes manifests: valid for a pinned Kubernetes version, offline, and in
agreement with the Dockerfile and the runtime (port, user, health endpoints, shutdown time).
No image can be built here, so nothing is deployed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import bake
from .variants import VARIANTS

KUBERNETES = "1.31.0"  # the oldest minor release its upstream still supported in 2026-11
PRE_STOP_PAUSE = ("sleep", "5")


@pytest.fixture(scope="module", params=["default", "custom"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp(request.param), **VARIANTS[request.param])


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def base(project: Path) -> dict[str, dict[str, Any]]:
    """The base's resources, by kind, as kustomization.yaml lists them."""
    folder = project / "deploy/kubernetes"
    kustomization = documents(folder / "kustomization.yaml")[0]
    found = {}
    for name in kustomization["resources"]:
        for doc in documents(folder / name):
            found[doc["kind"]] = doc
    return found


def test_every_manifest_is_valid_for_the_pinned_kubernetes(project: Path) -> None:
    folder = project / "deploy/kubernetes"
    kustomization = documents(folder / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    optional = {"keda.yaml"}  # KEDA's kinds are not Kubernetes'; checked below
    assert listed | optional | {"kustomization.yaml"} == {p.name for p in folder.iterdir()}
    for name in sorted(listed):
        for doc in documents(folder / name):
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises if invalid
    kinds = set(base(project))
    assert kinds == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}


def test_an_invalid_manifest_is_caught(project: Path) -> None:
    deployment = base(project)["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["prot"] = 8080  # a typo strict validation refuses
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_deployment_agrees_with_the_dockerfile_and_the_runtime(project: Path) -> None:
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    resources = base(project)
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    settings = resources["ConfigMap"]["data"]
    prefix = next(key for key in settings if key.endswith("_HTTP_PORT")).removesuffix("HTTP_PORT")

    exposed = int(found(r"^EXPOSE (\d+)$", dockerfile))
    assert container["ports"] == [{"name": "http", "containerPort": exposed}]
    assert int(settings[f"{prefix}HTTP_PORT"]) == exposed
    assert resources["Service"]["spec"]["ports"][0]["targetPort"] == "http"

    uid = int(found(r"useradd .*--uid (\d+)", dockerfile))
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    health = (project / "src" / project_package(project) / "runtime/health.py").read_text()
    routes = set(re.findall(r'@routes\.get\(\s*"(/health/[a-z]+)"', health))
    assert routes == {"/health/live", "/health/ready"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert "/health/ready" in dockerfile  # the HEALTHCHECK asks the same question
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"

    # SIGKILL only after the preStop pause and the graceful shutdown have had their time.
    assert tuple(container["lifecycle"]["preStop"]["exec"]["command"]) == PRE_STOP_PAUSE
    shutdown = float(settings[f"{prefix}SHUTDOWN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > shutdown + float(PRE_STOP_PAUSE[1])
    # The start-up probe outlasts the connect timeout, after which the service exits 1 anyway.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > 10

    secret = container["env"][0]
    assert secret["name"] == f"{prefix}AMQP_URL"
    assert secret["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert f"{prefix}AMQP_URL" not in settings  # never in the ConfigMap

    memory = container["resources"]["requests"]["memory"]
    assert memory.endswith("Mi") and int(memory[:-2]) >= 64  # above the measured 56 MB idle


def test_the_disruption_budget_and_keda_keep_a_consumer(project: Path) -> None:
    resources = base(project)
    deployment = resources["Deployment"]
    name = deployment["metadata"]["name"]
    assert deployment["spec"]["replicas"] >= 2
    assert resources["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1

    keda = {doc["kind"]: doc for doc in documents(project / "deploy/kubernetes/keda.yaml")}
    scaled = keda["ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == name
    assert scaled["spec"]["minReplicaCount"] >= 2
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == name  # the service queue: SERVICE_NAME
    assert trigger["metadata"]["mode"] == "QueueLength"
    auth = keda["TriggerAuthentication"]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    [ref] = auth["spec"]["secretTargetRef"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert ref["name"] == container["env"][0]["valueFrom"]["secretKeyRef"]["name"]


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not found"
    return match.group(1)


def project_package(project: Path) -> str:
    [package] = [p.name for p in (project / "src").iterdir() if p.is_dir()]
    return package
