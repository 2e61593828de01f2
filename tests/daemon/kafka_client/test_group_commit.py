"""Step 3 of the checkpoint: bounded group commits, and commits held inside a rebalance listener
and sent asynchronously (kafka-python 3 runs listeners on its network thread, where blocking raises)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from typing import Any

import pytest
import structlog
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import CommitFailedError, RebalanceInProgressError
from kafka.future import Future
from kafka.structs import OffsetAndMetadata, TopicPartition
from kafka_broker import FAST_CONSUMER_SETTINGS
from manual_clock import ManualClock

from logwarden.daemon.kafka_client.group_commit import (
    FIRST_RETRY_SECONDS,
    GROUP_COMMIT_TIMEOUT_SECONDS,
    LONGEST_RETRY_SECONDS,
    GroupCommitter,
    commit_on_network_thread,
)
from logwarden.daemon.kafka_client.rebalance import CheckpointingRebalanceListener

OWNED = TopicPartition("in", 0)


class GroupMember:
    """Stands in for KafkaConsumer's commit side.  ``on_network_thread``: blocking calls raise, as
    kafka-python 3's do when a rebalance listener makes them."""

    def __init__(self, refuse_with: Exception | None = None, on_network_thread: bool = False) -> None:
        self.refuse_with = refuse_with
        self.on_network_thread = on_network_thread
        self.commits: list[tuple[dict[TopicPartition, Any], int | None]] = []
        self.async_commits: list[dict[TopicPartition, Any]] = []

    def assignment(self) -> set[TopicPartition]:
        return {OWNED}

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int | None = None) -> None:
        if self.on_network_thread:
            raise RuntimeError("Cannot block on net.run() from the IO thread itself.")
        if self.refuse_with is not None:
            raise self.refuse_with
        self.commits.append((offsets, timeout_ms))

    def commit_async(self, offsets: dict[TopicPartition, Any]) -> Future:
        self.async_commits.append(offsets)
        future = Future()
        return future.failure(self.refuse_with) if self.refuse_with is not None else future.success(None)


@pytest.mark.parametrize(
    "error", [RebalanceInProgressError(), CommitFailedError("the group has already rebalanced")]
)
def test_group_commit_refused_by_the_group_is_reported_not_raised(error: Exception) -> None:
    """A refusal by a rebalancing or already rebalanced group comes back as text naming the error."""
    refused = GroupCommitter(GroupMember(refuse_with=error)).commit({("in", 0): 5}, 30.0)  # type: ignore[arg-type]
    assert refused is not None and type(error).__name__ in refused


def test_group_commit_of_partitions_no_longer_owned_commits_nothing() -> None:
    """Offsets only of a partition the member no longer owns send no commit at all, and report no refusal."""
    member = GroupMember()
    assert GroupCommitter(member).commit({("in", 7): 5}, 30.0) is None  # type: ignore[arg-type]
    assert member.commits == []


def test_group_commit_waits_at_most_its_limit_or_the_checkpoint_budget_left() -> None:
    """A broker that does not answer must not stall a checkpoint for kafka-python's 30 s default."""
    member = GroupMember()
    committer = GroupCommitter(member)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    committer.commit({("in", 0): 6}, 1.5)
    assert [timeout for _, timeout in member.commits] == [int(GROUP_COMMIT_TIMEOUT_SECONDS * 1000), 1500]
    assert member.commits[1][0] == {OWNED: OffsetAndMetadata(6, "", -1)}


def test_group_commit_while_deferring_is_held_not_sent() -> None:
    """Inside ``deferring()`` nothing is sent (blocking would raise); owned offsets are taken once after."""
    member = GroupMember(on_network_thread=True)
    committer = GroupCommitter(member)  # type: ignore[arg-type]
    with committer.deferring():
        assert committer.commit({("in", 0): 5, ("in", 7): 9}, 30.0) is None
    assert committer.take_deferred() == {OWNED: OffsetAndMetadata(5, "", -1)}
    assert committer.take_deferred() == {}


class CheckpointingOwner:
    """Stands in for DaemonService: each revocation takes a checkpoint that commits offset 42."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer
        self.checkpoint_results: list[str | None] = []
        self.revoked: list[tuple[set[TopicPartition], bool]] = []

    def handle_revoked(self, revoked: Collection[TopicPartition], *, lost: bool = False) -> None:
        self.revoked.append((set(revoked), lost))
        self.checkpoint_results.append(self.committer.commit({("in", 0): 42}, 30.0))

    def handle_assigned(self, assigned: Collection[TopicPartition], group_offsets: object = None) -> None:
        pass


def listener_on_network_thread(
    refuse_with: Exception | None = None,
) -> tuple[CheckpointingRebalanceListener, GroupMember, CheckpointingOwner]:
    """A listener, member and owner where blocking commits raise, as on kafka-python 3's network thread."""
    member = GroupMember(refuse_with=refuse_with, on_network_thread=True)
    committer = GroupCommitter(member)  # type: ignore[arg-type]
    owner = CheckpointingOwner(committer)
    return CheckpointingRebalanceListener(owner, committer, member), member, owner  # type: ignore[arg-type]


def test_revocation_checkpoints_and_commits_asynchronously_without_blocking_the_network_thread() -> None:
    """The checkpoint's commit inside the listener used to call the blocking commit, which raises on
    kafka-python 3's network thread and stopped the daemon at every rebalance with unsaved work."""
    listener, member, owner = listener_on_network_thread()
    asyncio.run(listener.on_partitions_revoked({OWNED}))
    assert owner.checkpoint_results == [None]
    assert member.async_commits == [{OWNED: OffsetAndMetadata(42, "", -1)}]


def test_revocation_commit_refused_by_the_group_is_logged_not_raised() -> None:
    """A commit refused at revocation is logged once as group_commit_refused; the listener returns."""
    listener, member, _ = listener_on_network_thread(refuse_with=RebalanceInProgressError())
    with structlog.testing.capture_logs() as logs:
        asyncio.run(listener.on_partitions_revoked({OWNED}))
    assert [entry["event"] for entry in logs] == ["group_commit_refused"]
    assert "RebalanceInProgressError" in logs[0]["error"]


def test_lost_partitions_are_saved_locally_but_not_committed() -> None:
    """A member the group already dropped cannot commit; its local checkpoint is still taken."""
    listener, member, owner = listener_on_network_thread()
    asyncio.run(listener.on_partitions_lost({OWNED}))
    assert owner.revoked == [({OWNED}, True)]
    assert member.async_commits == []


def test_revocation_commit_is_answered_before_the_listener_returns_even_with_the_coordinator_unknown(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """With the coordinator unknown, ``commit_async`` returns the lookup's future and sends the commit
    later, once the listener has returned.  Here the group's committed offset is read, by another
    client, while the member's network thread is still held right after the awaited commit, as the
    rebalance that follows a listener would be."""
    topic = topic_factory()
    group = f"g-{topic}"
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=[kafka_bootstrap], group_id=group, **FAST_CONSUMER_SETTINGS)
    admin = KafkaAdminClient(bootstrap_servers=[kafka_bootstrap])
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert consumer.assignment() == {tp}
        consumer._coordinator.coordinator_dead("the test forgets the coordinator")
        assert consumer._coordinator.coordinator_unknown()

        async def revocation_commit() -> int | None:
            await commit_on_network_thread(consumer, {tp: OffsetAndMetadata(17, "", -1)}, 10.0)
            committed = admin.list_group_offsets({group: None}).get(group, {})  # blocks the member's thread
            return committed[tp].offset if tp in committed else None

        assert consumer._net.run(revocation_commit) == 17
    finally:
        admin.close()
        consumer.close(autocommit=False)


class RefusingFor:
    """A group member that refuses the first ``refusals`` commits (the group is rebalancing), then accepts."""

    def __init__(self, refusals: int, owned: set[TopicPartition] | None = None) -> None:
        self.refusals = refusals
        self.owned = {OWNED} if owned is None else owned
        self.commits: list[dict[TopicPartition, int]] = []
        self.async_commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int | None = None) -> None:
        if self.refusals:
            self.refusals -= 1
            raise RebalanceInProgressError()
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def commit_async(self, offsets: dict[TopicPartition, Any]) -> Future:
        self.async_commits.append({tp: meta.offset for tp, meta in offsets.items()})
        return Future().success(None)


def test_refused_offsets_are_committed_again_once_their_wait_is_over() -> None:
    """Input that went quiet brings no next checkpoint: the refused offsets are committed by a retry."""
    member, clock = RefusingFor(1), ManualClock()
    committer = GroupCommitter(member, monotonic=clock)  # type: ignore[arg-type]
    assert committer.commit({("in", 0): 5}, 30.0) is not None
    clock.now += FIRST_RETRY_SECONDS - 0.1
    assert not committer.retry_due()
    clock.now += 0.1
    assert committer.retry_due()
    assert committer.retry_unconfirmed() == (1, None)
    assert member.commits == [{OWNED: 5}]
    assert not committer.retry_due() and committer.unconfirmed == {}


def test_each_further_refusal_doubles_the_wait_up_to_a_minute() -> None:
    """A broker refusing for an hour costs a warning a minute, not one every five seconds."""
    member, clock = RefusingFor(10), ManualClock()
    committer = GroupCommitter(member, monotonic=clock)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    waits = []
    for _ in range(6):
        started = clock.now
        while not committer.retry_due():
            clock.now += 1.0
        waits.append(clock.now - started)
        assert committer.retry_unconfirmed()[1] is not None
    assert waits == [5.0, 10.0, 20.0, 40.0, LONGEST_RETRY_SECONDS, LONGEST_RETRY_SECONDS]


def test_a_later_accepted_commit_supersedes_the_refused_offsets() -> None:
    """The next checkpoint's commit carries newer offsets of the same partition: nothing is left to retry."""
    member, clock = RefusingFor(1), ManualClock()
    committer = GroupCommitter(member, monotonic=clock)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    assert committer.commit({("in", 0): 9}, 30.0) is None
    clock.now += 3600.0
    assert not committer.retry_due()
    assert member.commits == [{OWNED: 9}]


def test_refused_offsets_of_a_partition_no_longer_owned_are_never_committed() -> None:
    """Its next owner may have committed further: committing ours later would move the group back."""
    member, clock = RefusingFor(1), ManualClock()
    committer = GroupCommitter(member, monotonic=clock)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    member.owned = set()
    clock.now += FIRST_RETRY_SECONDS
    assert committer.retry_unconfirmed() == (0, None)
    assert member.commits == [] and committer.unconfirmed == {}


def test_a_revocation_without_a_checkpoint_commits_the_refused_offsets() -> None:
    """Nothing new since the refused commit, so the revocation takes no checkpoint; the next owner
    must still start after what this instance saved, not from the group's older offset."""
    member = RefusingFor(1)
    committer = GroupCommitter(member)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    listener = CheckpointingRebalanceListener(IdleOwner(), committer, member)  # type: ignore[arg-type]
    asyncio.run(listener.on_partitions_revoked({OWNED}))
    assert member.async_commits == [{OWNED: 5}]
    assert committer.unconfirmed == {}


def test_a_revocation_checkpoint_commits_its_newer_offsets_over_the_refused_ones() -> None:
    """The revocation's own checkpoint saved offset 42 after the refused 5: 42 is what the group gets."""
    member = RefusingFor(1)
    committer = GroupCommitter(member)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    listener = CheckpointingRebalanceListener(CheckpointingOwner(committer), committer, member)  # type: ignore[arg-type]
    asyncio.run(listener.on_partitions_revoked({OWNED}))
    assert member.async_commits == [{OWNED: 42}]


def test_lost_partitions_forget_their_refused_offsets() -> None:
    """The group gave them to another member: neither the loss nor a later retry commits them."""
    member = RefusingFor(1)
    committer = GroupCommitter(member)  # type: ignore[arg-type]
    committer.commit({("in", 0): 5}, 30.0)
    listener = CheckpointingRebalanceListener(IdleOwner(), committer, member)  # type: ignore[arg-type]
    asyncio.run(listener.on_partitions_lost({OWNED}))
    assert committer.unconfirmed == {} and member.async_commits == [] and member.commits == []


class IdleOwner:
    """Stands in for DaemonService with nothing processed since its last checkpoint: no checkpoint to take."""

    def handle_revoked(self, revoked: Collection[TopicPartition], *, lost: bool = False) -> None:
        pass

    def handle_assigned(self, assigned: Collection[TopicPartition], group_offsets: object = None) -> None:
        pass
