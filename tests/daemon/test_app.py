"""The composition root's own logic: what the start-up line reports about the software that runs."""

from __future__ import annotations

import platform
from importlib import metadata

import pytest

from logwarden import __version__
from logwarden.daemon.app import SOFTWARE_REPORTED, software_versions


def test_software_versions_names_logwarden_python_and_the_event_path_libraries() -> None:
    """logwarden's own version, Python's, and each library on the event path as pip installed it."""
    versions = software_versions()

    assert versions["logwarden"] == __version__
    assert versions["python"] == platform.python_version()
    assert {name: versions[name] for name in SOFTWARE_REPORTED} == {
        name: metadata.version(name) for name in SOFTWARE_REPORTED
    }


def test_software_versions_reports_a_missing_library_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A library that is not installed is reported as such; the start-up line is still written."""
    monkeypatch.setattr("logwarden.daemon.app.SOFTWARE_REPORTED", ("no-such-distribution-logwarden",))

    assert software_versions()["no-such-distribution-logwarden"] == "not installed"
