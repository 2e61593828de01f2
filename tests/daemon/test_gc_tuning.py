"""The event loop's garbage collection: between polls, never in the middle of one."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from in_process_service import QuietSink, build_in_process_service

from logwarden.daemon.gc_tuning import (
    MIDDLE_THRESHOLD,
    OLD_THRESHOLD,
    YOUNG_THRESHOLD,
    collect_between_polls,
    generation_due,
    tune_for_event_loop,
)

POLL_IN_HAND = 20_000
"""Records of the largest poll kafka-python hands over with the daemon's defaults."""


@pytest.fixture
def tuned_gc() -> Iterator[list[int]]:
    """The loop's settings applied; yields the generations of the collections started meanwhile."""
    threshold = gc.get_threshold()
    collected: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    tune_for_event_loop()
    gc.callbacks.append(note)
    yield collected
    gc.callbacks.remove(note)
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_startup_objects(tuned_gc: list[int]) -> None:
    """Objects alive at startup leave the collector's scans."""
    startup_object = {"model": [1, 2, 3]}
    gc.unfreeze()
    tune_for_event_loop()
    assert gc.get_freeze_count() > 0
    assert not any(startup_object is tracked for tracked in gc.get_objects())


def test_a_large_poll_in_hand_sets_off_no_collection(tuned_gc: list[int]) -> None:
    """With a young threshold of 50,000 a collection started mid-poll and scanned every record in hand."""
    records_in_hand = [(b"key", b"value", [], {"event": n}) for n in range(POLL_IN_HAND)]
    assert tuned_gc == []
    assert len(records_in_hand) == POLL_IN_HAND


def test_a_collection_between_polls_empties_the_young_generation(tuned_gc: list[int]) -> None:
    """Past YOUNG_THRESHOLD survivors, one young collection runs between polls; right after, none is due."""
    outlived_their_polls = [[n] for n in range(YOUNG_THRESHOLD + 100)]
    assert collect_between_polls() == 0
    assert tuned_gc == [0]
    assert gc.get_count()[0] < 100
    assert collect_between_polls() is None, "nothing is due right after a collection"
    assert len(outlived_their_polls) == YOUNG_THRESHOLD + 100


def test_no_collection_is_due_below_the_young_threshold() -> None:
    """One allocation short of YOUNG_THRESHOLD nothing is due, however high the older generations' counts."""
    assert generation_due((YOUNG_THRESHOLD - 1, MIDDLE_THRESHOLD + 5, OLD_THRESHOLD + 5)) is None


def test_older_generations_follow_cpythons_cascade() -> None:
    """Every MIDDLE_THRESHOLD-th collection includes the middle generation; every OLD_THRESHOLD-th of
    those is a full collection."""
    generations = []
    counts = [0, 0, 0]
    for _ in range(MIDDLE_THRESHOLD * OLD_THRESHOLD):
        generation = generation_due((YOUNG_THRESHOLD, counts[1], counts[2]))
        assert generation is not None
        generations.append(generation)
        # What CPython does after collecting ``generation``: its count and the younger ones reset,
        # the next older one counts one more collection.
        for younger in range(generation + 1):
            counts[younger] = 0
        if generation < 2:
            counts[generation + 1] += 1
    assert generations.count(2) == 1
    assert generations.count(1) == OLD_THRESHOLD - 1
    assert generations[MIDDLE_THRESHOLD - 1] == 1
    assert generations[-1] == 2


class EmptyInput:
    """A consumer with nothing to hand over, noting the collector's young count at each poll."""

    def __init__(self) -> None:
        self.young_counts_at_poll: list[int] = []

    def poll(self, timeout_ms: int = 0, **_: Any) -> dict[Any, Any]:
        self.young_counts_at_poll.append(gc.get_count()[0])
        return {}

    def assignment(self) -> set[Any]:
        return set()

    def highwater(self, partition: Any) -> int | None:
        return None


def test_the_loop_collects_before_it_polls(synthetic_model: Path, tuned_gc: list[int]) -> None:
    """Objects past YOUNG_THRESHOLD that outlived the polls are collected by run_once before it polls."""
    consumer = EmptyInput()
    service, _, _ = build_in_process_service(synthetic_model, consumer=consumer, sink=QuietSink(), offsets={})
    outlived_their_polls = [[n] for n in range(YOUNG_THRESHOLD + 100)]
    service.run_once()
    assert consumer.young_counts_at_poll and consumer.young_counts_at_poll[0] < YOUNG_THRESHOLD
    assert 0 in tuned_gc
    assert len(outlived_their_polls) == YOUNG_THRESHOLD + 100
