"""EntityStateTable: allocation, initial state, LRU eviction, TTL expiry, dirty tracking, restore."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from snapshots import assert_same_entity

from logwarden.daemon.state.store import EntityRows, RowBuffer, StateChanges
from logwarden.daemon.state.table import EntityStateTable
from logwarden.errors import StateStoreError

L, H = 2, 3
INITIAL_H = np.arange(L * H, dtype=np.float32).reshape(L, H) + 1.0
INITIAL_C = -INITIAL_H


def make_table(capacity: int = 16, evict_fraction: float = 0.01) -> EntityStateTable:
    """A table of ``capacity`` slots with a non-zero initial state, so a reset slot shows as reset."""
    return EntityStateTable(L, H, capacity, INITIAL_H, INITIAL_C, evict_fraction=evict_fraction)


def states(batch: int, value: float) -> tuple[np.ndarray, np.ndarray]:
    """New (h, c) of shape [L, batch, H]: ``value`` plus the column index, so each entity's state differs."""
    h = np.full((L, batch, H), value, np.float32) + np.arange(batch, dtype=np.float32)[None, :, None]
    return h, -h


def fill(table: EntityStateTable, count: int, prefix: str = "e") -> list[str]:
    """Add ``count`` entities one per timestamp 0, 1, 2, ... so the first is the least recently seen."""
    names = [f"{prefix}{i}" for i in range(count)]
    for i, name in enumerate(names):
        table.slots_for([name], now=float(i), partitions=0)
    return names


def upserted(changes: StateChanges) -> list[str]:
    """The entities a checkpoint's changes would save."""
    return list(changes.upserts.entities)


def test_state_table_new_entities_get_distinct_slots_and_repeats_share_one() -> None:
    """Distinct entities get distinct slots; an entity repeated in a batch maps to one slot."""
    table = make_table()
    slots = table.slots_for(["a", "b", "a", "c"], now=1.0, partitions=[0, 1, 0, 2])
    assert slots.dtype == np.int64
    assert slots[0] == slots[2]
    assert len({int(slots[0]), int(slots[1]), int(slots[3])}) == 3
    assert len(table) == 3
    assert table.get("b") == slots[1]
    assert table.get("zzz") is None
    assert int(table.partition[slots[3]]) == 2


def test_state_table_known_entity_keeps_its_slot() -> None:
    """Looking an entity up again returns the slot it was given."""
    table = make_table()
    first = table.slots_for(["a", "b"], now=1.0, partitions=0)
    again = table.slots_for(["b", "a"], now=2.0, partitions=0)
    assert again.tolist() == [first[1], first[0]]


def test_state_table_new_entity_starts_from_initial_state() -> None:
    """A new entity's h, c are the initial state, with no events applied."""
    table = make_table()
    slot = table.slots_for(["a"], now=5.0, partitions=3)[0]
    snap = table.snapshot("a")
    np.testing.assert_array_equal(snap.h, INITIAL_H)
    np.testing.assert_array_equal(snap.c, INITIAL_C)
    assert (snap.slot, snap.partition, snap.events_applied, snap.last_seen) == (slot, 3, 0, 5.0)
    assert (snap.count_profile, snap.max_surprise) == (0, 0.0)


def test_state_table_reused_slot_is_reset_to_initial_state() -> None:
    """A slot freed by one entity and reused by another carries none of the old state."""
    table = make_table(capacity=1)
    slots = table.slots_for(["a"], now=1.0, partitions=0)
    table.write(
        slots, *states(1, 9.0), now=1.0, count_weights=np.array([99], np.uint64), surprise=np.array([np.nan])
    )
    table.remove(["a"])
    table.slots_for(["b"], now=2.0, partitions=0)
    snap = table.snapshot("b")
    np.testing.assert_array_equal(snap.h, INITIAL_H)
    assert (snap.events_applied, snap.count_profile, snap.max_surprise) == (0, 0, 0.0)


def test_state_table_write_stores_state_and_counts_events() -> None:
    """write stores [L, B, H] states at the slots, bumps events_applied by one, updates last_seen."""
    table = make_table()
    slots = table.slots_for(["a", "b"], now=1.0, partitions=0)
    h, c = states(2, 10.0)
    table.write(slots, h, c, now=2.0)
    table.write(slots[:1], h[:, :1], c[:, :1], now=3.0)
    a, b = table.snapshot("a"), table.snapshot("b")
    np.testing.assert_array_equal(a.h, h[:, 0, :])
    np.testing.assert_array_equal(b.c, c[:, 1, :])
    np.testing.assert_array_equal(table.h[:, slots, :], h)
    assert (a.events_applied, b.events_applied) == (2, 1)
    assert (a.last_seen, b.last_seen) == (3.0, 2.0)


def test_state_table_write_to_free_slot_raises() -> None:
    """Writing to a slot whose entity was removed is refused rather than silently stored."""
    table = make_table()
    slots = table.slots_for(["a"], now=1.0, partitions=0)
    table.remove(["a"])
    with pytest.raises(ValueError, match="holds no entity"):
        table.write(slots, *states(1, 1.0), now=2.0)


def test_state_table_full_table_evicts_least_recently_seen() -> None:
    """A new entity in a full table evicts the entity seen longest ago, and counts it."""
    table = make_table(capacity=4)
    names = fill(table, 4)
    table.slots_for(["new"], now=10.0, partitions=0)
    assert names[0] not in table
    assert all(name in table for name in names[1:])
    assert "new" in table
    assert table.evicted_total == 1
    assert len(table) == 4


def test_state_table_eviction_never_takes_a_batch_member() -> None:
    """The oldest entity survives eviction when it is in the batch that needs the room."""
    table = make_table(capacity=4)
    names = fill(table, 4)
    slots = table.slots_for([names[0], "new"], now=10.0, partitions=0)
    assert names[0] in table and "new" in table
    assert names[1] not in table
    assert table.get(names[0]) == slots[0]


def test_state_table_eviction_frees_a_fraction_of_capacity_at_once() -> None:
    """Eviction frees the oldest ``evict_fraction`` of the capacity in one scan, not one slot."""
    table = make_table(capacity=100, evict_fraction=0.05)
    names = fill(table, 100)
    table.slots_for(["new"], now=1000.0, partitions=0)
    assert table.evicted_total == 5
    assert [name for name in names if name not in table] == names[:5]
    assert len(table) == 96


def test_state_table_batch_larger_than_capacity_raises() -> None:
    """A batch with more distinct entities than the capacity is refused."""
    table = make_table(capacity=3)
    with pytest.raises(ValueError, match="capacity 3"):
        table.slots_for(["a", "b", "c", "d"], now=1.0, partitions=0)


def test_state_table_random_stream_never_exceeds_capacity() -> None:
    """Over many random batches the table stays within capacity and its entity->slot map stays consistent."""
    rng = np.random.default_rng(7)
    table = make_table(capacity=50, evict_fraction=0.1)
    for step in range(300):
        batch = [f"e{i}" for i in rng.integers(0, 200, size=int(rng.integers(1, 40)))]
        slots = table.slots_for(batch, now=float(step), partitions=0)
        assert len(table) <= 50
        assert all(table.get(entity) == slot for entity, slot in zip(batch, slots.tolist(), strict=True))
        unique_slots = np.unique(slots)
        table.write(unique_slots, *states(len(unique_slots), float(step)), now=float(step))
    occupied = [table.get(f"e{i}") for i in range(200) if f"e{i}" in table]
    assert len(occupied) == len(set(occupied)) == len(table)
    assert table.evicted_total > 0


def test_state_table_expire_idle_judges_an_entity_by_the_earliest_topic_of_its_partition_number() -> None:
    """Co-partitioned topics: a/0 read ahead must not end x, whose next event may still be unread in
    b/0 (behind), so partition 0's entities wait for the earlier of a/0 and b/0; a/3 has a clock of
    its own; an entity of a partition number without any clock (7) is not judged."""
    table = make_table()
    a, b = table.topic_id_of("a"), table.topic_id_of("b")
    table.slots_for(["x", "y", "z", "w"], 10.0, np.array([0, 0, 3, 7], np.int32), [a, b, a, a])
    clocks = {("a", 0): 100.0, ("b", 0): 35.0, ("a", 3): 100.0, ("other", 5): 1e9}
    assert table.expire_idle(now=clocks, ttl_seconds=30.0) == [("z", table.get("z"))]
    assert sorted(table.expire_idle(now={**clocks, ("b", 0): 41.0}, ttl_seconds=30.0)) == sorted(
        (name, table.get(name)) for name in ("x", "y", "z")
    )


def test_state_table_entity_comes_from_where_its_latest_event_came_from_whatever_the_read_order() -> None:
    """An entity with events in logs/0 (t=1000) and audit/1 (t=1020) is audit/1's whether one poll
    returned audit first or two polls came in either order; an older event read later changes
    nothing, so release and restore do not depend on how the polls were cut."""

    def source_after(batches: list[tuple[float, str, int]]) -> tuple[str, int]:
        table = make_table()
        for moment, topic, partition in batches:
            slots = table.slots_for(["e"], np.array([moment]), [partition], [table.topic_id_of(topic)])
            table.write(slots, *states(1, 1.0), now=np.array([moment]))
        return table.snapshot("e").topic, table.snapshot("e").partition

    logs, audit = (1000.0, "logs", 0), (1020.0, "audit", 1)
    assert source_after([logs, audit]) == source_after([audit, logs]) == ("audit", 1)
    same_time = (1020.0, "logs", 0)  # a tie is ranked by topic name, then partition: logs/0
    assert source_after([same_time, audit]) == source_after([audit, same_time]) == ("logs", 0)
    one_poll = make_table()
    ids = [one_poll.topic_id_of("audit"), one_poll.topic_id_of("logs")]
    one_poll.slots_for(["e", "e"], np.array([1020.0, 1000.0]), [1, 0], ids)
    assert (one_poll.snapshot("e").topic, one_poll.snapshot("e").partition) == ("audit", 1)


def test_state_table_refuses_a_topic_id_it_never_gave() -> None:
    """A topic id not from topic_id_of fails at once, not at the next checkpoint."""
    with pytest.raises(ValueError, match="topic_id_of"):
        make_table().slots_for(["a"], 1.0, [0], [5])


def test_state_table_expire_idle_reports_only_entities_past_ttl() -> None:
    """expire_idle lists entities idle longer than the TTL, with their slots, and removes nothing."""
    table = make_table()
    names = fill(table, 5)
    idle = table.expire_idle(now=10.0, ttl_seconds=7.5)
    assert sorted(idle) == sorted((name, table.get(name)) for name in names[:3])
    assert len(table) == 5


def test_state_table_remove_counts_expired_and_ended_apart() -> None:
    """remove forgets entities, ignores unknown ones, and counts them under the given reason."""
    table = make_table()
    fill(table, 4)
    assert table.remove(["e0", "e1", "ghost"]) == 2
    assert table.remove(["e2"], reason="ended") == 1
    assert (table.expired_total, table.ended_total, len(table)) == (2, 1, 1)
    assert "e0" not in table and "e3" in table


def test_state_table_take_changes_returns_written_entities_once() -> None:
    """Written entities are upserted by the next take_changes and not by the one after."""
    table = make_table()
    slots = table.slots_for(["a", "b", "c"], now=1.0, partitions=[0, 1, 2])
    h, c = states(2, 4.0)
    table.write(slots[:2], h, c, now=2.0)
    changes = table.take_changes()
    assert sorted(upserted(changes)) == ["a", "b"]
    assert list(changes.deletes) == []
    rows = EntityRows.concat(list(changes.upserts.chunks(1)), L, H)
    order = [rows.entities.index(e) for e in ("a", "b")]
    np.testing.assert_array_equal(rows.h[order], h.transpose(1, 0, 2))
    np.testing.assert_array_equal(rows.c[order], c.transpose(1, 0, 2))
    assert rows.partition[order].tolist() == [0, 1]
    assert rows.events_applied.tolist() == [1, 1]
    assert rows.last_seen.tolist() == [2.0, 2.0]
    assert len(table.take_changes().upserts) == 0


def test_state_table_take_changes_lists_evicted_and_removed_entities_as_deletes() -> None:
    """Entities evicted or removed since the last checkpoint are deleted by the next one."""
    table = make_table(capacity=3)
    fill(table, 3)
    table.take_changes()
    table.slots_for(["new"], now=10.0, partitions=0)
    table.remove(["e2"])
    changes = table.take_changes()
    assert sorted(changes.deletes) == ["e0", "e2"]
    assert list(table.take_changes().deletes) == []


def test_state_table_entity_back_and_written_is_upserted_not_deleted() -> None:
    """An entity removed then written again is an upsert only; one back but unwritten is still deleted."""
    table = make_table()
    fill(table, 2)
    table.remove(["e0", "e1"])
    slots = table.slots_for(["e0", "e1"], now=5.0, partitions=0)
    table.write(slots[:1], *states(1, 1.0), now=5.0)
    changes = table.take_changes()
    assert upserted(changes) == ["e0"]
    assert list(changes.deletes) == ["e1"]


def test_state_table_changes_read_after_table_changed_raise() -> None:
    """Lazy upsert rows refuse to be read once the table has changed, rather than mix two states."""
    table = make_table()
    slots = table.slots_for(["a"], now=1.0, partitions=0)
    table.write(slots, *states(1, 1.0), now=1.0)
    changes = table.take_changes()
    table.write(slots, *states(1, 2.0), now=2.0)
    with pytest.raises(RuntimeError, match="changed after take_changes"):
        list(changes.upserts.chunks(10))


def test_state_table_detached_changes_survive_table_changes() -> None:
    """detached() copies the rows, so they can be saved after the table moved on."""
    table = make_table()
    slots = table.slots_for(["a"], now=1.0, partitions=0)
    h, c = states(1, 1.0)
    table.write(slots, h, c, now=1.0)
    detached = table.take_changes().detached()
    table.write(slots, *states(1, 2.0), now=2.0)
    (rows,) = list(detached.upserts.chunks(10))
    np.testing.assert_array_equal(rows.h[0], h[:, 0, :])


def test_state_table_copy_into_a_buffer_equals_the_chunked_copy_and_reuses_its_memory() -> None:
    """A detached copy into a RowBuffer holds the same rows as chunks(); the next copy reuses the memory."""
    table = make_table()
    names = fill(table, 5)
    table.write(table.slots_for(names, now=9.0, partitions=0), *states(5, 1.0), now=9.0)
    buffer = RowBuffer(max_rows=16)
    changes = table.take_changes()
    expected = EntityRows.concat(list(changes.upserts.chunks(2)), L, H)
    first = changes.detached(buffer).upserts
    assert isinstance(first, EntityRows)
    assert list(first.entities) == list(expected.entities)
    for column in ("partition", "h", "c", "last_seen", "events_applied", "count_profile", "max_surprise"):
        np.testing.assert_array_equal(getattr(first, column), getattr(expected, column))
    first_h = first.h.copy()
    table.write(table.slots_for(names[:3], now=10.0, partitions=0), *states(3, 5.0), now=10.0)
    second = table.take_changes().detached(buffer).upserts
    assert isinstance(second, EntityRows)
    assert np.shares_memory(first.h, second.h)  # the buffer's memory, not fresh arrays
    np.testing.assert_array_equal(
        second.h, table.h[:, table.slots_for(names[:3], now=10.0, partitions=0)].transpose(1, 0, 2)
    )
    assert not np.array_equal(second.h, first_h[:3])


def test_row_buffer_grows_with_headroom_up_to_its_bound_and_beyond_only_when_asked() -> None:
    """A copy a little larger than the last reuses the memory; the headroom stops at max_rows."""
    buffer = RowBuffer(max_rows=10)
    first_h, first_c = buffer.arrays(4, L, H)
    assert first_h.shape == first_c.shape == (L, 4, H)
    assert first_h.flags.c_contiguous and not np.shares_memory(first_h, first_c)
    grown_h, _ = buffer.arrays(5, L, H)  # within the quarter of headroom: same memory
    assert np.shares_memory(first_h, grown_h)
    near_bound_h, _ = buffer.arrays(9, L, H)  # regrown to 10 rows (9 + 2, capped at max_rows)
    assert not np.shares_memory(grown_h, near_bound_h)
    assert np.shares_memory(near_bound_h, buffer.arrays(10, L, H)[0])
    beyond_h, _ = buffer.arrays(50, L, H)  # more than max_rows still works: exactly what was asked
    assert beyond_h.shape == (L, 50, H)


def test_state_table_restored_changes_come_back_in_next_take() -> None:
    """After a failed save, restore_changes makes the next take_changes carry the same entities."""
    table = make_table(capacity=2)
    slots = table.slots_for(["a", "b"], now=1.0, partitions=0)
    table.write(slots, *states(2, 1.0), now=1.0)
    table.remove(["b"])
    failed = table.take_changes()
    table.restore_changes(failed)
    retried = table.take_changes()
    assert upserted(retried) == ["a"]
    assert list(retried.deletes) == ["b"]


def test_state_table_load_rows_restores_state_as_clean() -> None:
    """load_rows restores every field of saved rows, and restored rows are not dirty."""
    source = make_table()
    slots = source.slots_for(["a", "b"], now=1.0, partitions=[4, 5])
    weights = np.array([2**64 - 3, 2**63], np.uint64)
    source.write(slots, *states(2, 3.0), now=7.0, count_weights=weights, surprise=np.array([2.5, np.nan]))
    source.write(slots, *states(2, 4.0), now=8.0, unknown=np.array([False, True]))
    rows = EntityRows.concat(list(source.take_changes().upserts.chunks(1)), L, H)
    assert rows.count_profile.dtype == np.uint64 and rows.max_surprise.dtype == np.float32
    restored = make_table()
    assert restored.load_rows(rows.chunks(1)) == 2
    for entity in ("a", "b"):
        assert_same_entity(restored.snapshot(entity), source.snapshot(entity))
    assert (restored.snapshot("a").count_profile, restored.snapshot("b").count_profile) == (2**64 - 3, 2**63)
    assert restored.snapshot("a").max_surprise == 2.5 and np.isnan(restored.snapshot("b").max_surprise)
    assert (restored.snapshot("a").unknown_events, restored.snapshot("b").unknown_events) == (0, 1)
    changes = restored.take_changes()
    assert len(changes.upserts) == 0 and list(changes.deletes) == []


def test_state_table_load_rows_beyond_capacity_raises() -> None:
    """More saved entities than the capacity is a StateStoreError naming state.max_entities and its value."""
    source = make_table(capacity=3)
    slots = source.slots_for(["a", "b", "c"], now=1.0, partitions=0)
    source.write(slots, *states(3, 1.0), now=1.0)
    rows = EntityRows.concat(list(source.take_changes().upserts.chunks(3)), L, H)
    with pytest.raises(StateStoreError, match=r"state\.max_entities \(2, "):
        make_table(capacity=2).load_rows([rows])


def test_state_table_last_seen_max_by_source_ignores_freed_slots() -> None:
    """The latest time of each topic-partition's tracked entities; nothing for an empty table."""
    table = make_table()
    assert table.last_seen_max_by_source() == {}
    logs, audit = table.topic_id_of("logs"), table.topic_id_of("audit")
    table.slots_for(
        ["a", "b", "c", "d"],
        now=np.array([5.0, 7.0, 9.0, 3.0]),
        partitions=[0, 0, 1, 0],
        topic_ids=[logs, logs, logs, audit],
    )
    table.remove(["b"])
    assert table.last_seen_max_by_source() == {("logs", 0): 5.0, ("logs", 1): 9.0, ("audit", 0): 3.0}


def test_state_table_snapshot_of_unknown_entity_raises_key_error() -> None:
    """snapshot of an entity that is not tracked raises KeyError."""
    with pytest.raises(KeyError):
        make_table().snapshot("nobody")


def test_state_table_initial_state_of_wrong_shape_raises() -> None:
    """The constructor refuses an initial state whose shape is not [L, H]."""
    with pytest.raises(ValueError, match="initial_h"):
        EntityStateTable(L, H, 4, np.zeros((L, H + 1), np.float32), INITIAL_C)


def test_state_table_entities_in_lists_only_those_topic_partitions() -> None:
    """entities_in finds entities by the topic-partition of their last event, not its number alone
    (a/1 released, b/1 still owned); release counts them; an unknown topic holds none."""
    table = make_table()
    a, b = table.topic_id_of("a"), table.topic_id_of("b")
    table.slots_for(["x", "y", "z", "w"], 1.0, np.array([0, 1, 2, 1], np.int32), [a, a, a, b])
    assert sorted(table.entities_in([("a", 1), ("a", 2)])) == ["y", "z"]
    assert table.entities_in([("c", 1)]) == []
    assert table.remove(table.entities_in([("a", 1)]), reason="released") == 1
    assert table.released_total == 1 and "y" not in table and "w" in table and "x" in table
    assert table.snapshot("w").topic == "b" and table.snapshot("w").partition == 1


def test_state_table_expire_idle_at_exactly_the_ttl_keeps_the_entity() -> None:
    """Idle for exactly the TTL is not past it, with one clock or per-partition clocks, as for the
    in-batch session end."""
    table = make_table()
    table.slots_for(["a"], now=10.0, partitions=0)
    assert table.expire_idle(now=40.0, ttl_seconds=30.0) == []
    assert table.expire_idle(now={("", 0): 40.0}, ttl_seconds=30.0) == []
    assert table.expire_idle(now=40.5, ttl_seconds=30.0) == [("a", table.get("a"))]


def test_state_table_late_record_does_not_move_last_seen_back() -> None:
    """An entity whose latest record is stamped earlier than the one before stays as recent as that
    one: otherwise it would look idle and its session be ended early, a false session-end alert."""
    table = make_table()
    slots = table.slots_for(["a"], now=10.0, partitions=0)
    table.write(slots, *states(1, 1.0), now=10.0)
    table.write(slots, *states(1, 2.0), now=4.0)
    assert table.snapshot("a").last_seen == 10.0
    assert table.expire_idle(now=15.0, ttl_seconds=8.0) == []


def test_state_table_full_table_takes_a_batch_of_exactly_its_capacity() -> None:
    """A batch of as many new entities as the table holds evicts every old one instead of failing."""
    table = make_table(capacity=4)
    fill(table, 4)
    slots = table.slots_for(["n0", "n1", "n2", "n3"], now=10.0, partitions=0)
    assert len(set(slots.tolist())) == 4 and len(table) == 4 and table.evicted_total == 4


def test_state_table_write_adds_count_weights_modulo_2_64_without_a_warning() -> None:
    """count_profile is a sum of uint64 weights that wraps silently: no overflow warning, no error."""
    table = make_table()
    slots = table.slots_for(["a", "b"], now=1.0, partitions=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table.write(slots, *states(2, 1.0), now=1.0, count_weights=np.array([2**64 - 1, 2**63], np.uint64))
        table.write(slots, *states(2, 2.0), now=2.0, count_weights=np.array([5, 2**63 + 1], np.uint64))
        table.write(slots[:1], *states(1, 3.0), now=3.0, count_weights=np.uint64(2**64 - 1))
    assert (table.snapshot("a").count_profile, table.snapshot("b").count_profile) == (3, 1)


def test_state_table_write_keeps_the_largest_surprise_and_a_nan_for_good() -> None:
    """max_surprise only grows; once NaN (not tracked) it stays NaN whatever surprise follows."""
    table = make_table()
    slots = table.slots_for(["a", "b"], now=1.0, partitions=0)
    for surprise in ([1.5, 0.5], [0.25, np.nan], [3.0, 9.0]):
        table.write(slots, *states(2, 1.0), now=1.0, surprise=np.array(surprise))
    assert table.snapshot("a").max_surprise == 3.0
    assert np.isnan(table.snapshot("b").max_surprise)


def test_state_table_write_without_counts_leaves_them_unchanged() -> None:
    """A write that passes neither weights nor surprise keeps the session's count profile and surprise."""
    table = make_table()
    slots = table.slots_for(["a"], now=1.0, partitions=0)
    table.write(
        slots, *states(1, 1.0), now=1.0, count_weights=np.array([7], np.uint64), surprise=np.array([2.0])
    )
    table.write(slots, *states(1, 2.0), now=2.0)
    assert (table.snapshot("a").count_profile, table.snapshot("a").max_surprise) == (7, 2.0)


def test_state_table_restarted_session_counts_again_from_zero() -> None:
    """restart_sessions resets count_profile to 0 and max_surprise to 0.0, so an untracked (NaN) entity
    is tracked again from its next session; its neighbours keep theirs."""
    table = make_table()
    slots = table.slots_for(["a", "b"], now=1.0, partitions=0)
    table.write(
        slots,
        *states(2, 1.0),
        now=1.0,
        count_weights=np.array([11, 13], np.uint64),
        surprise=np.array([np.nan, 4.0]),
    )
    table.restart_sessions(slots[:1])
    assert (table.snapshot("a").count_profile, table.snapshot("a").max_surprise) == (0, 0.0)
    assert (table.snapshot("b").count_profile, table.snapshot("b").max_surprise) == (13, 4.0)
    table.write(
        slots[:1], *states(1, 2.0), now=2.0, count_weights=np.array([3], np.uint64), surprise=np.array([1.0])
    )
    assert (table.snapshot("a").count_profile, table.snapshot("a").max_surprise) == (3, 1.0)


def test_state_table_counts_unknown_events_per_session_from_zero() -> None:
    """``unknown_events`` counts each session's unknown events: a new entity and a restarted session
    start at 0, and a write without ``unknown`` leaves the count as it was."""
    table = make_table()
    slots = table.slots_for(["a", "b"], now=1.0, partitions=0)
    assert (table.snapshot("a").unknown_events, table.snapshot("b").unknown_events) == (0, 0)
    table.write(slots, *states(2, 1.0), now=1.0, unknown=np.array([True, False]))
    table.write(slots, *states(2, 2.0), now=2.0, unknown=np.array([True, True]))
    table.write(slots, *states(2, 3.0), now=3.0)
    assert (table.snapshot("a").unknown_events, table.snapshot("b").unknown_events) == (2, 1)
    table.restart_sessions(slots[:1])
    assert (table.snapshot("a").unknown_events, table.snapshot("b").unknown_events) == (0, 1)
    table.remove(["b"])
    table.slots_for(["b"], now=4.0, partitions=0)
    assert table.snapshot("b").unknown_events == 0


def test_state_table_expire_idle_with_a_partition_number_of_billions_looks_clocks_up_sparsely() -> None:
    """Partition numbers 0 and 2**31 - 1 together: the same verdicts as small numbers, without an
    array of two billion clocks."""
    table = make_table()
    t = table.topic_id_of("t")
    table.slots_for(["low", "high", "none"], 10.0, np.array([0, 2**31 - 1, 5], np.int32), t)
    clocks = {("t", 0): 100.0, ("t", 2**31 - 1): 20.0}
    assert table.expire_idle(now=clocks, ttl_seconds=30.0) == [("low", table.get("low"))]
    assert sorted(table.expire_idle(now={**clocks, ("t", 2**31 - 1): 50.0}, ttl_seconds=30.0)) == sorted(
        (name, table.get(name)) for name in ("low", "high")
    )
