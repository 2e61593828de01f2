"""Step 3 of the checkpoint: commit the saved offsets to the Kafka consumer group.

Two constraints shape it:

- The commit must never hold the loop for long.  A broker that does not answer would otherwise
  stall every checkpoint for kafka-python's whole request timeout (30 s), and a stopping daemon
  past systemd's stop timeout.  So a commit waits at most ``GROUP_COMMIT_TIMEOUT_SECONDS``, or
  less when the checkpoint's own budget (the shutdown's) is shorter; a refusal or a timeout is
  reported, and the next checkpoint commits again.
- kafka-python 3 runs rebalance listeners on its network thread, where any blocking consumer
  call raises ``RuntimeError``.  A checkpoint taken inside a listener therefore runs under
  ``deferring()``: the commit is held, and the listener (``daemon/rebalance.py``) awaits it as
  an asynchronous commit before the group moves the partitions on, so their next owner starts
  exactly where this instance stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from logwarden.daemon.checkpoint import Offsets

GroupOffsets = dict[TopicPartition, OffsetAndMetadata]

GROUP_COMMIT_TIMEOUT_SECONDS = 5.0
"""Longest a checkpoint waits for the group to accept its offsets (a healthy broker takes ms)."""


def owned_group_offsets(next_offsets: Offsets, assigned: set[TopicPartition]) -> GroupOffsets:
    """The offsets of the partitions this member still owns, in kafka-python's commit form."""
    return {
        TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
        for (topic, partition), offset in next_offsets.items()
        if TopicPartition(topic, partition) in assigned
    }


def describe_refusal(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class GroupCommitter:
    """Commits checkpoint offsets for the partitions still owned; why not, if it could not.

    The group refuses a commit while it rebalances (``RebalanceInProgressError``) or once this
    member's generation is over (``CommitFailedError``, e.g. partitions lost to a session timeout),
    and a broker that does not answer times it out.  The local checkpoint already stands and is
    what a restart resumes from, so none of these is raised: raising would stop the daemon at
    every rebalance or broker outage that happens to meet a checkpoint.
    """

    def __init__(
        self, consumer: KafkaConsumer, timeout_seconds: float = GROUP_COMMIT_TIMEOUT_SECONDS
    ) -> None:
        self._consumer = consumer
        self._timeout_seconds = timeout_seconds
        self._deferring = False
        self._deferred: GroupOffsets = {}

    def commit(self, next_offsets: Offsets, budget_seconds: float) -> str | None:
        """Commit (or, while ``deferring``, hold) the offsets; the refusal as text, None if accepted."""
        offsets = owned_group_offsets(next_offsets, self._consumer.assignment())
        if not offsets:
            return None
        if self._deferring:
            self._deferred.update(offsets)
            return None
        timeout_seconds = max(0.1, min(self._timeout_seconds, budget_seconds))
        try:
            self._consumer.commit(offsets, timeout_ms=int(timeout_seconds * 1000))
        except KafkaError as exc:
            return describe_refusal(exc)
        return None

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
