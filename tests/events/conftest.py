"""Fixtures for event parsing tests: the loghub samples under LOGWARDEN_DATA."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def read_loghub(name: str) -> list[str]:
    """Lines of ``loghub/<name>_2k.log``; fails the test with a clear message when the data is absent."""
    data = Path(os.environ.get("LOGWARDEN_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    path = data / "loghub" / f"{name}_2k.log"
    if not path.is_file():
        pytest.fail(
            f"{path} not found: set LOGWARDEN_DATA to the shared data folder (default ../shared/data)"
        )
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def loghub_lines() -> Callable[[str], list[str]]:
    """Reader of a loghub sample by name (HDFS, OpenSSH, Linux, BGL, Thunderbird)."""
    return read_loghub


@pytest.fixture(scope="session")
def hdfs_lines() -> list[str]:
    """The 2,000 loghub HDFS lines."""
    return read_loghub("HDFS")
