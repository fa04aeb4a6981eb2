"""A generated project takes a new template release, on a real git history, with cruft and with
copier: the template's changes arrive, the team's edits stay, and what cannot merge is named.

The history is built in a temporary folder: the template committed and tagged as its current
release; projects generated from it with each tool, and committed; the edits a team makes, and
committed; the template changed as a minor release changes it, and tagged; then each project's
``scripts/template.py update``, which runs ``cruft update`` or ``copier update``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import TEMPLATE, bake, copier_copy, run, tool, uv
from .team_edits import DELETED, LIVENESS, TEAM_FILES, make_team_edits, release_next, version

TOOLS = ("cruft", "copier")
OLD = version(TEMPLATE)
PACKAGE = "measurement_service"
# What a team owns: an update must leave these exactly as the team committed them.
TEAM_PATHS = (f"src/{PACKAGE}/service", "tests/service", "README.md", "compose.yaml")
TEMPLATE_FILES = ("cookiecutter.json", "copier.yml", "local_extensions.py", "CHANGELOG.md")
TEMPLATE_FOLDERS = ("hooks", "{{cookiecutter.project}}")


def git(folder: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=folder, env=git_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def git_env() -> dict[str, str]:
    names = ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")
    return {**os.environ, **dict.fromkeys(names[:2], "Tester"), **dict.fromkeys(names[2:], "t@x")}


def commit(folder: Path, message: str) -> None:
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "--message", message)


def copy_template(destination: Path) -> Path:
    """This template, as the working tree has it, as a git repository at its release OLD."""
    destination.mkdir()
    for name in TEMPLATE_FILES:
        shutil.copy2(TEMPLATE / name, destination / name)
    for name in TEMPLATE_FOLDERS:
        ignore = shutil.ignore_patterns("__pycache__", ".venv", ".mypy_cache", ".ruff_cache")
        shutil.copytree(TEMPLATE / name, destination / name, ignore=ignore)
    git(destination, "init", "--quiet", "--initial-branch", "main")
    commit(destination, f"Release {OLD}")
    git(destination, "tag", f"v{OLD}")
    return destination


def generate(tool_name: str, template: Path, folder: Path, at: str = "HEAD") -> Path:
    """A project made from ``template`` at ``at`` by ``tool_name``, committed as its first
    commit."""
    project = folder / "measurement-service"
    if tool_name == "cruft":
        command = [tool("cruft"), "create", "--no-input", str(template)]
        command += ["--output-dir", str(folder), "--checkout", at]
        subprocess.run(command, check=True, capture_output=True, env=git_env())
    else:
        copier_copy(template, project, at=at)
    git(project, "init", "--quiet", "--initial-branch", "main")
    commit(project, "Generated from the template")
    return project


def script(project: Path, command: str = "update") -> subprocess.CompletedProcess[str]:
    """The project's own script (``update`` or ``check``), with the template's tests' tools."""
    env = {**git_env(), "CRUFT": tool("cruft"), "COPIER": tool("copier")}
    return subprocess.run(
        [sys.executable, "scripts/template.py", command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def leftovers(project: Path) -> list[str]:
    """Files with conflict markers, and .rej files, anywhere in the project."""
    found = []
    for path in project.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        if path.suffix == ".rej" or re.search(
            r"^(<<<<<<<|>>>>>>>)( |$)", path.read_text(errors="replace"), re.M
        ):
            found.append(str(path.relative_to(project)))
    return sorted(found)


@dataclass
class Updated:
    project: Path
    result: subprocess.CompletedProcess[str]
    team_commit: str


@dataclass
class History:
    template: Path
    updated: dict[str, Updated]
    conflicted: dict[str, Updated]
    fresh: Path  # a project of the new release, made by cookiecutter with the same answers


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    root = tmp_path_factory.mktemp("history")
    template = copy_template(root / "template")
    edited: dict[str, Path] = {}
    conflicting: dict[str, Path] = {}
    for name in TOOLS:
        edited[name] = generate(name, template, root / f"{name}-team")
        make_team_edits(edited[name])
        commit(edited[name], "Our own service instead of the example")
        conflicting[name] = generate(name, template, root / f"{name}-runtime-edit")
        health = conflicting[name] / "src" / PACKAGE / "runtime" / "health.py"
        health.write_text(health.read_text().replace(LIVENESS, 'summary="Alive?"'))
        commit(conflicting[name], "Edit a runtime file, as teams are told not to")
    new = release_next(template)
    commit(template, f"Release {new}")
    git(template, "tag", f"v{new}")
    yield History(
        template=template,
        updated={
            name: Updated(project, script(project), git(project, "rev-parse", "HEAD").strip())
            for name, project in edited.items()
        },
        conflicted={
            name: Updated(project, script(project), git(project, "rev-parse", "HEAD").strip())
            for name, project in conflicting.items()
        },
        fresh=bake(root / "fresh", template=template),
    )


@pytest.mark.parametrize("name", TOOLS)
def test_the_update_applies_cleanly(history: History, name: str) -> None:
    updated = history.updated[name]
    assert updated.result.returncode == 0, updated.result.stderr
    assert "Updated." in updated.result.stdout
    assert leftovers(updated.project) == []
    # A change to a file the team deleted is left out, and the update says so.
    assert f"this project deleted, so the update left those changes out: {DELETED}." in (
        updated.result.stderr
    )


@pytest.mark.parametrize("name", TOOLS)
def test_every_template_change_arrives(history: History, name: str) -> None:
    project = history.updated[name].project
    fresh = history.fresh
    team = [project / path for path in TEAM_PATHS]
    for path in sorted(fresh.rglob("*")):
        relative = path.relative_to(fresh)
        if not path.is_file() or any((project / relative).is_relative_to(t) for t in team):
            continue
        if relative.as_posix() == "pyproject.toml":
            continue  # shared: checked below
        if relative.as_posix() == DELETED:
            assert not (project / relative).exists()  # the team's deletion stands
            continue
        assert (project / relative).read_bytes() == path.read_bytes(), relative
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["one-loop-template"]["version"] == version(history.template) != OLD
    dependencies = pyproject["project"]["dependencies"]
    assert "pydantic-settings>=2.8,<3" in dependencies  # the template's bump
    assert "yarl>=1.9" in dependencies  # the team's addition


@pytest.mark.parametrize("name", TOOLS)
def test_every_team_edit_stays(history: History, name: str) -> None:
    updated = history.updated[name]
    status = git(updated.project, "status", "--porcelain", "--untracked-files=all", *TEAM_PATHS)
    assert status == ""  # nothing changed, nothing brought back
    for relative, text in TEAM_FILES.items():
        assert (updated.project / relative).read_text(encoding="utf-8") == text
    removed = updated.project / "src" / PACKAGE / "service" / "state.py"
    assert not removed.exists()  # deleted by the team, and not brought back


@pytest.mark.parametrize("name", TOOLS)
def test_the_updated_project_passes_its_own_checks(history: History, name: str) -> None:
    project = history.updated[name].project
    run(project, uv(), "sync", "--quiet")
    run(project, uv(), "run", "--no-sync", "ruff", "format", "--check", ".")
    run(project, uv(), "run", "--no-sync", "ruff", "check", ".")
    assert "Success" in run(project, uv(), "run", "--no-sync", "mypy")
    out = run(project, uv(), "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider")
    assert re.search(r"\d+ passed", out)
    assert "test_guestbook" in run(
        project, uv(), "run", "--no-sync", "pytest", "-q", "--collect-only", "tests/service"
    )


@pytest.mark.parametrize("name", TOOLS)
def test_an_edited_runtime_file_is_named_as_a_conflict(history: History, name: str) -> None:
    conflicted = history.conflicted[name]
    assert conflicted.result.returncode == 1
    health = f"src/{PACKAGE}/runtime/health.py"
    assert "The update left conflicts" in conflicted.result.stderr
    assert health in conflicted.result.stderr
    assert health in " ".join(leftovers(conflicted.project))


@pytest.mark.parametrize("name", TOOLS)
def test_check_says_when_the_template_has_moved_on(
    history: History, name: str, tmp_path: Path
) -> None:
    behind = generate(name, history.template, tmp_path, at=f"v{OLD}")
    result = script(behind, "check")
    assert result.returncode == 1
    assert "The template has moved on" in result.stderr
    assert "scripts/template.py update" in result.stderr
    current = script(history.updated[name].project, "check")
    assert current.returncode == 0, current.stderr
    assert "Up to date" in current.stdout


def refused(project: Path, message: str) -> None:
    """The update stops with ``message`` and changes nothing."""
    before = git(project, "status", "--porcelain")
    result = script(project)
    assert result.returncode == 1
    assert message in result.stderr
    assert git(project, "status", "--porcelain") == before


@pytest.mark.parametrize("name", TOOLS)
def test_an_update_over_uncommitted_changes_is_refused(
    history: History, name: str, tmp_path: Path
) -> None:
    project = generate(name, history.template, tmp_path, at=f"v{OLD}")
    (project / "README.md").write_text("# Work in progress\n", encoding="utf-8")
    refused(project, "error: the project has uncommitted changes (README.md)")


@pytest.mark.parametrize("name", TOOLS)
def test_a_project_without_answers_is_told_how_to_link_it(
    history: History, name: str, tmp_path: Path
) -> None:
    project = generate(name, history.template, tmp_path, at=f"v{OLD}")
    for answers in (".cruft.json", ".copier-answers.yml"):
        (project / answers).unlink(missing_ok=True)
    commit(project, "As generated before the template had versions")
    refused(project, "is not linked to its template")
    assert "docs/updating.md" in script(project).stderr
    check = script(project, "check")  # in CI: a warning, not a failure
    assert check.returncode == 0
    assert "::warning::" in check.stderr


@pytest.mark.parametrize("name", TOOLS)
def test_an_answers_file_naming_a_version_that_does_not_exist_is_refused(
    history: History, name: str, tmp_path: Path
) -> None:
    project = generate(name, history.template, tmp_path, at=f"v{OLD}")
    if name == "cruft":
        answers = project / ".cruft.json"
        recorded = git(history.template, "rev-parse", f"v{OLD}").strip()
        unknown = "0123456789abcdef0123456789abcdef01234567"
    else:
        answers = project / ".copier-answers.yml"
        recorded, unknown = f"_commit: v{OLD}", "_commit: v0.0.0"
    text = answers.read_text(encoding="utf-8")
    assert recorded in text
    answers.write_text(text.replace(recorded, unknown), encoding="utf-8")
    commit(project, "A hand-edited answers file")
    refused(project, f"which {history.template} does not have")
