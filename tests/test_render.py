"""Rendering alone: every option value at least once, no Jinja left, data files that parse."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import TEMPLATE, bake
from .variants import AWKWARD, CUSTOM, VARIANTS

# "${{" is GitHub Actions syntax that the template must leave in the workflow.
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp(request.param), **VARIANTS[request.param])


def files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file())


def test_no_jinja_is_left_in_names_or_contents(rendered: Path) -> None:
    assert len(files(rendered)) > 30
    for path in [rendered, *rendered.rglob("*")]:
        assert not LEFTOVER_JINJA.search(str(path.relative_to(rendered.parent))), path
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            found = LEFTOVER_JINJA.search(text)
            assert found is None, (
                f"{path.relative_to(rendered)}: {text[found.start() - 40 : found.end() + 40]!r}"
            )


def test_template_has_the_files_a_service_needs(rendered: Path) -> None:
    names = {p.relative_to(rendered).as_posix() for p in files(rendered)}
    assert {
        "pyproject.toml", "README.md", "Dockerfile", ".dockerignore", "compose.yaml",
        ".env.example", ".gitignore", ".gitattributes", ".github/workflows/ci.yml",
        "docs/runtime.md", "docs/updating.md", "docs/scaling.md", "scripts/template.py",
        "deploy/kubernetes/kustomization.yaml", "deploy/kubernetes/keda.yaml",
    } <= names  # fmt: skip
    assert not any(name.startswith(".copier") for name in names)  # copier's answers, not ours
    assert (rendered / ".gitattributes").read_text().strip() == "* text=auto eol=lf"


def test_data_files_parse(rendered: Path) -> None:
    tomllib.loads((rendered / "pyproject.toml").read_text(encoding="utf-8"))
    yaml.safe_load((rendered / "compose.yaml").read_text(encoding="utf-8"))
    workflow = yaml.safe_load((rendered / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["check"]
    assert job["services"]["rabbitmq"]["image"].startswith("rabbitmq:")
    assert job["env"]["AMQP_URL"].startswith("amqp://")
    assert job["env"]["AMQP_RESTART_COMMAND"] == "docker restart ${{ job.services.rabbitmq.id }}"
    setup = next(step for step in job["steps"] if "setup-uv" in step.get("uses", ""))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    commands = [step.get("run", "") for step in job["steps"]]
    assert any("mypy" in c for c in commands) and any("pytest" in c for c in commands)
    # The runtime also runs on the lowest and the newest releases pyproject.toml allows.
    deps = workflow["jobs"]["dependencies"]
    resolutions = {entry["resolution"] for entry in deps["strategy"]["matrix"]["include"]}
    assert resolutions == {"lowest-direct", "highest"}
    steps = [step.get("run", "") for step in deps["steps"]]
    assert "uv sync --upgrade --resolution ${{ matrix.resolution }}" in steps
    assert "uv run --no-sync pytest -ra" in steps
    assert deps["env"]["AMQP_URL"].startswith("amqp://")
    # The cluster tests run where the distribution's rabbitmq-server can be installed.
    cluster = [step.get("run", "") for step in workflow["jobs"]["cluster"]["steps"]]
    assert any("apt-get install -y -qq rabbitmq-server" in c for c in cluster)
    assert cluster[-1] == "uv run pytest -ra -m cluster"
    # And a job says when the template has a newer release.
    assert workflow["jobs"]["template"]["steps"][-1]["run"] == "python3 scripts/template.py check"


def test_python_version_reaches_every_tool(rendered: Path) -> None:
    version = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"][0]
    for name, answers in VARIANTS.items():
        if rendered.parent.name.startswith(name):
            version = answers.get("python_version", version)
    pyproject = tomllib.loads((rendered / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == f">={version}"
    assert pyproject["tool"]["mypy"]["python_version"] == version
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert f"ARG PYTHON_VERSION={version}" in (rendered / "Dockerfile").read_text()
    workflow = yaml.safe_load((rendered / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    matrix = workflow["jobs"]["check"]["strategy"]["matrix"]["python-version"]
    assert matrix[0] == version
    assert matrix == sorted(matrix, key=lambda v: tuple(map(int, v.split("."))))


def test_the_template_version_reaches_metadata_runtime_and_docs(rendered: Path) -> None:
    changelog = (TEMPLATE / "CHANGELOG.md").read_text(encoding="utf-8")
    version = re.search(r"^## (\d+\.\d+\.\d+) \(\d{4}-\d\d-\d\d\)$", changelog, re.M)
    assert version is not None, "CHANGELOG.md needs a '## X.Y.Z (YYYY-MM-DD)' heading"
    pyproject = tomllib.loads((rendered / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["one-loop-template"]["version"] == version.group(1)
    [package] = (rendered / "src").iterdir()
    runtime = (package / "runtime" / "__init__.py").read_text(encoding="utf-8")
    assert f'TEMPLATE_VERSION = "{version.group(1)}"' in runtime
    assert f"version {version.group(1)}" in (rendered / "docs/runtime.md").read_text()
    upgrading = changelog[version.end() : changelog.find("\n## ", version.end())]
    assert "### Upgrading" in upgrading


def test_custom_answers_reach_every_file(tmp_path: Path) -> None:
    project = bake(tmp_path, **CUSTOM)
    assert project.name == CUSTOM["project"]
    package = project / "src" / CUSTOM["package"]
    assert (package / "service" / "routes.py").is_file()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == CUSTOM["project"]
    assert pyproject["project"]["description"] == AWKWARD
    assert pyproject["project"]["authors"] == [{"name": CUSTOM["author"], "email": CUSTOM["email"]}]
    assert pyproject["project"]["scripts"] == {CUSTOM["project"]: f"{CUSTOM['package']}.main:main"}
    app = ast.parse((package / "app.py").read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in app.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "DISTRIBUTION"
    }  # fmt: skip
    assert constants == {"DISTRIBUTION": CUSTOM["project"]}
    settings = (package / "runtime" / "settings.py").read_text(encoding="utf-8")
    prefix = CUSTOM["package"].upper() + "_"
    assert f'ENV_PREFIX = "{prefix}"' in settings
    assert "default=9090," in settings
    assert f'default="{CUSTOM["exchange"]}"' in settings
    assert "EXPOSE 9090" in (project / "Dockerfile").read_text()
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"][CUSTOM["project"]]
    assert service["ports"] == ["9090:9090"]
    assert f"{prefix}AMQP_URL" in service["environment"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {CUSTOM['name']}\n")
    assert AWKWARD in readme


def test_the_default_description_is_derived_from_the_name(tmp_path: Path) -> None:
    project = bake(tmp_path, name="Billing Desk")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    description = pyproject["project"]["description"]
    assert description.startswith("Billing Desk: ")
    assert "sensor" not in description.lower()  # nothing of the example's domain
