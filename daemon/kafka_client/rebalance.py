"""The consumer-group rebalance listener: checkpoint before partitions move, resume them after.

kafka-python 3 calls rebalance listeners on its network thread, the one that also sends
heartbeats and requests; a blocking consumer call made there raises ``RuntimeError`` ("Cannot
block on net.run() from the IO thread itself").  The checkpoint at a revocation ends with a
group commit, a blocking call, so this listener is asynchronous: the checkpoint's local steps
run as before (flush, snapshot), its group commit is held (``GroupCommitter.deferring``) and
then awaited as a coroutine (``commit_on_network_thread``), which lets the network thread carry
the request.  The revocation completes only once the commit is answered (or after
``GROUP_COMMIT_TIMEOUT_SECONDS``), so the partitions' next owner starts exactly where this
instance stopped.  When the revocation takes no checkpoint (nothing new since the last one), the
offsets of an earlier refused commit are committed here instead.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError

from logwarden.daemon.kafka_client.group_commit import (
    GROUP_COMMIT_TIMEOUT_SECONDS,
    GroupCommitter,
    commit_on_network_thread,
    describe_refusal,
)

log = structlog.get_logger("logwarden.daemon")


class PartitionOwner(Protocol):
    """What the service does when partitions come and go (``DaemonService``)."""

    def handle_revoked(self, revoked: Collection[TopicPartition], *, lost: bool = False) -> None:
        """Checkpoint before ``revoked`` moves on; ``lost`` if the group already gave it to another member."""

    def handle_assigned(
        self, assigned: Collection[TopicPartition], group_offsets: Mapping[TopicPartition, int] | None = None
    ) -> None:
        """Resume ``assigned`` from the local checkpoint; ``group_offsets``: the group's, where known."""


class CheckpointingRebalanceListener(AsyncConsumerRebalanceListener):
    """Checkpoints and commits before a rebalance; resumes partitions from the local checkpoint after."""

    def __init__(
        self,
        owner: PartitionOwner,
        committer: GroupCommitter,
        consumer: KafkaConsumer,
        commit_seconds: Callable[[], float] = lambda: GROUP_COMMIT_TIMEOUT_SECONDS,
    ) -> None:
        """``commit_seconds``: how long the revocation's group commit may wait now; when the daemon
        stops, what is left of its stop budget (``consumer.close()`` revokes every partition)."""
        self._owner = owner
        self._committer = committer
        self._consumer = consumer
        self._commit_seconds = commit_seconds

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Checkpoint with the group commit held, then await that commit here on the network thread."""
        with self._committer.deferring():
            self._owner.handle_revoked(revoked)
        offsets = self._committer.take_for_revocation(revoked)
        if not offsets:
            return
        try:
            await commit_on_network_thread(self._consumer, offsets, self._commit_seconds())
        except KafkaError as exc:
            log.warning(
                "group_commit_refused",
                error=describe_refusal(exc),
                note="at a rebalance: the next owner of these partitions resumes from the last commit",
            )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Hand the new partitions to the owner, which resumes them from the local checkpoint.

        The group's committed offsets are fetched first (awaited here, on the network thread), so
        the owner can say when its own checkpoint takes a partition back behind them."""
        self._owner.handle_assigned(assigned, await self._group_offsets(assigned))

    async def _group_offsets(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int] | None:
        """The group's committed offset of each assigned partition that has one; None if not known."""
        coordinator = getattr(self._consumer, "_coordinator", None)
        fetch = getattr(coordinator, "fetch_committed_offsets_async", None)
        if fetch is None or not assigned:
            return None
        try:
            offsets = await fetch(set(assigned), timeout_ms=int(self._commit_seconds() * 1000))
        except KafkaError:
            return None
        return {tp: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        """The group already dropped this member: save locally, commit nothing (it cannot succeed)."""
        with self._committer.deferring():
            self._owner.handle_revoked(lost, lost=True)
        self._committer.take_deferred()
        self._committer.forget(lost)
