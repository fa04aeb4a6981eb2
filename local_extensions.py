"""A Jinja extension that cookiecutter loads from this template (``_extensions`` in
cookiecutter.json).

Cookiecutter creates the project folder before the pre-generation hook checks the answers, and
when the hook fails it removes that folder alone: a ``project`` of ``a/b`` would leave ``a/``
behind, and one of ``..`` or ``""`` would stop cookiecutter before the hook could say why. So the
top folder's name is rendered as one plain path segment; cookiecutter's own clean-up then removes
all it made, and the hook still sees, and rejects, the raw answer.
"""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension

PROJECT_FOLDER = "{{cookiecutter.project}}"
INVALID = "_invalid-project-name"


def plain_segment(name: str) -> str:
    """``name`` with path separators replaced, or a placeholder for ``""``, ``.`` and ``..``."""
    flat = name.replace("/", "_").replace("\\", "_")
    return INVALID if flat.strip(".") == "" else flat


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
