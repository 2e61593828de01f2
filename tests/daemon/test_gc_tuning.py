"""The event loop's garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from logwarden.daemon.gc_tuning import YOUNG_THRESHOLD, tune_for_event_loop


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_startup_objects_and_spaces_young_collections(restored_gc: None) -> None:
    """Objects alive at startup leave the collector's scans; young collections become rare."""
    startup_object = {"model": [1, 2, 3]}
    tune_for_event_loop()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert not any(startup_object is tracked for tracked in gc.get_objects())
