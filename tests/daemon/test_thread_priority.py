"""The snapshot thread's lower CPU priority applies to that thread only."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from logwarden.daemon.thread_priority import MAX_NICE, lower_current_thread_priority

T = TypeVar("T")

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)


def nice_of_this_thread() -> int:
    """The nice value of the calling thread (Linux gives each thread its own)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def in_new_thread(work: Callable[[], T]) -> T:
    """``work()`` run in a new thread, and its result: priority changes there must not reach the caller."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(work()))
    thread.start()
    thread.join()
    return results[0]


@linux_only
def test_lowering_priority_raises_this_threads_nice_value_and_leaves_the_process_alone() -> None:
    """Lowering by 3 in a new thread raises its nice value by 3 (to MAX_NICE at most); the caller's stays."""
    before = nice_of_this_thread()
    expected = min(before + 3, MAX_NICE)
    returned, seen_in_thread = in_new_thread(
        lambda: (lower_current_thread_priority(3), nice_of_this_thread())
    )
    assert returned == seen_in_thread == expected
    assert nice_of_this_thread() == before


@linux_only
def test_lowering_priority_stops_at_the_lowest_nice_value() -> None:
    """A step of 100 stops at MAX_NICE, the lowest priority, instead of failing."""
    assert in_new_thread(lambda: lower_current_thread_priority(100)) == MAX_NICE


def test_lowering_priority_by_nothing_is_a_caller_error() -> None:
    """A step of 0 raises ValueError: the priority can only be lowered, by a positive step."""
    with pytest.raises(ValueError, match="positive"):
        lower_current_thread_priority(0)
