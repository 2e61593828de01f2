"""Per-entity LSTM state in preallocated arrays, addressed by slot, with LRU eviction and dirty tracking.

A million entities must fit in the daemon's memory budget and a micro-batch of thousands of
events must be handled with a few numpy operations, so an entity costs one dict entry
(entity -> slot) and one column of each array; nothing else is a Python object per entity.
``h`` and ``c`` are ``[L, capacity, H]`` so ``h[:, slots, :]`` is the ``[L, B, H]`` the ONNX
graph takes.  Beside the LSTM state each open session keeps what the count gate judges at its end:
``count_profile``, a multiset hash of its events (the sum of their weights modulo 2**64),
``max_surprise``, its largest per-event surprise so far, and ``unknown_events``, how many of its
events matched no template (each alerted already, so the gate need not).  Each entity also keeps
where its last event came from, its topic (a small id into ``topics``) and partition number, so that
an instance hands over exactly the entities of a topic-partition it no longer owns, and judges each
entity by that topic-partition's stream time.  Pure logic: no I/O library is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from logwarden.daemon.state.dirty_rows import DirtyRows
from logwarden.daemon.state.store import MAX_PARTITION, EntityRows, StateChanges
from logwarden.errors import StateStoreError

RemovalReason = Literal["expired", "ended", "released"]

TopicPartition = tuple[str, int]

DENSE_CLOCK_PARTITIONS = 1 << 16
"""Partition numbers below this are looked up in an array of that many clocks (Kafka's are small)."""

NO_TOPIC = ""
"""Topic id 0's name: where the entities of a caller that passes no topic (tests, benchmarks) are."""


@dataclass(frozen=True)
class EntitySnapshot:
    """A copy of one entity's state, for tests and debugging."""

    entity: str
    slot: int
    topic: str
    partition: int
    h: np.ndarray  # [L, H]
    c: np.ndarray  # [L, H]
    last_seen: float
    events_applied: int
    count_profile: int
    max_surprise: float  # NaN: the session's counts are not tracked
    unknown_events: int


def more_saved_than_capacity(capacity: int) -> str:
    """Why saved rows cannot be restored into a table of ``capacity`` entities.

    The start first evicts the least recently seen entities beyond ``state.max_entities``
    (``StateStore.evict_least_recently_seen``), so this is only reached when the rows read disagree
    with the store's own count of them.
    """
    return (
        f"saved state holds more entities than state.max_entities ({capacity:,}, the state capacity) "
        "allows, more than the store counted; the file is damaged; move the state directory aside to "
        "start empty"
    )


class EntityStateTable:
    """Fixed-capacity table of (h, c) per entity, with each open session's count profile and largest surprise.

    A ``max_surprise`` of NaN means the session's counts are not tracked (a row restored from a store
    written before they were kept): ``np.maximum`` keeps NaN and ``NaN > threshold`` is False, so the
    count gate stays silent for that session until it ends and the entity starts a new one.

    Slots returned by ``slots_for`` stay valid until the next call that can free slots
    (``slots_for``, ``remove``, ``load_rows``): a freed slot is reused by another entity.
    """

    def __init__(
        self,
        num_layers: int,
        hidden_size: int,
        capacity: int,
        initial_h: np.ndarray,
        initial_c: np.ndarray,
        *,
        evict_fraction: float = 0.01,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        shape = (num_layers, hidden_size)
        if initial_h.shape != shape or initial_c.shape != shape:
            raise ValueError(f"initial_h/initial_c must be {shape}, got {initial_h.shape}, {initial_c.shape}")
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.capacity = capacity
        self._initial_h = np.asarray(initial_h, np.float32).copy()
        self._initial_c = np.asarray(initial_c, np.float32).copy()
        # np.zeros maps pages lazily, so resident memory grows with the entities actually seen.
        self.h = np.zeros((num_layers, capacity, hidden_size), np.float32)
        self.c = np.zeros((num_layers, capacity, hidden_size), np.float32)
        self.last_seen = np.zeros(capacity, np.float64)
        self.events_applied = np.zeros(capacity, np.int64)
        self.count_profile = np.zeros(capacity, np.uint64)
        self.max_surprise = np.zeros(capacity, np.float32)
        self.unknown_events = np.zeros(capacity, np.int64)
        self.partition = np.zeros(capacity, np.int32)
        self.topic_id = np.zeros(capacity, np.int32)
        self.topics: list[str] = [NO_TOPIC]
        """Topic names by id; ids are this process's own, stores keep the names."""
        self._topic_ids: dict[str, int] = {NO_TOPIC: 0}
        self._topic_rank = np.zeros(1, np.int64)  # each topic id's place in name order
        self._occupied = np.zeros(capacity, bool)
        self._dirty = np.zeros(capacity, bool)
        self._slot_of: dict[str, int] = {}
        self._entity_at: list[str | None] = [None] * capacity
        # Free-slot stack, top at the end; popping from a fresh table hands out slots 0, 1, 2, ...
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        self._free_count = capacity
        self._pending_deletes: set[str] = set()
        self._evict_batch = max(1, math.ceil(capacity * evict_fraction))
        self._generation = 0
        self.evicted_total = 0
        self.expired_total = 0
        self.ended_total = 0
        self.released_total = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, entity: object) -> bool:
        return entity in self._slot_of

    @property
    def generation(self) -> int:
        """Bumped by every change; lets a lazy reader detect that the table moved under it."""
        return self._generation

    def get(self, entity: str) -> int | None:
        """Slot of ``entity``, or None if it is not tracked."""
        return self._slot_of.get(entity)

    def topic_id_of(self, topic: str) -> int:
        """The id of ``topic`` in this table, given one the first time it is asked for."""
        found = self._topic_ids.get(topic)
        if found is None:
            found = self._topic_ids[topic] = len(self.topics)
            self.topics.append(topic)
            order = sorted(range(len(self.topics)), key=self.topics.__getitem__)
            self._topic_rank = np.empty(len(self.topics), np.int64)
            self._topic_rank[order] = np.arange(len(self.topics))
        return found

    def last_seen_max_by_source(self) -> dict[TopicPartition, float]:
        """Latest ``last_seen`` of each topic-partition's entities: where restored stream clocks resume."""
        occupied = np.flatnonzero(self._occupied)
        if occupied.size == 0:
            return {}
        keys, inverse = np.unique(self._source_keys(occupied), return_inverse=True)
        latest = np.full(len(keys), -np.inf)
        np.maximum.at(latest, inverse, self.last_seen[occupied])
        return {
            self._source_of_key(key): float(moment)
            for key, moment in zip(keys.tolist(), latest.tolist(), strict=True)
        }

    def _source_keys(self, slots: np.ndarray) -> np.ndarray:
        """One int64 per slot naming its topic-partition: topic id and partition number side by side."""
        return self.topic_id[slots].astype(np.int64) * (MAX_PARTITION + 1) + self.partition[slots]

    def _source_key(self, topic: str, partition: int) -> int:
        return self._topic_ids[topic] * (MAX_PARTITION + 1) + partition

    def _source_of_key(self, key: int) -> TopicPartition:
        topic, partition = divmod(key, MAX_PARTITION + 1)
        return self.topics[topic], partition

    def slots_for(
        self,
        entities: Sequence[str],
        now: float | np.ndarray,
        partitions: int | Sequence[int] | np.ndarray,
        topic_ids: int | Sequence[int] | np.ndarray = 0,
    ) -> np.ndarray:
        """Slots of ``entities`` (int64, one per element, repeats share a slot), allocating new ones.

        A new entity starts from the initial state with no events applied, last seen at ``now``
        (its event's time when ``now`` has one per entity); a known entity's ``last_seen`` moves
        only with ``write``, so it still tells how long the entity was idle before this batch.
        When the table is full the least recently seen entities are evicted in one go (at least
        ``evict_fraction`` of the capacity, so the scan is rare), never one of ``entities``.
        ``partitions`` and ``topic_ids`` (from ``topic_id_of``) say where each event came from; an
        entity is taken to come from where its latest event (by time, then by batch order) came from,
        whatever order the events were read in (``_record_sources``).
        """
        get = self._slot_of.get
        slots = np.fromiter((get(e, -1) for e in entities), np.int64, count=len(entities))
        missing = np.flatnonzero(slots < 0)
        if missing.size:
            new_entities = list(dict.fromkeys(entities[i] for i in missing.tolist()))
            self._make_room(len(new_entities), protected=slots[slots >= 0])
            new_slots = self._pop_free(len(new_entities))
            self._claim(new_entities, new_slots)
            self.h[:, new_slots, :] = self._initial_h[:, None, :]
            self.c[:, new_slots, :] = self._initial_c[:, None, :]
            self.events_applied[new_slots] = 0
            self.count_profile[new_slots] = 0
            self.max_surprise[new_slots] = 0.0
            self.unknown_events[new_slots] = 0
            self.partition[new_slots] = -1  # no source yet: _record_sources gives one
            slot_of = self._slot_of
            slots[missing] = [slot_of[entities[i]] for i in missing.tolist()]
            if isinstance(now, np.ndarray):  # the time of each new entity's first event
                self.last_seen[new_slots] = np.inf
                np.minimum.at(self.last_seen, slots[missing], now[missing])
            else:
                self.last_seen[new_slots] = now
        self._record_sources(slots, now, partitions, topic_ids)
        self._generation += 1
        return slots

    def _record_sources(
        self,
        slots: np.ndarray,
        now: float | np.ndarray,
        partitions: int | Sequence[int] | np.ndarray,
        topic_ids: int | Sequence[int] | np.ndarray,
    ) -> None:
        """Set each slot's topic-partition to that of its latest event, the batch's or an earlier one.

        By time, not by the order events were read: one poll returns partitions in any order, and
        an entity whose events come from two topic-partitions must be released with, and resumed
        at, the same one however the polls were cut.  Events of one time (timestamps of whole
        seconds) are ranked by topic name, then partition, for the same reason.  An event older
        than the entity's ``last_seen`` (as ``write`` leaves it) leaves the source as it is.
        """
        count = len(slots)
        partitions = np.broadcast_to(np.asarray(partitions, np.int32), (count,))
        topic_ids = np.broadcast_to(np.asarray(topic_ids, np.int32), (count,))
        if count and not 0 <= int(topic_ids.min()) <= int(topic_ids.max()) < len(self.topics):
            raise ValueError(f"topic ids must come from topic_id_of (0 to {len(self.topics) - 1})")
        times = np.broadcast_to(np.asarray(now, np.float64), (count,))
        rank = self._topic_rank
        event_rank = rank[topic_ids]
        # Each event against the source already recorded: later, or as late and ranked no lower.
        last = self.last_seen[slots]
        stored = (rank[self.topic_id[slots]], self.partition[slots])
        newer = (
            (stored[1] < 0)
            | (times > last)
            | (
                (times == last)
                & ((event_rank > stored[0]) | ((event_rank == stored[0]) & (partitions >= stored[1])))
            )
        )
        candidates = np.flatnonzero(newer)
        if candidates.size == 0:
            return
        # The greatest (time, topic rank, partition) of each slot among them: last in this order.
        order = candidates[np.lexsort((partitions[candidates], event_rank[candidates], times[candidates]))]
        reversed_slots = slots[order[::-1]]
        _, first = np.unique(reversed_slots, return_index=True)
        chosen = order[::-1][first]
        self.partition[slots[chosen]] = partitions[chosen]
        self.topic_id[slots[chosen]] = topic_ids[chosen]

    def write(
        self,
        slots: np.ndarray,
        h_new: np.ndarray,
        c_new: np.ndarray,
        now: float | np.ndarray,
        *,
        count_weights: np.ndarray | None = None,
        surprise: np.ndarray | None = None,
        unknown: np.ndarray | None = None,
    ) -> None:
        """Store the state after one more event for each slot (``h_new``/``c_new`` are [L, B, H]).

        ``now`` is the event's time (one per slot, or one for all); ``last_seen`` never moves
        back, so a late record does not make its entity look idle.  ``count_weights`` (uint64,
        the event's weight in the multiset hash) is added to ``count_profile`` modulo 2**64, and
        ``surprise`` raises ``max_surprise`` (a NaN there stays NaN), and ``unknown`` (bool, the
        event matched no template) counts into ``unknown_events``.  The caller passes each slot
        at most once per call; several events of one entity are successive steps, each its own
        ``write``.
        """
        slots = np.asarray(slots, np.int64)
        if not self._occupied[slots].all():
            raise ValueError("write to a slot that holds no entity (slots are invalid after an eviction)")
        self.h[:, slots, :] = h_new
        self.c[:, slots, :] = c_new
        self.events_applied[slots] += 1
        if count_weights is not None:
            # np.add wraps modulo 2**64 silently; the ``+`` of two numpy scalars would warn instead.
            self.count_profile[slots] = np.add(
                self.count_profile[slots], np.asarray(count_weights, np.uint64)
            )
        if surprise is not None:
            self.max_surprise[slots] = np.maximum(self.max_surprise[slots], surprise)
        if unknown is not None and unknown.any():
            self.unknown_events[slots] += unknown
        self.last_seen[slots] = np.maximum(self.last_seen[slots], now)
        self._dirty[slots] = True
        self._generation += 1

    def restart_sessions(self, slots: np.ndarray) -> None:
        """Put ``slots`` back to the initial state with no events applied, keeping their entities.

        For an entity whose new event arrives after its session ended (idle past the TTL): the
        event opens a new session, exactly as if the entity had been expired and seen afresh; its
        counts are tracked again even if the ended session's were not.
        """
        self.h[:, slots, :] = self._initial_h[:, None, :]
        self.c[:, slots, :] = self._initial_c[:, None, :]
        self.events_applied[slots] = 0
        self.count_profile[slots] = 0
        self.max_surprise[slots] = 0.0
        self.unknown_events[slots] = 0
        self._dirty[slots] = True
        self.ended_total += len(slots)
        self._generation += 1

    def expire_idle(
        self, now: float | Mapping[TopicPartition, float], ttl_seconds: float
    ) -> list[tuple[str, int]]:
        """(entity, slot) of every entity not seen for more than ``ttl_seconds``; removes nothing.

        ``now`` is one time for all, or the stream time of each topic-partition: an entity is then
        judged by the partition of its latest event (the earliest time of the topics with that
        partition number, ``_clock_by_number``), so a partition read ahead of the others cannot end
        sessions whose next events are still unread in another.  Entities of a partition number
        missing from the mapping are not judged.  The caller scores the end of their sessions from
        ``h[:, slot, :]`` and then calls ``remove``.
        """
        horizon: np.ndarray | float
        if isinstance(now, Mapping):
            if not now or not self._slot_of:
                return []
            horizon = self._clock_by_number(now) - ttl_seconds
        else:
            horizon = now - ttl_seconds
        idle = np.flatnonzero(self._occupied & (self.last_seen < horizon))
        entity_at = self._entity_at
        return [(entity_at[s], s) for s in idle.tolist()]  # type: ignore[misc]

    def _clock_by_number(self, now: Mapping[TopicPartition, float]) -> np.ndarray:
        """Per slot, the earliest stream time of the topics with its partition number (-inf: none).

        By number, not by topic: co-partitioned topics (one key, one partition number in each) carry
        an entity's events in both, and the one read ahead must not end sessions whose next events
        are still unread in the other.  Read from an array indexed by partition number, or, past
        ``DENSE_CLOCK_PARTITIONS``, looked up among the sorted numbers (14 ms instead of 3 for a
        million slots, the sweep's pause), so a partition number of billions costs no memory.
        """
        by_number: dict[int, float] = {}
        for (_, partition), moment in now.items():
            by_number[partition] = min(moment, by_number.get(partition, moment))
        top = max(max(by_number), int(self.partition.max()))
        if top < DENSE_CLOCK_PARTITIONS:  # the usual case: one gather, 3 ms for a million slots
            dense = np.full(top + 1, -np.inf)
            dense[np.fromiter(by_number, np.int64, len(by_number))] = list(by_number.values())
            return dense[self.partition]
        numbers = np.fromiter(sorted(by_number), np.int64, len(by_number))
        times = np.fromiter((by_number[n] for n in numbers.tolist()), np.float64, len(by_number))
        position = np.minimum(np.searchsorted(numbers, self.partition), len(numbers) - 1)
        return np.where(numbers[position] == self.partition, times[position], -np.inf)

    def remove(self, entities: Iterable[str], *, reason: RemovalReason = "expired") -> int:
        """Forget ``entities`` (unknown ones are ignored) and count them under ``reason``."""
        slot_of = self._slot_of
        removed = self._release(np.array([slot_of[e] for e in set(entities) if e in slot_of], np.int64))
        if reason == "expired":
            self.expired_total += removed
        elif reason == "released":
            self.released_total += removed
        else:
            self.ended_total += removed
        return removed

    def entities_in(self, sources: Iterable[TopicPartition]) -> list[str]:
        """Tracked entities whose last event came from one of the topic-partitions ``sources``."""
        wanted = np.fromiter((self._source_key(t, p) for t, p in sources if t in self._topic_ids), np.int64)
        occupied = np.flatnonzero(self._occupied)
        slots = occupied[np.isin(self._source_keys(occupied), wanted)]
        entity_at = self._entity_at
        return [entity_at[s] for s in slots.tolist()]  # type: ignore[misc]

    def snapshot(self, entity: str) -> EntitySnapshot:
        """Copy of ``entity``'s state; KeyError if it is not tracked."""
        slot = self._slot_of[entity]
        return EntitySnapshot(
            entity=entity,
            slot=slot,
            topic=self.topics[int(self.topic_id[slot])],
            partition=int(self.partition[slot]),
            h=self.h[:, slot, :].copy(),
            c=self.c[:, slot, :].copy(),
            last_seen=float(self.last_seen[slot]),
            events_applied=int(self.events_applied[slot]),
            count_profile=int(self.count_profile[slot]),
            max_surprise=float(self.max_surprise[slot]),
            unknown_events=int(self.unknown_events[slot]),
        )

    def take_changes(self) -> StateChanges:
        """Everything changed since the previous call, and start tracking afresh.

        The upserted rows are read from the table lazily, chunk by chunk, so checkpointing a
        million entities needs no second copy of the state; they must be consumed before the
        table changes again (reading after a change raises).  If saving fails, hand the changes
        to ``restore_changes`` so the next checkpoint carries them.
        """
        slots = np.flatnonzero(self._dirty)
        self._dirty[slots] = False
        entity_at = self._entity_at
        entities: list[str] = [entity_at[s] for s in slots.tolist()]  # type: ignore[misc]
        deletes: tuple[str, ...] = ()
        if self._pending_deletes:  # the set of upserted entities costs milliseconds; only when needed
            upserted = set(entities)
            deletes = tuple(e for e in self._pending_deletes if e not in upserted)
        self._pending_deletes.clear()
        return StateChanges(upserts=DirtyRows(self, slots, entities), deletes=deletes)

    def restore_changes(self, changes: StateChanges) -> None:
        """Mark ``changes`` pending again after a failed save; upserts of entities gone since are dropped."""
        slot_of = self._slot_of
        slots = [slot_of[e] for e in changes.upserts.entities if e in slot_of]
        self._dirty[np.array(slots, np.int64)] = True
        self._pending_deletes.update(changes.deletes)

    def load_rows(self, rows: Iterable[EntityRows]) -> int:
        """Restore saved rows (overwriting entities already present); returns how many were loaded.

        Loaded rows count as saved, not dirty.  StateStoreError if they do not fit the capacity (the
        start first evicts what cannot fit: ``StateStore.evict_least_recently_seen``).
        """
        loaded = 0
        for chunk in rows:
            if tuple(chunk.h.shape[1:]) != (self.num_layers, self.hidden_size):
                raise StateStoreError(
                    f"saved state has shape {tuple(chunk.h.shape[1:])}, "
                    f"the table holds {(self.num_layers, self.hidden_size)}"
                )
            entities = list(chunk.entities)
            new_entities = [e for e in dict.fromkeys(entities) if e not in self._slot_of]
            if len(new_entities) > self._free_count:
                raise StateStoreError(more_saved_than_capacity(self.capacity))
            self._claim(new_entities, self._pop_free(len(new_entities)))
            slots = np.array([self._slot_of[e] for e in entities], np.int64)
            self.h[:, slots, :] = chunk.h.transpose(1, 0, 2)
            self.c[:, slots, :] = chunk.c.transpose(1, 0, 2)
            self.partition[slots] = chunk.partition
            topic_id_of = self.topic_id_of
            self.topic_id[slots] = [topic_id_of(topic) for topic in chunk.topic]
            self.last_seen[slots] = chunk.last_seen
            self.events_applied[slots] = chunk.events_applied
            self.count_profile[slots] = chunk.count_profile
            self.max_surprise[slots] = chunk.max_surprise
            self.unknown_events[slots] = chunk.unknown_events
            self._dirty[slots] = False
            self._pending_deletes.difference_update(entities)
            loaded += len(entities)
        self._generation += 1
        return loaded

    def _make_room(self, needed: int, protected: np.ndarray) -> None:
        shortfall = needed - self._free_count
        if shortfall <= 0:
            return
        protected_count = int(np.unique(protected).size)
        evictable = len(self._slot_of) - protected_count
        if shortfall > evictable:
            raise ValueError(
                f"a batch with {needed + protected_count} distinct entities cannot fit a table of capacity "
                f"{self.capacity}"
            )
        count = min(max(shortfall, self._evict_batch), evictable)
        age = np.where(self._occupied, self.last_seen, np.inf)
        age[protected] = np.inf
        victims = np.argpartition(age, count - 1)[:count]
        self.evicted_total += self._release(victims)

    def _pop_free(self, count: int) -> np.ndarray:
        top = self._free_count
        slots = self._free[top - count : top][::-1].copy()
        self._free_count = top - count
        return slots

    def _claim(self, entities: list[str], slots: np.ndarray) -> None:
        slot_list = slots.tolist()
        self._slot_of.update(zip(entities, slot_list, strict=True))
        entity_at = self._entity_at
        for entity, slot in zip(entities, slot_list, strict=True):
            entity_at[slot] = entity
        self._occupied[slots] = True
        self._dirty[slots] = False

    def _release(self, slots: np.ndarray) -> int:
        entity_at, slot_of = self._entity_at, self._slot_of
        released: list[str] = []
        freed: list[int] = []
        for slot in slots.tolist():
            entity = entity_at[slot]
            if entity is None:
                continue
            del slot_of[entity]
            entity_at[slot] = None
            released.append(entity)
            freed.append(slot)
        if not freed:
            return 0
        freed_slots = np.array(freed, np.int64)
        self._pending_deletes.update(released)
        self._occupied[freed_slots] = False
        self._dirty[freed_slots] = False
        top = self._free_count
        self._free[top : top + len(freed)] = freed_slots
        self._free_count = top + len(freed)
        self._generation += 1
        return len(freed)
