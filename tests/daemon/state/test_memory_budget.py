"""A state table that could never fit is refused at start naming state.max_entities, with the arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.daemon.state.memory_budget import (
    cgroup_v2_path,
    check_table_fits,
    memory_limit_bytes,
    parse_memory_max,
    table_bytes,
)
from logwarden.errors import ConfigError

GIB = 2**30


def test_table_bytes_counts_h_and_c_of_every_layer_and_the_rest_of_a_slot() -> None:
    """2 layers of 65 floats, h and c: 1,040 bytes, and 212 more for the slot and the entity's name."""
    assert table_bytes(1_000_000, 2, 65) == 1_000_000 * (1_040 + 212)


def test_a_table_of_two_billion_entities_is_refused_naming_the_key_and_the_sizes() -> None:
    """A typo of 2**31 - 1 would fail at start with a traceback or be killed hours later: exit 3 instead."""
    with pytest.raises(
        ConfigError, match=r"state\.max_entities: 2,147,483,647 entities need about 2,504\.0 GiB"
    ) as raised:
        check_table_fits(2_147_483_647, 2, 65, 24 * GIB)
    assert "24.0 GiB this process may use" in str(raised.value)


def test_the_default_million_entities_fit_the_units_memory_max_of_three_gib() -> None:
    """deploy/logwarden.service's MemoryMax=3G holds the default table (1.2 GiB full)."""
    check_table_fits(1_000_000, 2, 65, 3 * GIB)


def test_without_a_known_limit_nothing_is_refused() -> None:
    """Off Linux the limit is unknown: the check is skipped, never guessed."""
    check_table_fits(2_147_483_647, 2, 65, None)


def test_the_cgroup_v2_path_is_read_from_the_unified_line() -> None:
    """Only the ``0::`` line names the unified hierarchy, where MemoryMax= is enforced."""
    text = "12:cpu:/legacy\n0::/system.slice/logwarden.service\n"
    assert cgroup_v2_path(text) == "/system.slice/logwarden.service"
    assert cgroup_v2_path("12:cpu:/legacy\n") is None


@pytest.mark.parametrize(("text", "limit"), [("max\n", None), ("3221225472\n", 3 * GIB)])
def test_memory_max_is_bytes_or_no_limit(text: str, limit: int | None) -> None:
    """``max`` is the kernel's word for no limit."""
    assert parse_memory_max(text) == limit


def test_a_cgroup_limit_below_the_hosts_memory_is_the_limit(tmp_path: Path) -> None:
    """Under systemd's MemoryMax=, that is what the table must fit."""
    proc = tmp_path / "cgroup"
    proc.write_text("0::/system.slice/logwarden.service\n", encoding="ascii")
    unit = tmp_path / "root" / "system.slice" / "logwarden.service"
    unit.mkdir(parents=True)
    (unit / "memory.max").write_text(f"{GIB}\n", encoding="ascii")
    assert memory_limit_bytes(proc, tmp_path / "root") == GIB
    (unit / "memory.max").write_text("max\n", encoding="ascii")
    host = memory_limit_bytes(proc, tmp_path / "root")
    assert host is not None and host > GIB
