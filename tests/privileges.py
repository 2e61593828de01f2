"""Make permission tests run, and able to fail, as root too, instead of skipping there.

Root reads and writes whatever the mode bits say, so a chmod cannot make a path unusable to it, and
the suite and CI run as root.  A test that needs a path to be unusable prepares its files in a
``world_reachable_dir``, hands them to the ``nobody`` user, and runs the code under test
``unprivileged``: as root that is as ``nobody``, as any other user it is as that user, whom the mode
bits already bind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NOBODY = 65534


def running_as_root() -> bool:
    """Whether this process ignores mode bits as root does (and so must drop to ``nobody``)."""
    return os.geteuid() == 0


@contextmanager
def world_reachable_dir(prefix: str = "logwarden-robustness-") -> Iterator[Path]:
    """A new directory every user may enter (mode 0755), removed afterwards whatever its content's modes.

    Why: pytest's ``tmp_path`` lies below a mode 0700 directory of the user running the tests, which
    ``nobody`` cannot enter: a file there would be unusable for that reason, not for the one tested.
    """
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        parent.chmod(0o755)
        yield parent
    finally:
        _make_removable(parent)
        shutil.rmtree(parent)


def _make_removable(path: Path) -> None:
    """Give each directory below ``path`` mode 0755 before listing it, so a locked one is emptied too."""
    if path.is_symlink() or not path.is_dir():
        return
    path.chmod(0o755)
    for child in path.iterdir():
        _make_removable(child)


def give_to_nobody(*paths: Path) -> None:
    """Make ``nobody`` the owner of ``paths`` and everything below them, when running as root.

    Why: then only the mode bits a test sets stand between ``nobody`` and a path, as they stand
    between a normal user and the files it owns.
    """
    if not running_as_root():
        return
    for top in paths:
        for path in (top, *top.rglob("*")):
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


@contextmanager
def unprivileged() -> Iterator[None]:
    """Run the body as ``nobody`` when the tests run as root, who would ignore every permission bit.

    The real ids drop as well as the effective ones, because ``os.access`` checks the real ids (with
    only the effective ones dropped it would still answer for root), and the supplementary groups go,
    so no group of root's grants access.  Root stays the saved user, so the ids are restored on the
    way out, also when the body fails: the next test must not run as ``nobody``.
    """
    if not running_as_root():
        yield
        return
    groups = os.getgroups()
    try:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, 0)
        os.setresuid(NOBODY, NOBODY, 0)
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        os.setgroups(groups)
