"""Every benchmark script still starts: it imports what it measures and answers ``--help``.

The scripts reach into the daemon's modules (the state store, the record reader, the loop), which
move as the code is reorganised; no test runs a benchmark (timings never pass or fail), so without
this check a moved module would break a script unnoticed until the next measurement.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((PROJECT_ROOT / "benchmarks").glob("*.py"))
MAIN_GUARD = 'if __name__ == "__main__":'


def test_the_benchmarks_folder_has_scripts() -> None:
    """The glob below finds the scripts, so an empty parametrisation cannot pass for a check."""
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_benchmark_script_answers_help(script: Path) -> None:
    """A script exits 0 on ``--help``, importing every module it names; one with a main prints usage.

    ``lean_producer.py`` and ``synthetic_model.py`` are modules the other scripts import, with no
    command of their own: for them, running the file is the import check.
    """
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if MAIN_GUARD in script.read_text(encoding="utf-8"):
        assert "usage:" in done.stdout
