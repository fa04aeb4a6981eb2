"""The README and .env.example list every setting, so they cannot drift from settings.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package }}.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in Settings.model_fields
        if f"{ENV_PREFIX}{name.upper()}" not in text
    ]
    assert missing == []
