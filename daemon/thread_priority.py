"""Lower the CPU priority of the calling thread, for background work that must not delay the event loop.

Linux schedules each thread on its own, and ``setpriority(PRIO_PROCESS, tid, …)`` changes the nice
value of that one thread (a documented Linux departure from POSIX, where the call would apply to
the whole process).  RocksDB lowers its compaction threads the same way
(``Env::LowerThreadPoolCPUPriority``).  On other systems the call is skipped, because it would
renice the whole daemon.
"""

from __future__ import annotations

import os
import sys
import threading

import structlog

log = structlog.get_logger("logwarden.daemon")

MAX_NICE = 19


def lower_current_thread_priority(increment: int) -> int | None:
    """Add ``increment`` to this thread's nice value (capped at 19); returns the new value.

    Returns None, leaving the priority as it was, where per-thread priorities are not available
    or the system refuses (logged once per thread as ``thread_priority_unchanged``).  Raising a
    nice value needs no privilege, and a thread cannot lower it again without one.
    """
    if increment <= 0:
        raise ValueError(f"increment must be positive, got {increment}")
    if not sys.platform.startswith("linux"):
        return None
    thread_id = threading.get_native_id()
    try:
        target = min(os.getpriority(os.PRIO_PROCESS, thread_id) + increment, MAX_NICE)
        os.setpriority(os.PRIO_PROCESS, thread_id, target)
    except OSError as exc:
        log.warning("thread_priority_unchanged", thread=threading.current_thread().name, error=str(exc))
        return None
    return target
