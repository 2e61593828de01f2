"""Run the ``logwarden`` command in a subprocess, as a user does, and parse what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m logwarden.cli`` with ``args`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "logwarden.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse one JSON object per non-empty line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stderr_summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The summary object ``logwarden score`` prints last on stderr."""
    return json.loads(result.stderr.strip().splitlines()[-1])["summary"]
