"""Every setting is documented where a reader looks for it, so the docs cannot drift from code:
the runtime's in ``docs/runtime.md`` and ``.env.example`` (both the template's), the service's
own in ``README.md`` (yours)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from {{ cookiecutter.package }}.runtime.settings import ENV_PREFIX, RuntimeSettings
from {{ cookiecutter.package }}.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("document", "settings"),
    [
        ("docs/runtime.md", RuntimeSettings),
        (".env.example", RuntimeSettings),
        ("README.md", Settings),
    ],
)
def test_every_setting_is_documented(document: str, settings: type[BaseModel]) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    names = set(settings.model_fields)
    if settings is Settings:  # the README lists the service's own
        names -= set(RuntimeSettings.model_fields)
    variables = [f"{ENV_PREFIX}{name.upper()}" for name in sorted(names)]
    assert variables or settings is Settings  # a service may have no settings of its own
    assert [variable for variable in variables if variable not in text] == []
