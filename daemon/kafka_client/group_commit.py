"""Step 3 of the checkpoint: commit the saved offsets to the Kafka consumer group.

Two constraints shape it:

- The commit must never hold the loop for long.  A broker that does not answer would otherwise
  stall every checkpoint for kafka-python's whole request timeout (30 s), and a stopping daemon
  past systemd's stop timeout.  So a commit waits at most ``GROUP_COMMIT_TIMEOUT_SECONDS``, or
  less when the checkpoint's own budget (the shutdown's) is shorter; a refusal or a timeout is
  reported, and the offsets stay *unconfirmed*: the next checkpoint commits newer ones, and when
  none comes (the input went quiet) the loop commits them again (``retry_unconfirmed``), and the
  revocation of their partitions does, so lag tools and the partitions' next owner see them.
- kafka-python 3 runs rebalance listeners on its network thread, where any blocking consumer
  call raises ``RuntimeError``.  A checkpoint taken inside a listener therefore runs under
  ``deferring()``: the commit is held, and the listener (``daemon/kafka_client/rebalance.py``) awaits it
  on the network thread (``commit_on_network_thread``) before the group moves the partitions
  on, so their next owner starts exactly where this instance stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from logwarden.daemon.checkpoint import Offsets

GroupOffsets = dict[TopicPartition, OffsetAndMetadata]

GROUP_COMMIT_TIMEOUT_SECONDS = 5.0
"""Longest a checkpoint waits for the group to accept its offsets (a healthy broker takes ms)."""

FIRST_RETRY_SECONDS = 5.0
"""How long after a refused commit the loop commits the same offsets again, if no checkpoint did.

A rebalance or a coordinator move is over in seconds.  Each further refusal doubles the wait, up
to ``LONGEST_RETRY_SECONDS``, so a broker outage of an hour costs a few dozen warnings, not one
every few seconds."""

LONGEST_RETRY_SECONDS = 60.0


def owned_group_offsets(next_offsets: Offsets, assigned: set[TopicPartition]) -> GroupOffsets:
    """The offsets of the partitions this member still owns, in kafka-python's commit form."""
    return {
        TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
        for (topic, partition), offset in next_offsets.items()
        if TopicPartition(topic, partition) in assigned
    }


def describe_refusal(error: BaseException) -> str:
    """A commit error as ``Type: message``, the form logs and checkpoint results report it in."""
    return f"{type(error).__name__}: {error}"


async def commit_on_network_thread(
    consumer: KafkaConsumer, offsets: GroupOffsets, timeout_seconds: float
) -> None:
    """Commit from a coroutine on kafka-python's network thread (a rebalance listener), and return
    only once the group has answered; raises KafkaError (KafkaTimeoutError after ``timeout_seconds``).

    ``commit_async`` is not enough there: when the group coordinator is unknown at that moment
    (it moved, or its connection dropped), it returns the future of the coordinator *lookup* and
    sends the commit once the lookup succeeds, after the listener has returned, so the partitions'
    next owner could fetch the previous commit.  kafka-python's own pre-rebalance auto-commit
    awaits the coroutine used here, which finds the coordinator first and retries retriable
    errors until the timeout.  It is not public API: on a kafka-python without it, the listener
    falls back to ``commit_async``.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    commit_and_wait = getattr(coordinator, "_commit_offsets_sync_async", None)
    if commit_and_wait is None:
        await consumer.commit_async(offsets)
        return
    await commit_and_wait(offsets, timeout_ms=int(timeout_seconds * 1000))


class GroupCommitter:
    """Commits checkpoint offsets for the partitions still owned; why not, if it could not.

    The group refuses a commit while it rebalances (``RebalanceInProgressError``) or once this
    member's generation is over (``CommitFailedError``, e.g. partitions lost to a session timeout),
    and a broker that does not answer times it out.  The local checkpoint already stands and is
    what a restart resumes from, so none of these is raised: raising would stop the daemon at
    every rebalance or broker outage that happens to meet a checkpoint.  The refused offsets are
    kept as unconfirmed until a commit of those partitions succeeds or the partitions go.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        timeout_seconds: float = GROUP_COMMIT_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._timeout_seconds = timeout_seconds
        self._monotonic = monotonic
        self._deferring = False
        self._deferred: GroupOffsets = {}
        self._unconfirmed: GroupOffsets = {}
        self._retry_wait = FIRST_RETRY_SECONDS
        self._retry_at = 0.0

    def commit(self, next_offsets: Offsets, budget_seconds: float) -> str | None:
        """Commit (or, while ``deferring``, hold) the offsets; the refusal as text, None if accepted."""
        offsets = owned_group_offsets(next_offsets, self._consumer.assignment())
        if not offsets:
            return None
        if self._deferring:
            self._deferred.update(offsets)
            return None
        return self._send(offsets, max(0.1, min(self._timeout_seconds, budget_seconds)))

    def _send(self, offsets: GroupOffsets, timeout_seconds: float) -> str | None:
        try:
            self._consumer.commit(offsets, timeout_ms=int(timeout_seconds * 1000))
        except KafkaError as exc:
            if not self._unconfirmed:
                self._retry_wait = FIRST_RETRY_SECONDS
            else:
                self._retry_wait = min(2 * self._retry_wait, LONGEST_RETRY_SECONDS)
            self._retry_at = self._monotonic() + self._retry_wait
            self._unconfirmed.update(offsets)
            return describe_refusal(exc)
        # Accepted: earlier refused offsets of these partitions are superseded.
        self.forget(offsets)
        return None

    @property
    def unconfirmed(self) -> GroupOffsets:
        """Offsets saved locally whose commit the group refused, and not committed since."""
        return dict(self._unconfirmed)

    def retry_due(self) -> bool:
        """Whether refused offsets wait for another commit and their wait is over."""
        return bool(self._unconfirmed) and self._monotonic() >= self._retry_at

    def retry_unconfirmed(self) -> tuple[int, str | None]:
        """Commit the refused offsets of the partitions still owned again: how many, and the refusal.

        For the loop, when no checkpoint came to commit newer offsets (``retry_due``).  Offsets of
        partitions no longer owned are dropped: their next owner may have committed past them.
        """
        owned = self._consumer.assignment()
        self.forget(set(self._unconfirmed) - set(owned))
        offsets = dict(self._unconfirmed)
        if not offsets:
            return 0, None
        return len(offsets), self._send(offsets, self._timeout_seconds)

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """Drop the refused offsets of partitions that are going: never commit them later."""
        for partition in partitions:
            self._unconfirmed.pop(partition, None)

    @contextmanager
    def deferring(self) -> Iterator[None]:
        """Hold commits made meanwhile for ``take_deferred``: for checkpoints inside a rebalance listener."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def take_deferred(self) -> GroupOffsets:
        """The offsets held since ``deferring`` began (the latest per partition), now forgotten."""
        offsets, self._deferred = self._deferred, {}
        return offsets

    def take_for_revocation(self, revoked: Collection[TopicPartition]) -> GroupOffsets:
        """What the revocation of ``revoked`` must commit: the held offsets, and the refused ones of
        ``revoked`` that no newer held offset replaces; both are forgotten.

        The refused ones matter when the revocation took no checkpoint (nothing new was processed):
        without them the partitions' next owner would start from the group's older offset and
        apply again what this instance saved.
        """
        offsets = {
            partition: self._unconfirmed[partition] for partition in revoked if partition in self._unconfirmed
        }
        offsets.update(self.take_deferred())
        self.forget(revoked)
        return offsets
