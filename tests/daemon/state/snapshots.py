"""Comparing two entities' saved state in tests: every value a checkpoint keeps."""

from __future__ import annotations

import numpy as np

from logwarden.daemon.state.table import EntitySnapshot


def assert_same_entity(got: EntitySnapshot, want: EntitySnapshot) -> None:
    """Equal in every value a checkpoint keeps: (h, c) bit for bit, and a NaN ``max_surprise`` (not
    tracked) equal to NaN."""
    np.testing.assert_array_equal(got.h, want.h)
    np.testing.assert_array_equal(got.c, want.c)
    assert (
        got.topic,
        got.partition,
        got.last_seen,
        got.events_applied,
        got.count_profile,
        got.unknown_events,
    ) == (
        want.topic,
        want.partition,
        want.last_seen,
        want.events_applied,
        want.count_profile,
        want.unknown_events,
    )
    np.testing.assert_array_equal(got.max_surprise, want.max_surprise)
