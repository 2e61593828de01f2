"""Whether ``state.max_entities`` can fit in this host's memory, checked at start.

Why at start: the state table is preallocated for ``max_entities`` (pages are touched as entities
arrive), so a typo such as 2,147,483,647 either fails at once with a traceback or, under systemd's
``MemoryMax=``, gets the daemon killed hours later when the table fills.  Either way the operator
deserves exit 3 naming the key, with the arithmetic.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from logwarden.errors import ConfigError
from logwarden.model.contract import ModelMetadata

SLOT_BYTES = 62
"""Per table slot besides h and c: last_seen, events, count profile, surprise, unknown events, topic,
partition, flags, the entity list and the free-slot stack (daemon/state/table.py)."""

TRACKED_ENTITY_BYTES = 150
"""Per tracked entity in Python: its name and its entry in the slot dictionary.  With the benchmark
model (2 layers of 65) 1,000,000 entities take 1,370 MB RSS, which these figures put at 1,252 MB
plus the process itself (benchmarks/throughput.py, memory phase)."""


def table_bytes(max_entities: int, num_layers: int, state_size: int) -> int:
    """Memory the state table takes with every slot in use: h and c in float32, plus the rest."""
    return max_entities * (2 * num_layers * state_size * 4 + SLOT_BYTES + TRACKED_ENTITY_BYTES)


def memory_limit_bytes(
    proc_self_cgroup: Path = Path("/proc/self/cgroup"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The memory this process may use: the host's, or its cgroup's (systemd's ``MemoryMax=``) if lower.

    None when neither can be read (not Linux): the check is then skipped, never guessed.
    """
    limits: list[int] = []
    with contextlib.suppress(ValueError, OSError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        cgroup = cgroup_v2_path(proc_self_cgroup.read_text(encoding="ascii"))
        if cgroup is not None:
            limit = parse_memory_max(
                (cgroup_root / cgroup.lstrip("/") / "memory.max").read_text(encoding="ascii")
            )
            if limit is not None:
                limits.append(limit)
    except (OSError, UnicodeDecodeError):
        pass
    return min(limits) if limits else None


def cgroup_v2_path(proc_self_cgroup: str) -> str | None:
    """The unified (v2) cgroup of ``/proc/self/cgroup``'s text: its ``0::/path`` line."""
    for line in proc_self_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def parse_memory_max(text: str) -> int | None:
    """A cgroup's ``memory.max``: a number of bytes, or None for ``max`` (no limit)."""
    value = text.strip()
    return int(value) if value.isdigit() else None


def check_table_fits(max_entities: int, num_layers: int, state_size: int, limit: int | None) -> None:
    """ConfigError naming ``state.max_entities`` when a full table would exceed ``limit`` bytes."""
    needed = table_bytes(max_entities, num_layers, state_size)
    if limit is not None and needed > limit:
        raise ConfigError(
            f"state.max_entities: {max_entities:,} entities need about {needed / 2**30:,.1f} GiB when the "
            f"table is full ({num_layers} layers x {state_size} floats of h and c each, plus "
            f"{SLOT_BYTES + TRACKED_ENTITY_BYTES} bytes), more than the {limit / 2**30:,.1f} GiB this "
            "process may use (the host's memory, or systemd's MemoryMax=); lower it"
        )


def check_model_table_fits(max_entities: int, metadata: ModelMetadata) -> None:
    """``check_table_fits`` for ``metadata``'s state shape against this process's memory limit."""
    check_table_fits(max_entities, metadata.num_layers, metadata.state_size, memory_limit_bytes())
