"""Jinja extensions of this template, loaded by cookiecutter (``_extensions`` in cookiecutter.json)
and by copier (``_jinja_extensions`` in copier.yml), so that both render the same tree.

- ``TemplateFacts`` gives every file ``template_version`` (the newest version in CHANGELOG.md,
  the one place it is written), the ``answer_problem`` filter that copier's validators call, and
  ``next_steps``, the message after generation. Both filters run the hooks' own functions, so
  the two tools reject the same answers with the same sentences.
- ``CookiecutterNamespace`` (copier only) lets the files say ``cookiecutter.project`` as they do
  for cookiecutter: it puts copier's answers under that name.
- ``FlatProjectFolder`` (cookiecutter only) renders the top folder's name as one path segment.
  Cookiecutter creates that folder before the pre-generation hook checks the answers, and when
  the hook fails it removes that folder alone: a ``project`` of ``a/b`` would leave ``a/``
  behind, and one of ``..`` or ``""`` would stop cookiecutter before the hook could say why. So
  the name is flattened; cookiecutter's clean-up then removes all it made, and the hook still
  sees, and rejects, the raw answer.

One process may import this module once and render two releases with it (cruft's update
does), so it reads each release's files through the Jinja loader, never next to ``__file__``,
and must stay compatible with the files of older releases.

Example use, in a template file: ``version = "{{ template_version }}"``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2 import Environment, pass_environment
from jinja2.ext import Extension

PROJECT_FOLDER = "{{cookiecutter.project}}"
INVALID = "_invalid-project-name"
RELEASE = re.compile(r"^## (\d+\.\d+\.\d+)\b", re.MULTILINE)


def template_root(environment: Environment) -> Path:
    """The folder of the template being rendered, found from the environment's loader.

    Not from ``__file__``: cruft renders two releases in one process, and Python imports this
    module once, so its file may belong to another release, or another template. copier's
    loader searches the template's root; cookiecutter's searches ``.``, its project folder.
    """
    searched = getattr(environment.loader, "searchpath", None) or ["."]
    for folder in map(Path, searched):
        for candidate in (folder, folder.parent):
            if (candidate / "CHANGELOG.md").is_file() and (candidate / "hooks").is_dir():
                return candidate.resolve()
    raise LookupError(f"no template (CHANGELOG.md and hooks/) in or above {searched}")


def template_version(root: Path) -> str:
    """The newest release named in ``root``/CHANGELOG.md (its first ``## X.Y.Z`` heading)."""
    found = RELEASE.search((root / "CHANGELOG.md").read_text(encoding="utf-8"))
    if found is None:
        raise ValueError("CHANGELOG.md names no release: it needs a '## X.Y.Z' heading")
    return found.group(1)


class TemplateVersion:
    """``{{ template_version }}``: read when a file prints it, since the loader, which says
    where the template is, is set only after the extensions are made."""

    def __init__(self, environment: Environment) -> None:
        self._environment = environment

    def __str__(self) -> str:
        return template_version(template_root(self._environment))


def _hook(root: Path, name: str) -> ModuleType:
    """A hook as a module. The hooks are valid Python before Jinja renders them, which is how
    the template's tests import them too."""
    spec = importlib.util.spec_from_file_location(f"_template_{name}", root / "hooks" / name)
    assert spec is not None and spec.loader is not None  # a file we ship
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pass_environment
def answer_problem(environment: Environment, answer: Any, question: str) -> str:
    """What is wrong with ``answer`` to ``question``, or "" (a copier validator's "valid")."""
    hook = _hook(template_root(environment), "pre_gen_project.py")
    return hook.problem(question, answer) or ""


@pass_environment
def next_steps(environment: Environment, project: str, package: str, folder: str) -> str:
    """What the post-generation hook prints, for copier's message after copying to ``folder``."""
    hook = _hook(template_root(environment), "post_gen_project.py")
    return str(hook.next_steps({"project": project, "package": package, "folder": str(folder)}))


def plain_segment(name: str) -> str:
    """``name`` with path separators replaced, or a placeholder for ``""``, ``.`` and ``..``."""
    flat = name.replace("/", "_").replace("\\", "_")
    return INVALID if flat.strip(".") == "" else flat


class TemplateFacts(Extension):
    """``template_version``, ``next_steps`` and the ``answer_problem`` filter, for both tools."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["template_version"] = TemplateVersion(environment)
        environment.globals["next_steps"] = next_steps
        environment.filters["answer_problem"] = answer_problem


class CookiecutterNamespace(Extension):
    """Copier's answers, also under ``cookiecutter``: the files are written for cookiecutter."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        base = environment.context_class

        class Context(base):  # type: ignore[misc, valid-type]
            def __init__(
                self, env: Environment, parent: MutableMapping[str, Any], *args: Any, **kw: Any
            ) -> None:
                if "cookiecutter" not in parent and "_copier_answers" in parent:
                    answered = parent["_copier_answers"]
                    parent["cookiecutter"] = {
                        key: parent[key] for key in answered if not key.startswith("_")
                    }
                super().__init__(env, parent, *args, **kw)

        environment.context_class = Context


class FlatProjectFolder(Extension):
    """Renders the template's top folder name as one plain path segment."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["plain_segment"] = plain_segment

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        # Cookiecutter renders folder names with from_string, which passes no template name.
        if name is None and source == PROJECT_FOLDER:
            return "{{ cookiecutter.project | plain_segment }}"
        return source
