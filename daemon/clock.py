"""Stream time, per input partition: when an entity has been idle past its TTL.

Also the time given to a record that carries none.  Eviction does not use it: it ranks entities
by the time of their own last event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

MAX_AHEAD_OF_WALL_SECONDS = 3600.0
"""How far ahead of this host's clock a record's own event time may be (later ones are cut back).

It bounds the time an entity is last seen at, which ranks it for eviction and is where its
partition's clock resumes after a restart: one record stamped in microseconds where milliseconds
were meant would otherwise pin its entity in the table for years.  An hour covers any honest clock
skew.  Stream time itself never runs past the wall clock (``StreamClock``)."""

TopicPartitionKey = tuple[str, int]


class StreamClock:
    """For each input partition, the newest record timestamp seen there; read to its end, it runs on.

    Record time rather than wall time makes a replay after a restart see the same idle gaps as the
    first run, and lets historical data expire entities as it did live.  One clock per partition
    because partitions are read unevenly (a backlog of one is read ahead of another): with a single
    clock, how far one partition had been read would decide whether an entity of another had been
    idle, and a replay that reads them in another order would end other sessions.

    A partition with no unread records gains the wall time that passes (``advance``): its next
    record can only be produced from now on, and without this the entities of a partition whose
    producers went quiet would never expire.  A partition with unread records does not: after a
    restart, or behind a slow fetch, its time must come from its records, or the sweep would end
    sessions whose next events are still unread.

    Stream time never runs past this host's wall clock, whatever a record claims: with a TTL of an
    hour, stream time an hour ahead (a record stamped in microseconds, a producer whose clock is
    off) would end every session of the partition at the next sweep, and since stream time never
    goes back and runs on with the wall, each later session after a second of quiet.  A producer
    stamping ahead only makes its own entities' sessions end that much later.

    The state table judges each entity by the partition of its latest event, at the earliest time
    of the topics with that partition number (``EntityStateTable.expire_idle`` reads ``by_source``).
    """

    def __init__(
        self,
        start: Mapping[TopicPartitionKey, float] | None = None,
        wall_time: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall_time = wall_time
        wall = wall_time()
        # Restored times come from entities' event times, which may run ahead of the wall.
        self._times: dict[TopicPartitionKey, float] = {
            key: min(moment, wall) for key, moment in (start or {}).items()
        }
        self._monotonic = monotonic
        # A restored partition gains wall time only from the start: the store keeps no time of the
        # save, so how long the daemon was stopped is unknown (the time since its last record is
        # not it: a backfill's records are stamped years back).  Its quiet sessions end a TTL after
        # the start at the latest.
        self._advanced_at: dict[TopicPartitionKey, float] = dict.fromkeys(self._times, monotonic())
        self.clamped = 0
        """Batches with a record stamped more than ``MAX_AHEAD_OF_WALL_SECONDS`` past the wall clock
        (counted by the loop, which sees every record's stamp), for the ``future_timestamps`` warning."""
        self.stamped_in_the_past = 0
        """Batches with a record stamped before 1973 (taken as unstamped), for ``past_timestamps``."""

    @property
    def by_source(self) -> dict[TopicPartitionKey, float]:
        """Stream time of each topic-partition."""
        return dict(self._times)

    @property
    def now(self) -> float:
        """The newest time of any partition (0.0 before any record): for records that carry none."""
        return max(self._times.values(), default=0.0)

    def start_at_wall(self, partition: TopicPartitionKey) -> None:
        """Give a partition whose records carry no timestamps this host's clock as its time, once: from
        then on it runs on the wall once read to its end, or its entities would never expire."""
        if partition not in self._times:
            self.observe(partition, self._wall_time())

    def time_of(self, partition: TopicPartitionKey) -> float:
        """The stream time of ``partition``, or the newest of any (``now``) before it has one."""
        return self._times.get(partition, self.now)

    def limit(self) -> float:
        """The latest time a record may claim: ``MAX_AHEAD_OF_WALL_SECONDS`` past the wall clock.

        Past the stream time, if that is later: only after this host's clock was stepped back (stream
        time never goes back).  Cut to the stepped-back clock instead, the records of every entity
        would be stamped more than the TTL before their own partition's time, and the next sweep
        would end each of their sessions.
        """
        return max(self._wall_time(), self.now) + MAX_AHEAD_OF_WALL_SECONDS

    def observe(self, partition: TopicPartitionKey, record_time: float) -> None:
        """Move ``partition`` forward to a record's timestamp (seconds); never back, never past the wall."""
        self._advanced_at[partition] = self._monotonic()
        wall = self._wall_time()
        moment = min(record_time, wall)
        if moment > self._times.get(partition, float("-inf")):
            self._times[partition] = moment

    def advance(self, caught_up: Mapping[TopicPartitionKey, float]) -> None:
        """Let wall time pass on ``caught_up`` partitions, up to when each was last seen read to its end.

        ``caught_up`` maps a partition to the monotonic time of the fetch answer whose high watermark
        it has been read to.  Time up to that answer passes; later time waits for a later answer
        (while the brokers cannot be reached, producers may write on), and passes once one shows the
        partition still read to its end: nothing was written meanwhile.  A partition not in
        ``caught_up`` has records unread: its time comes from their timestamps, and the wall time
        it spends so never passes.  A partition's time runs on up to the wall clock, not past it.
        """
        now = self._monotonic()
        wall = self._wall_time()
        for partition, moment in self._times.items():
            confirmed = caught_up.get(partition)
            if confirmed is None:
                self._advanced_at[partition] = now
                continue
            since = self._advanced_at.get(partition, now)
            until = min(confirmed, now)
            if until > since:
                self._times[partition] = max(moment, min(moment + until - since, wall))
                self._advanced_at[partition] = until

    def forget(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """Drop released partitions: if one comes back, its time starts again from its records."""
        for partition in partitions:
            self._times.pop(partition, None)
            self._advanced_at.pop(partition, None)
