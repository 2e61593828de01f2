"""InputPositions: the applied offsets a checkpoint saves, apart from the consumer's polled positions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.errors import NoOffsetForPartitionError
from manual_clock import ManualClock

from logwarden.daemon.input_positions import InputPositions
from logwarden.daemon.kafka_client.fetch_times import FetchTimes, watch_fetches
from logwarden.errors import ConfigError

LOGS_0 = TopicPartition("logs", 0)
LOGS_1 = TopicPartition("logs", 1)


class AssignedConsumer:
    """The consumer calls InputPositions makes, answered from fixed assignments, watermarks and positions."""

    def __init__(
        self,
        assigned: set[TopicPartition],
        highwater: dict[TopicPartition, int] | None = None,
        position: dict[TopicPartition, int] | None = None,
    ) -> None:
        self.assigned = assigned
        self.highwaters = highwater or {}
        self.positions = position or {}
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.position_calls = 0

    def assignment(self) -> set[TopicPartition]:
        """The fixed assignment."""
        return set(self.assigned)

    def highwater(self, partition: TopicPartition) -> int | None:
        """The watermark given, None for a partition never fetched."""
        return self.highwaters.get(partition)

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The position given; counts the calls."""
        self.position_calls += 1
        return self.positions.get(partition)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Records the seek."""
        self.seeks.append((partition, offset))


class UnpositionedConsumer(AssignedConsumer):
    """A consumer with ``auto_offset_reset: none`` and no saved offset: asking the position raises."""

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """Raises like kafka-python."""
        raise NoOffsetForPartitionError({partition})


def test_applied_offsets_are_what_the_checkpoint_saves_not_the_consumers_position() -> None:
    """The consumer may have polled further; the offsets are those applied."""
    consumer = AssignedConsumer({LOGS_0}, position={LOGS_0: 900})
    positions = InputPositions({("logs", 0): 100}, consumer, "group")
    positions.applied(("logs", 0), 250)
    assert positions.offsets == {("logs", 0): 250}
    assert consumer.position_calls == 0


def test_stored_offsets_are_copied_not_shared_with_the_caller() -> None:
    """Applying records does not change the mapping the daemon restored from."""
    stored = {("logs", 0): 100}
    positions = InputPositions(stored, AssignedConsumer({LOGS_0}), "group")
    positions.applied(("logs", 0), 101)
    assert stored == {("logs", 0): 100}


def test_skipped_batch_is_passed_only_forward_and_only_on_an_assigned_partition() -> None:
    """A skipped batch moves an assigned partition's offset forward; never back, never for another owner's."""
    consumer = AssignedConsumer({LOGS_0})
    positions = InputPositions({("logs", 0): 500, ("logs", 1): 40}, consumer, "group")
    positions.pass_skipped({("logs", 0): 520, ("logs", 1): 60})
    assert positions.offsets == {("logs", 0): 520, ("logs", 1): 40}
    positions.pass_skipped({("logs", 0): 510})
    assert positions.offsets[("logs", 0)] == 520


def test_skipped_batch_sets_the_offset_of_an_assigned_partition_with_none_saved() -> None:
    """A corrupt first batch of a partition never applied here still gets its offset passed."""
    positions = InputPositions({}, AssignedConsumer({LOGS_1}), "group")
    positions.pass_skipped({("logs", 1): 7})
    assert positions.offsets == {("logs", 1): 7}


def test_partition_read_to_its_high_watermark_is_caught_up() -> None:
    """Applied up to the watermark: caught up; one short, or never fetched: not."""
    consumer = AssignedConsumer({LOGS_0, LOGS_1}, highwater={LOGS_0: 300, LOGS_1: 80})
    positions = InputPositions({("logs", 0): 300, ("logs", 1): 79}, consumer, "group")
    assert list(positions.caught_up(records_in_hand=True)) == [("logs", 0)]
    consumer.highwaters.pop(LOGS_0)
    assert list(positions.caught_up(records_in_hand=True)) == []


def test_transaction_marker_after_the_last_record_counts_as_read_once_the_consumer_passed_it() -> None:
    """The watermark lies past the last record by a marker; the consumer's position shows it read."""
    consumer = AssignedConsumer({LOGS_0}, highwater={LOGS_0: 3}, position={LOGS_0: 3})
    positions = InputPositions({("logs", 0): 2}, consumer, "group")
    assert list(positions.caught_up()) == [("logs", 0)]


def test_consumer_position_is_not_trusted_while_polled_records_wait() -> None:
    """With records of the last poll unapplied, the position (counting them) is not asked."""
    consumer = AssignedConsumer({LOGS_0}, highwater={LOGS_0: 3}, position={LOGS_0: 3})
    positions = InputPositions({("logs", 0): 2}, consumer, "group")
    assert list(positions.caught_up(records_in_hand=True)) == []
    assert consumer.position_calls == 0


def test_missing_start_offset_under_auto_offset_reset_none_is_a_config_error_naming_the_group() -> None:
    """kafka-python's NoOffsetForPartitionError becomes a ConfigError that names the setting and group."""
    consumer = UnpositionedConsumer({LOGS_0}, highwater={LOGS_0: 10})
    positions = InputPositions({}, consumer, "fraud-team")
    with pytest.raises(ConfigError, match=r"auto_offset_reset.*'fraud-team'"):
        positions.caught_up()


def test_partitions_owned_elsewhere_are_listed_sorted_and_forgotten() -> None:
    """Saved offsets outside the owned set are another instance's now; forgetting drops only those."""
    positions = InputPositions(
        {("logs", 2): 5, ("logs", 0): 9, ("audit", 1): 3}, AssignedConsumer(set()), "group"
    )
    released = positions.not_owned({("logs", 0)})
    assert released == [("audit", 1), ("logs", 2)]
    positions.forget(released)
    assert positions.offsets == {("logs", 0): 9}


def test_assigned_partitions_resume_from_their_saved_offsets_only() -> None:
    """Each assigned partition with a saved offset is sought there; one without is left to the group."""
    consumer = AssignedConsumer({LOGS_0, LOGS_1})
    positions = InputPositions({("logs", 0): 42}, consumer, "group")
    resumed = positions.resume([LOGS_0, LOGS_1])
    assert resumed == {"logs/0": 42}
    assert consumer.seeks == [(LOGS_0, 42)]


def test_a_partition_is_caught_up_as_of_the_fetch_answer_whose_high_watermark_it_reached() -> None:
    """The high watermark is the last answered fetch's: a partition read to it is caught up as of that
    answer, however old (the brokers may be out of reach: later is not known); never fetched, not at all."""
    ticks = ManualClock(100.0)
    fetches = FetchTimes(monotonic=ticks)
    consumer = AssignedConsumer({LOGS_0, LOGS_1}, highwater={LOGS_0: 5, LOGS_1: 7})
    positions = InputPositions({("logs", 0): 5, ("logs", 1): 6}, consumer, "group", fetches, monotonic=ticks)
    assert positions.caught_up(records_in_hand=True) == {}, "no fetch answered yet: not known"
    fetches.record(("logs", 0))
    ticks.now = 101.5
    fetches.record(("logs", 1))
    ticks.now = 160.0
    assert positions.caught_up(records_in_hand=True) == {("logs", 0): 100.0}, "logs/1 has a record unread"
    positions.applied(("logs", 1), 7)
    assert positions.caught_up(records_in_hand=True) == {("logs", 0): 100.0, ("logs", 1): 101.5}


def test_watch_fetches_notes_each_answered_fetch_and_passes_its_result_on() -> None:
    """Error-free responses a fetcher parses are noted with the time; failed or discarded ones are not."""
    ticks = ManualClock(7.0)
    fetches = FetchTimes(monotonic=ticks)

    class Fetcher:
        def _parse_fetched_data(self, completed_fetch: object) -> object:
            return completed_fetch.parsed

    class Consumer:
        _fetcher = Fetcher()

    def completed(partition: int, error_code: int, parsed: object) -> object:
        return SimpleNamespace(
            topic_partition=TopicPartition("logs", partition),
            partition_data=SimpleNamespace(error_code=error_code),
            parsed=parsed,
        )

    assert watch_fetches(Consumer(), fetches) == ""
    parse = Consumer._fetcher._parse_fetched_data
    assert parse(completed(0, 0, "records")) == "records"
    ticks.now = 9.0
    assert parse(completed(1, 6, "error")) == "error"  # NOT_LEADER_FOR_PARTITION
    assert parse(completed(2, 0, None)) is None  # discarded: another position by now
    assert (
        fetches.fetched_at(("logs", 0)),
        fetches.fetched_at(("logs", 1)),
        fetches.fetched_at(("logs", 2)),
    ) == (
        7.0,
        None,
        None,
    )
    assert watch_fetches(object(), fetches).startswith("this kafka-python consumer has no fetcher")


def test_watch_fetches_dates_an_answer_by_its_request_not_by_when_it_is_parsed() -> None:
    """An answer waits in kafka-python's queue until a poll parses it, seconds later behind a busy loop
    or a rebalance; its high watermark is the broker's when it answered, so it counts as of the send."""
    ticks = ManualClock(50.0)
    fetches = FetchTimes(monotonic=ticks)
    queued: list[object] = []

    class Fetcher:
        def _handle_fetch_response(
            self, node_id: int, fetch_offsets: dict, send_time: float, response: object
        ) -> None:
            for tp in fetch_offsets:
                queued.append(
                    SimpleNamespace(
                        topic_partition=tp, partition_data=SimpleNamespace(error_code=0), parsed="p"
                    )
                )

        def _parse_fetched_data(self, completed_fetch: object) -> object:
            return completed_fetch.parsed

    class Consumer:
        _fetcher = Fetcher()

    assert watch_fetches(Consumer(), fetches) == ""
    Consumer._fetcher._handle_fetch_response(1, {LOGS_0: 5, LOGS_1: 9}, 42.0, object())  # network thread
    ticks.now = 58.0  # parsed at the next poll, 16 s after the request went out
    for completed_fetch in queued:
        Consumer._fetcher._parse_fetched_data(completed_fetch)
    assert (fetches.fetched_at(("logs", 0)), fetches.fetched_at(("logs", 1))) == (42.0, 42.0)
