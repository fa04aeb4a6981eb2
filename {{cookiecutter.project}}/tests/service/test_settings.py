"""The example's own settings: read from the environment and flags like the runtime's, with
errors that name the variable."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package }}.settings import ENV_PREFIX, load_settings


def test_service_settings_come_from_flags_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}SUMMARY_INTERVAL", "5")
    settings = load_settings(["--alert-threshold", "42.5", "--http-port", "9003"])
    assert (settings.summary_interval, settings.alert_threshold) == (5.0, 42.5)
    assert settings.http_port == 9003  # the runtime's, in the same object


def test_a_bad_service_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}SUMMARY_INTERVAL", "0")
    with pytest.raises(ValueError, match=f"{ENV_PREFIX}SUMMARY_INTERVAL \\(--summary-interval\\)"):
        load_settings([])
