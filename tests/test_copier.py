"""copier serves the same template as cookiecutter, from the same files: the same questions,
byte-identical trees for the same answers, and the same sentence for each bad answer."""

from __future__ import annotations

import filecmp
import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import TEMPLATE, bake, copier_copy, tool
from .test_hooks import GOOD, REJECTED, pre_gen
from .variants import VARIANTS

COPIER = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
COOKIECUTTER = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))


def test_the_questions_are_cookiecutters_prompts() -> None:
    prompts = {key: value for key, value in COOKIECUTTER.items() if not key.startswith("_")}
    questions = {key: value for key, value in COPIER.items() if not key.startswith("_")}
    assert list(questions) == list(prompts)  # the same order, so the same interview
    for key, default in prompts.items():
        question = questions[key]
        assert question["help"] == COOKIECUTTER["__prompts__"][key]
        if isinstance(default, list):
            assert question["choices"] == default
            assert question["default"] == default[0]
        else:
            # copier names the answers directly; cookiecutter under "cookiecutter."
            assert question["default"] == default.replace("cookiecutter.", "")


def test_every_checked_answer_has_its_validator() -> None:
    validated = {key for key, value in COPIER.items() if "validator" in value}
    assert validated == set(pre_gen.CHECKS)
    for key in validated:
        assert COPIER[key]["validator"] == f"{{{{ {key} | answer_problem('{key}') }}}}"


def test_the_team_owned_paths_are_the_same_for_both_tools(tmp_path: Path) -> None:
    project = bake(tmp_path)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    cruft = set(pyproject["tool"]["cruft"]["skip"])
    copier = {
        entry.removesuffix("/**").replace("src/*/", "src/measurement_service/")
        for entry in COPIER["_skip_if_exists"]
    }
    assert copier == cruft - {".git"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_both_tools_write_byte_identical_trees(tmp_path: Path, variant: str) -> None:
    answers: dict[str, Any] = VARIANTS[variant]
    made_by_cookiecutter = bake(tmp_path / "cookiecutter", **answers)
    made_by_copier = tmp_path / "copier"
    copier_copy(TEMPLATE, made_by_copier, **answers)
    assert (made_by_copier / ".copier-answers.yml").is_file()
    assert differences(made_by_cookiecutter, made_by_copier) == [".copier-answers.yml"]


def differences(left: Path, right: Path) -> list[str]:
    """Paths that are in one tree only, or differ in content, relative to the trees' roots."""
    found: list[str] = []

    def walk(compared: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(prefix + name for name in compared.left_only + compared.right_only)
        _, mismatch, errors = filecmp.cmpfiles(
            compared.left, compared.right, compared.common_files, shallow=False
        )
        found.extend(prefix + name for name in mismatch + errors)
        for name, sub in compared.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right), "")
    return sorted(found)


@pytest.mark.parametrize(("question", "answer", "message"), REJECTED)
def test_copier_rejects_what_the_hook_rejects_with_the_same_sentence(
    tmp_path: Path, question: str, answer: str, message: str
) -> None:
    destination = tmp_path / "project"
    result = copier_copy(TEMPLATE, destination, check=False, **{**GOOD, question: answer})
    assert result.returncode != 0
    sentence = pre_gen.problem(question, answer)
    assert sentence is not None and message in sentence
    assert f"Validation error for question '{question}': {sentence}" in result.stderr
    assert not destination.exists()


def test_copier_refuses_a_python_outside_the_choices_as_cookiecutter_does(tmp_path: Path) -> None:
    result = copier_copy(TEMPLATE, tmp_path / "p", check=False, python_version="3.10")
    assert result.returncode != 0
    assert "Invalid choice for 'python_version': '3.10'" in result.stderr
    assert not (tmp_path / "p").exists()


def test_copier_says_the_next_steps(tmp_path: Path) -> None:
    result = copier_copy(TEMPLATE, tmp_path / "desk", project="order-desk", package="orders")
    assert f"cd {tmp_path / 'desk'}" in result.stderr + result.stdout
    assert "uv run order-desk --amqp-url memory://" in result.stderr + result.stdout


def test_copier_is_refused_without_trust(tmp_path: Path) -> None:
    # The template loads its own Jinja extension, which copier runs only when trusted.
    result = subprocess.run(
        [tool("copier"), "copy", "--defaults", str(TEMPLATE), str(tmp_path / "p")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "consider adding the `--trust` option" in result.stderr
