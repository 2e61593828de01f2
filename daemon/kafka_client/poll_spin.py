"""Keep kafka-python 3.0's ``KafkaConsumer.poll`` from spinning while the brokers are out of reach.

Why: ``poll`` caps each of its waits by the time left to the group's next heartbeat
(``coordinator.time_to_next_poll``), a rule from the releases that sent heartbeats from ``poll``.
kafka-python 3.0 sends them from its network thread, and while one waits for its answer (a network
cut, a frozen broker) the next is overdue: the cap is 0 and ``poll`` spins until its own timeout,
each turn a wait of 0 ms.  A second spin comes from ``kafka.util.Timer.timeout_ms``, which rounds
the time left down: in the last millisecond of every ``poll`` it reads 0 while the timer has not
expired, and once the group coordinator is lost ``poll`` retries its lookup with waits of 0 ms until
then.  Each such wait leaves a callback and a future on the request it waits for, kept until that
request fails at ``request_timeout_ms`` (30 s).  With the test broker frozen, a consumer polled as
the daemon polls spun on one core (32.2 s of CPU in 47 s) and grew from 38 to 467 MB RSS; with both
spins stopped, 2.3 s of CPU and 36 to 47 MB (tests/daemon/kafka_client/test_poll_spin.py).

How: the consumer's coordinator reports at least one poll slice to its next poll (the daemon polls
in slices of ``POLL_SLICE_MS``, so ``poll`` returns to it that often anyway, and no heartbeat waits
for ``poll``), and ``Timer.timeout_ms`` rounds the time left up, so a wait of it reaches the timer's
end.  Both are kafka-python internals, checked before they are changed: another kafka-python keeps
its own behaviour and the caller logs why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import kafka.util

_ROUNDED_UP_MARK = "_logwarden_rounds_up"


def _timeout_ms_rounded_up(timer: Any) -> float | int | None:
    """``Timer.timeout_ms`` with the time left rounded up to the next millisecond: 0 only once expired."""
    if timer._timeout_ms is None:
        return None
    if timer._expire_at == float("inf"):
        return float("inf")
    remaining = timer._expire_at - time.monotonic()
    return 0 if remaining <= 0 else math.ceil(remaining * 1000)


def round_timer_up(timer_class: Any = None) -> str:
    """Make kafka-python's ``Timer.timeout_ms`` round up (process-wide, once); '' or why it cannot."""
    timer_class = kafka.util.Timer if timer_class is None else timer_class
    current = getattr(timer_class, "timeout_ms", None)
    if isinstance(current, property) and getattr(current.fget, _ROUNDED_UP_MARK, False):
        return ""
    slots = {slot for klass in timer_class.__mro__ for slot in getattr(klass, "__slots__", ())}
    if not isinstance(current, property) or not {"_timeout_ms", "_expire_at"} <= slots:
        return "this kafka-python's Timer has no timeout_ms property over _timeout_ms and _expire_at"

    def timeout_ms(timer: Any) -> float | int | None:
        return _timeout_ms_rounded_up(timer)

    setattr(timeout_ms, _ROUNDED_UP_MARK, True)
    timer_class.timeout_ms = property(timeout_ms, doc=current.__doc__)
    return ""


def floor_time_to_next_poll(consumer: Any, floor_seconds: float) -> str:
    """Make ``consumer``'s coordinator report at least ``floor_seconds`` to its next poll; '' or why not."""
    coordinator = getattr(consumer, "_coordinator", None)
    inner: Callable[[], float] | None = getattr(coordinator, "time_to_next_poll", None)
    if coordinator is None or inner is None:
        return "this kafka-python consumer has no _coordinator.time_to_next_poll"

    def time_to_next_poll() -> float:
        return max(floor_seconds, inner())

    coordinator.time_to_next_poll = time_to_next_poll
    return ""


def stop_poll_spins(consumer: Any, slice_ms: int) -> str:
    """Both changes for a consumer the daemon polls in slices of ``slice_ms``; '' or why not."""
    reasons = [round_timer_up(), floor_time_to_next_poll(consumer, slice_ms / 1000)]
    return "; ".join(reason for reason in reasons if reason)
