"""The template's own Python (hooks, extension, tests, bench) is linted like the code it
generates."""

from __future__ import annotations

import pytest

from .conftest import TEMPLATE, run, tool

OWN_CODE = ("hooks", "tests", "bench", "local_extensions.py")  # not the template: it is Jinja


@pytest.mark.parametrize("check", [("check",), ("format", "--check")])
def test_template_code_passes_ruff(check: tuple[str, ...]) -> None:
    run(TEMPLATE, tool("ruff"), *check, *OWN_CODE)
