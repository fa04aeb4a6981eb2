"""Each rendered project passes its own checks right after generation: ruff, mypy, pytest on
``memory://`` and on a real RabbitMQ, and its entry points and container build steps work."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import FULLY_CHECKED, Broker, bake, run, uv
from .rabbitmq import ensure_installed
from .variants import VARIANTS


def pytest_counts(project: Path, report: str) -> dict[str, int]:
    suite = ET.parse(project / report).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    return {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}


@pytest.mark.parametrize("name", FULLY_CHECKED)
def test_lint_format_and_types_pass(installed: dict[str, Path], name: str) -> None:
    project = installed[name]
    run(project, uv(), "run", "--no-sync", "ruff", "format", "--check", ".")
    run(project, uv(), "run", "--no-sync", "ruff", "check", ".")
    out = run(project, uv(), "run", "--no-sync", "mypy")
    assert "Success: no issues found" in out


@pytest.mark.parametrize("name", FULLY_CHECKED)
def test_its_tests_pass_on_memory_and_on_rabbitmq(
    installed: dict[str, Path], name: str, rabbitmq: Broker
) -> None:
    project = installed[name]
    pytest_run = (uv(), "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider")
    run(project, *pytest_run, "--junitxml=memory.xml")
    memory = pytest_counts(project, "memory.xml")
    assert memory["failures"] == memory["errors"] == 0
    assert memory["tests"] >= 55
    assert memory["skipped"] > 0  # the RabbitMQ half, which needs AMQP_URL

    # The cluster tests skip without -m cluster (test_its_cluster_tests_pass runs them).
    cluster = run(project, *pytest_run, "--collect-only", "-m", "cluster")
    found = re.search(r"(\d+)/\d+ tests collected", cluster)
    assert found, cluster
    clustered = int(found.group(1))
    assert clustered >= 4
    not_cluster = ("-m", "not cluster")
    run(project, *pytest_run, *not_cluster, "--junitxml=rabbitmq.xml", env=rabbitmq.env())
    counts = pytest_counts(project, "rabbitmq.xml")
    # Only the broker-restart test may skip, and only where no restart command is known.
    skipped = 0 if rabbitmq.restart_command else 1
    everything = memory["tests"] - clustered
    assert counts == {"tests": everything, "failures": 0, "errors": 0, "skipped": skipped}


def test_its_cluster_tests_pass_on_a_three_node_cluster(
    installed: dict[str, Path], rabbitmq: Broker
) -> None:
    # rabbitmq: the session's node is up first, so the cluster shares its epmd.
    ensure_installed()
    project = installed["default"]
    pytest_run = (uv(), "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider")
    run(project, *pytest_run, "-m", "cluster", "--junitxml=cluster.xml", timeout=900)
    counts = pytest_counts(project, "cluster.xml")
    assert counts["tests"] >= 4
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0


@pytest.mark.parametrize("name", FULLY_CHECKED)
def test_entry_points_answer_help(installed: dict[str, Path], name: str) -> None:
    project = installed[name]
    answers = VARIANTS[name]
    command = answers.get("project", "measurement-service")
    package = answers.get("package", "measurement_service")
    script = run(project, uv(), "run", "--no-sync", command, "--help")
    module = run(project, uv(), "run", "--no-sync", "python", "-m", package, "--help")
    for out in (script, module):
        assert "--amqp-url" in out and "--http-port" in out and "--shutdown-timeout" in out


def test_container_build_steps_install_a_runnable_service(
    installed: dict[str, Path], tmp_path: Path
) -> None:
    """The Dockerfile's two ``uv sync`` steps, run here (no Docker engine needed)."""
    source = installed["default"]
    dockerfile = (source / "Dockerfile").read_text()
    assert "RUN uv sync --no-dev --no-install-project" in dockerfile
    assert "RUN uv sync --no-dev --no-editable" in dockerfile
    assert "USER service" in dockerfile and "HEALTHCHECK" in dockerfile
    app = tmp_path / "app"
    app.mkdir()
    for name in ("pyproject.toml", "README.md", "uv.lock"):
        shutil.copy(source / name, app / name)
    run(app, uv(), "sync", "--quiet", "--no-dev", "--no-install-project")
    shutil.copytree(source / "src", app / "src")
    run(app, uv(), "sync", "--quiet", "--no-dev", "--no-editable")
    shutil.rmtree(app / "src")  # the image has no sources: the venv must hold the package
    out = run(app, str(app / ".venv/bin/measurement-service"), "--help")
    assert "--amqp-url" in out
    assert not (app / ".venv/bin/pytest").exists()  # no dev tools in the image


def test_the_lowest_allowed_dependencies_pass_types_and_tests(
    installed: dict[str, Path], tmp_path: Path, rabbitmq: Broker
) -> None:
    """What the generated CI's "dependencies" job does with ``lowest-direct``."""
    project = tmp_path / "lowest"
    shutil.copytree(installed["default"], project, ignore=shutil.ignore_patterns(".venv"))
    run(project, uv(), "sync", "--quiet", "--upgrade", "--resolution", "lowest-direct")
    listed = run(project, uv(), "pip", "list")
    assert re.search(r"^aio-pika +10\.1\.0$", listed, re.MULTILINE), listed
    out = run(project, uv(), "run", "--no-sync", "mypy")
    assert "Success: no issues found" in out
    pytest_run = (uv(), "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider")
    run(project, *pytest_run, "--junitxml=lowest.xml", env=rabbitmq.env())
    counts = pytest_counts(project, "lowest.xml")
    assert counts["failures"] == counts["errors"] == 0
    assert counts["tests"] >= 90


@pytest.mark.parametrize("name", sorted(set(VARIANTS) - set(FULLY_CHECKED)))
def test_other_python_versions_lint_and_type_check(
    installed: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """Ruff and mypy target the chosen version; the default install's tools check them."""
    project = bake(tmp_path, **VARIANTS[name])
    tools = installed["default"] / ".venv" / "bin"
    run(project, str(tools / "ruff"), "format", "--check", ".")
    run(project, str(tools / "ruff"), "check", ".")
    out = run(project, str(tools / "mypy"))
    assert "Success: no issues found" in out
