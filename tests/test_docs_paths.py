"""The contributor and operator docs name files by path; every path they name must exist.

Modules move (``daemon/state_table.py`` became ``daemon/state/table.py``), and a guide that
sends a newcomer to a file that is gone costs more than no guide. This check reads every
Markdown file in the project and looks each repository path up in the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The project's own top-level folders: a path that starts with one of them names a file or
# folder of this repository (``/etc/logwarden/config.yaml`` and ``DIR/model.onnx`` do not).
TOP_LEVEL_FOLDERS = ("logwarden", "daemon", "train", "deploy", "tests", "benchmarks", ".ci")
REPOSITORY_PATH = re.compile(
    r"(?<![\w/.-])((?:" + "|".join(re.escape(f) for f in TOP_LEVEL_FOLDERS) + r")/[\w./-]*[\w/])"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)")


def markdown_files() -> list[Path]:
    """Every Markdown file of the project, outside the virtualenv and git's own folder."""
    skipped = {".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    return sorted(
        path
        for path in PROJECT_ROOT.rglob("*.md")
        if not skipped.intersection(path.relative_to(PROJECT_ROOT).parts)
    )


def named_paths(text: str) -> set[str]:
    """Repository paths named in backquotes, and the targets of relative Markdown links."""
    named: set[str] = set()
    for quoted in re.findall(r"`([^`\n]+)`", text):
        named.update(match.group(1) for match in REPOSITORY_PATH.finditer(quoted))
    named.update(match.group(1) for match in MARKDOWN_LINK.finditer(text))
    return named


def missing_paths(document: Path) -> list[str]:
    """The paths ``document`` names that exist neither beside it nor from the project root."""
    missing = []
    for name in sorted(named_paths(document.read_text(encoding="utf-8"))):
        if "*" in name or name.startswith(("http", "mailto")):
            continue
        if not ((document.parent / name).exists() or (PROJECT_ROOT / name).exists()):
            missing.append(name)
    return missing


def test_named_paths_finds_quoted_paths_and_links_but_not_system_paths() -> None:
    """Quoted repository paths and link targets (anchor cut) are found; ``/etc/...``, ``DIR/...`` are not."""
    text = (
        "see `daemon/state/table.py` and [the guide](DEVELOPERS.md#set-up), "
        "install to `/etc/logwarden/config.yaml` or `DIR/model.onnx`; run `tests/daemon/`."
    )
    assert named_paths(text) == {"daemon/state/table.py", "DEVELOPERS.md", "tests/daemon/"}


def test_missing_paths_reports_a_moved_module(tmp_path: Path) -> None:
    """A moved module and an absent runbook are reported, sorted; README.md, found from the root, is not."""
    document = tmp_path / "GUIDE.md"
    document.write_text(
        "the table lives in `daemon/state_table.py`, "
        "the runbook [here](RUNBOOK.md), the guide [here](README.md)\n"
    )
    assert missing_paths(document) == ["RUNBOOK.md", "daemon/state_table.py"]


@pytest.mark.parametrize("document", markdown_files(), ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_every_path_a_document_names_exists(document: Path) -> None:
    """Every repository path and relative link in each Markdown file of the project exists in the checkout."""
    assert missing_paths(document) == [], (
        f"{document.relative_to(PROJECT_ROOT)} names files that do not exist"
    )
