"""The template's own Python (hooks, extension, tests) is linted like the code it generates."""

from __future__ import annotations

import shutil

import pytest

from .conftest import TEMPLATE, run

OWN_CODE = ("hooks", "tests", "local_extensions.py")  # not the template folder: it is Jinja


@pytest.mark.parametrize("check", [("check",), ("format", "--check")])
def test_template_code_passes_ruff(check: tuple[str, ...]) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed; run the tests through scripts/test")
    run(TEMPLATE, ruff, *check, *OWN_CODE)
