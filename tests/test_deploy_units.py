"""The systemd units in deploy/: valid for systemd, and in step with the daemon's exit codes and stop.

Nothing else runs these files before an operator installs them, so a misspelt directive (systemd
ignores it with a warning) or an exit code renumbered in the CLI would reach production unseen.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logwarden.cli import EXIT_CONFIG, EXIT_MODEL, EXIT_STATE, EXIT_USAGE
from logwarden.daemon.config import ShutdownConfig

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = {"logwarden.service": "logwarden.service", "logwarden@.service": "logwarden@tenant-a.service"}
INSTALLED_BINARY = "/opt/logwarden/venv/bin/logwarden"


def service_settings(unit: str) -> dict[str, str]:
    """The [Service] section's settings, the last one winning as in systemd (helper)."""
    settings: dict[str, str] = {}
    section = ""
    for raw in (DEPLOY / unit).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_passes_systemd_verification_without_a_warning(unit: str, tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the unit and warns of nothing (an unknown key is only a warning)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is needed to check the units (Debian: apt install systemd)"
    logwarden = Path(sys.executable).with_name("logwarden")
    assert logwarden.exists(), "the logwarden console script sits beside the interpreter"
    text = (DEPLOY / unit).read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    copy = tmp_path / UNITS[unit]  # a template unit is verified through one instance of it
    copy.write_text(text.replace(INSTALLED_BINARY, str(logwarden)), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_stops_restarting_on_exactly_the_exit_codes_a_restart_cannot_fix(unit: str) -> None:
    """A usage error, invalid config, unloadable model and unusable state stop the unit; anything else is
    restarted."""
    settings = service_settings(unit)
    assert {int(code) for code in settings["RestartPreventExitStatus"].split()} == {
        EXIT_USAGE,
        EXIT_CONFIG,
        EXIT_MODEL,
        EXIT_STATE,
    }
    assert settings["Restart"] == "on-failure"


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_gives_a_graceful_stop_more_time_than_the_daemon_takes(unit: str) -> None:
    """systemd's SIGKILL must come after the daemon's own stop deadline plus closing its two clients."""
    settings = service_settings(unit)
    closing_clients_s = 2 * 0.5
    assert float(settings["TimeoutStopSec"]) > ShutdownConfig().timeout_seconds + closing_clients_s
    assert settings["KillSignal"] == "SIGTERM"
    assert settings["Type"] == "notify" and "logwarden run --config" in settings["ExecStart"]
