"""A session ends when its entity stays quiet past the TTL, and where the polls were cut or when the
idle sweep ran does not change which sessions end, their alerts, or any entity's state."""

from __future__ import annotations

import json
import time
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from in_process_service import build_in_process_service
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from manual_clock import ManualClock

from logwarden.daemon.state.table import EntityStateTable
from logwarden.synthetic import generate_logs

TTL_SECONDS = 30.0
P0, P1 = TopicPartition("in", 0), TopicPartition("in", 1)


class TwoPartitionConsumer:
    """The assignment of a member reading two partitions; no fetch response seen yet."""

    partitions = (P0, P1)

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def highwater(self, partition: TopicPartition) -> int | None:
        return None


class AlertSink:
    """An OutputSink that keeps the alerts it is given."""

    alerts_topic = "alerts"
    dead_letter_topic = "dead-letters"
    scores_topic = None

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def send_alert(self, entity: str, payload: bytes) -> None:
        self.alerts.append(json.loads(payload))

    def flush(self, timeout_seconds: float | None = None) -> None:
        pass


EPOCH = 1_700_000_000.0
"""The tests' times count from here: a record stamped before 1973 is taken as unstamped."""


def record(tp: TopicPartition, offset: int, seconds: float, line: str) -> ConsumerRecord:
    """A keyless record on ``tp`` at ``offset`` holding ``line``, stamped ``seconds`` after EPOCH."""
    value = line.encode()
    stamp = int((EPOCH + seconds) * 1000)
    return ConsumerRecord(
        tp.topic, tp.partition, -1, offset, stamp, 0, None, value, [], None, -1, len(value), -1
    )


def streams() -> dict[TopicPartition, list[ConsumerRecord]]:
    """Partition 0: job A twice, job C 99 s later, then A again; partition 1: job B twice, 20 s apart."""
    log = generate_logs(seed=5, entities=3, anomaly_fraction=0.0)
    a, b, c = list(dict.fromkeys(log.entity_of_line))[:3]
    lines = {
        entity: [ln for ln, e in zip(log.lines, log.entity_of_line, strict=True) if e == entity]
        for entity in (a, b, c)
    }
    return {
        P0: [
            record(P0, 0, 1000.0, lines[a][0]),
            record(P0, 1, 1001.0, lines[a][1]),
            record(P0, 2, 1100.0, lines[c][0]),
            record(P0, 3, 1101.0, lines[a][2]),
        ],
        P1: [record(P1, 0, 1000.0, lines[b][0]), record(P1, 1, 1020.0, lines[b][1])],
    }


def every_event_alerts(
    model: Path, consumer: Any, sink: AlertSink, ttl_seconds: float = TTL_SECONDS, **options: Any
) -> tuple[Any, EntityStateTable]:
    """The in-process service of these tests: no saved offsets, and every event alerts (threshold -1),
    so the alerts show every session end; ``options`` as ``build_in_process_service`` takes them."""
    service, table, _ = build_in_process_service(
        model, consumer=consumer, sink=sink, offsets={}, threshold=-1.0, ttl_seconds=ttl_seconds, **options
    )
    return service, table


def run(
    model: Path,
    polls: list[dict[TopicPartition, list[ConsumerRecord]]],
    consumer: Any = None,
) -> tuple[EntityStateTable, AlertSink]:
    """Every poll handled, each followed by the idle sweep; every event alerts (threshold -1)."""
    sink = AlertSink()
    service, table = every_event_alerts(model, consumer or TwoPartitionConsumer(), sink)
    for polled in polls:
        service.handle_records(polled)
        service.expire_idle_entities()
    return table, sink


def session_end_ids(sink: AlertSink) -> list[str]:
    """The sorted ids of the session-end alerts in ``sink``, to compare two runs."""
    return sorted(alert["alert_id"] for alert in sink.alerts if alert["kind"] == "session_end")


def assert_same_state(first: EntityStateTable, second: EntityStateTable, entities: list[str]) -> None:
    """Both tables hold exactly ``entities``, each with the same event count and (h, c) within 1e-5."""
    assert sorted(first._slot_of) == sorted(second._slot_of) == sorted(entities)
    for entity in entities:
        one, other = first.snapshot(entity), second.snapshot(entity)
        assert one.events_applied == other.events_applied, entity
        np.testing.assert_allclose(one.h, other.h, atol=1e-5)
        np.testing.assert_allclose(one.c, other.c, atol=1e-5)


def test_partitions_read_unevenly_end_the_same_sessions_as_one_poll(synthetic_model: Path) -> None:
    """Partition 0 read well ahead of partition 1 must not end B, whose next event is 20 s later."""
    records = streams()
    one_poll, _ = run(synthetic_model, [records])
    one_by_one = [{P0: [r]} for r in records[P0]] + [{P1: [r]} for r in records[P1]]
    uneven, uneven_sink = run(synthetic_model, one_by_one)
    together, together_sink = run(synthetic_model, [records])
    entities = sorted(together._slot_of)
    assert_same_state(uneven, together, entities)
    assert len(session_end_ids(together_sink)) == 1, (
        "A's first session ended: its next event came 100 s later"
    )
    assert session_end_ids(uneven_sink) == session_end_ids(together_sink)
    assert one_poll.snapshot(entities[0]).events_applied >= 1


LOGS0, AUDIT0 = TopicPartition("logs", 0), TopicPartition("audit", 0)


class CoPartitionedConsumer(TwoPartitionConsumer):
    """A member reading partition 0 of two topics that carry the same entities."""

    partitions = (LOGS0, AUDIT0)


@pytest.mark.parametrize("audit_first", [True, False])
def test_co_partitioned_topics_read_unevenly_end_the_same_sessions_as_one_poll(
    synthetic_model: Path, audit_first: bool
) -> None:
    """Job A logs to logs/0 at 1000 s and to audit/0 at 1020 s; logs/0 read ahead (job C at 1100 s)
    before audit/0 must not end A's session, whether audit/0 has been read from yet or not (then
    its time is unknown, and partition 0 waits for it): A keeps both events, however the polls
    were cut."""
    log = generate_logs(seed=5, entities=3, anomaly_fraction=0.0)
    a, b, c = list(dict.fromkeys(log.entity_of_line))[:3]
    first = {
        e: next(ln for ln, owner in zip(log.lines, log.entity_of_line, strict=True) if owner == e)
        for e in (a, b, c)
    }
    second_of_a = [ln for ln, owner in zip(log.lines, log.entity_of_line, strict=True) if owner == a][1]
    audit = [record(AUDIT0, 0, 990.0, first[b]), record(AUDIT0, 1, 1020.0, second_of_a)]
    logs = [record(LOGS0, 0, 1000.0, first[a]), record(LOGS0, 1, 1100.0, first[c])]
    together, together_sink = run(synthetic_model, [{AUDIT0: audit, LOGS0: logs}], CoPartitionedConsumer())
    cut = (
        [{AUDIT0: audit[:1]}, {LOGS0: logs}, {AUDIT0: audit[1:]}]
        if audit_first
        else [{LOGS0: logs}, {AUDIT0: audit}]
    )
    uneven, uneven_sink = run(synthetic_model, cut, CoPartitionedConsumer())
    assert together.snapshot(a).events_applied == uneven.snapshot(a).events_applied == 2
    assert session_end_ids(uneven_sink) == session_end_ids(together_sink)
    assert (uneven.snapshot(a).topic, together.snapshot(a).topic) == ("audit", "audit"), "its latest event"


def test_a_session_ended_by_the_sweep_or_by_its_next_event_ends_alike(synthetic_model: Path) -> None:
    """Swept before its next event, or found stale when that event comes: same alert id, same state."""
    records = streams()
    swept_first = [{P0: records[P0][:3]}, {P0: records[P0][3:]}, {P1: records[P1]}]  # sweep after C
    in_one_go = [{P0: records[P0], P1: records[P1]}]
    swept, swept_sink = run(synthetic_model, swept_first)
    arrived, arrived_sink = run(synthetic_model, in_one_go)
    assert_same_state(swept, arrived, sorted(arrived._slot_of))
    assert session_end_ids(swept_sink) == session_end_ids(arrived_sink)
    assert swept.expired_total == 1 and arrived.ended_total == 1


def test_later_session_of_an_entity_gets_its_own_session_end_id(synthetic_model: Path) -> None:
    """Two sessions of one entity with as many events each end with two different alert ids."""
    records = streams()
    a_lines = [r.value.decode() for r in records[P0] if r.offset in (0, 1)]
    polls = [
        {P0: [record(P0, 0, 1000.0, a_lines[0]), record(P0, 1, 1001.0, a_lines[1])]},
        {P0: [record(P0, 2, 2000.0, a_lines[0]), record(P0, 3, 2001.0, a_lines[1])]},
        {P0: [record(P0, 4, 3000.0, a_lines[0])]},
    ]
    _, sink = run(synthetic_model, polls)
    ids = session_end_ids(sink)
    assert len(ids) == 2 and len(set(ids)) == 2


class FetchedToTheEnd(TwoPartitionConsumer):
    """Fetches have shown partition 0 ending at offset 4 and partition 1 at ``partition_1_end``.

    The consumer's position in partition 1 is ``partition_1_position``: the offset after the
    records polled there, or past a transaction marker that followed them.
    """

    def __init__(self, partition_1_end: int, partition_1_position: int = 2) -> None:
        self.highwaters = {P0: 4, P1: partition_1_end}
        self.positions = {P0: 0, P1: partition_1_position}

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters[partition]

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.positions[partition]


def b_after_wall_time_passes(
    model: Path, partition_1_end: int, partition_1_position: int = 2, records_in_hand: bool = False
) -> tuple[str, EntityStateTable]:
    """B's two records handled, then 40 s of wall time (TTL 30 s) and the sweep; B and the table."""
    records = streams()
    ticks = ManualClock()
    consumer = FetchedToTheEnd(partition_1_end, partition_1_position)
    service, table = every_event_alerts(model, consumer, AlertSink(), idle_time=ticks)
    service.handle_records({P1: records[P1]})
    entity_b = next(iter(table._slot_of))
    service.expire_idle_entities(records_in_hand=records_in_hand)
    ticks.now += 40.0
    service.expire_idle_entities(records_in_hand=records_in_hand)
    return entity_b, table


def test_a_quiet_partition_read_to_its_end_runs_on_wall_time_so_its_entities_expire(
    synthetic_model: Path,
) -> None:
    """B's partition has nothing more to read: 40 s of wall time later, B's session has ended."""
    entity_b, table = b_after_wall_time_passes(synthetic_model, partition_1_end=2)
    assert entity_b not in table and table.expired_total == 1


def test_a_partition_with_unread_records_waits_for_them(synthetic_model: Path) -> None:
    """With a third record of partition 1 not read yet, wall time does not end B: its next event may be it."""
    entity_b, table = b_after_wall_time_passes(synthetic_model, partition_1_end=3)
    assert entity_b in table and table.expired_total == 0


def test_a_partition_ending_with_a_transaction_marker_counts_as_read_once_the_consumer_passed_it(
    synthetic_model: Path,
) -> None:
    """B's records at offsets 0 and 1, a commit marker at 2: the consumer's position 3 ends B's session."""
    entity_b, table = b_after_wall_time_passes(synthetic_model, partition_1_end=3, partition_1_position=3)
    assert entity_b not in table and table.expired_total == 1


def test_the_position_is_not_trusted_while_polled_records_wait_to_be_handled(synthetic_model: Path) -> None:
    """Mid-poll the position counts records not yet applied, so it cannot show the partition was read."""
    entity_b, table = b_after_wall_time_passes(
        synthetic_model, partition_1_end=3, partition_1_position=3, records_in_hand=True
    )
    assert entity_b in table and table.expired_total == 0


def record_time_ms(line: str) -> int:
    """The time a generated log line starts with, in ms since the epoch, to stamp its record with."""
    return int(datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp() * 1000)


def generated_partitions(jobs: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    """A generated log keyed by job over three partitions, each record stamped with its line's time."""
    log = generate_logs(seed=5, entities=jobs, anomaly_fraction=0.004, first_job_id=1_000_000)
    partitions = [TopicPartition("in", p) for p in range(3)]
    records: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in partitions}
    for line, entity in zip(log.lines, log.entity_of_line, strict=True):
        tp = partitions[zlib.crc32(entity.encode()) % 3]
        records[tp].append(record(tp, len(records[tp]), record_time_ms(line) / 1000 - EPOCH, line))
    return records


class ReadToTheEnd:
    """A member of three partitions whose fetches have seen every record (``high watermarks``)."""

    def __init__(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        self.records = records
        self.positions = dict.fromkeys(records, 0)
        """Where each partition was polled to: the test moves it as it hands records over."""

    def assignment(self) -> set[TopicPartition]:
        return set(self.records)

    def highwater(self, partition: TopicPartition) -> int | None:
        return len(self.records[partition])

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.positions[partition]


def replay(
    model: Path, records: dict[TopicPartition, list[ConsumerRecord]], seed: int | None
) -> tuple[Any, ...]:
    """All records in polls of random sizes per partition (one poll if ``seed`` is None), the idle
    sweep after a random half of them; returns the alerts' kinds and ids and each entity's state."""
    rng = np.random.default_rng(seed)
    sink = AlertSink()
    consumer = ReadToTheEnd(records)
    service, table = every_event_alerts(model, consumer, sink, ttl_seconds=120.0, capacity=5_000)
    read = consumer.positions  # handing records over moves the consumer's position
    while any(read[tp] < len(records[tp]) for tp in records):
        polled = {}
        for tp, partition_records in records.items():
            size = len(partition_records) if seed is None else int(rng.integers(0, 400))
            if size and read[tp] < len(partition_records):
                polled[tp] = partition_records[read[tp] : read[tp] + size]
                read[tp] += len(polled[tp])
        service.handle_records(polled)
        if rng.random() < 0.5:
            service.expire_idle_entities()
    service.expire_idle_entities()
    states = {entity: table.snapshot(entity) for entity in table._slot_of}
    return sorted((alert["kind"], alert["alert_id"]) for alert in sink.alerts), states


def test_random_poll_cuts_and_sweep_times_end_the_same_sessions_with_the_same_ids(
    synthetic_model: Path,
) -> None:
    """800 jobs on 3 partitions over 14 minutes, TTL 2 minutes: 293 sessions end, alike every time."""
    records = generated_partitions(800)
    one_poll_ids, one_poll_states = replay(synthetic_model, records, seed=None)
    assert len(one_poll_ids) > 1000
    assert sum(kind == "session_end" for kind, _ in one_poll_ids) == 293
    for seed in (1, 2):
        ids, states = replay(synthetic_model, records, seed)
        assert ids == one_poll_ids
        assert sorted(states) == sorted(one_poll_states)
        for entity, state in states.items():
            assert state.events_applied == one_poll_states[entity].events_applied
            np.testing.assert_allclose(state.h, one_poll_states[entity].h, atol=1e-5)


@pytest.mark.parametrize(("lateness", "alike"), [(0.0, False), (30.0, True)])
def test_allowed_lateness_keeps_the_sweep_from_ending_a_session_a_late_record_continues(
    synthetic_model: Path, lateness: float, alike: bool
) -> None:
    """X at T, W at T+70, then X's late record at T+50 (TTL 60): X's session goes on when read in one
    poll; swept after W, it ends, unless the sweep allows 30 s of lateness."""
    records = streams()
    x_lines = [r.value.decode() for r in records[P0] if r.offset in (0, 1)]
    w_line = records[P0][2].value.decode()
    stream = [
        record(P0, 0, 1000.0, x_lines[0]),
        record(P0, 1, 1070.0, w_line),
        record(P0, 2, 1050.0, x_lines[1]),
    ]

    def final_counts(polls: list[dict[TopicPartition, list[ConsumerRecord]]]) -> dict[str, int]:
        service, table, _ = build_in_process_service(
            synthetic_model,
            consumer=TwoPartitionConsumer(),
            sink=AlertSink(),
            offsets={},
            ttl_seconds=60.0,
            allowed_lateness_seconds=lateness,
        )
        for polled in polls:
            service.handle_records(polled)
            service.expire_idle_entities()
        return {entity: table.snapshot(entity).events_applied for entity in table._slot_of}

    together = final_counts([{P0: stream}])
    cut = final_counts([{P0: stream[:2]}, {P0: stream[2:]}])
    assert (cut == together) is alike


class OnePollConsumer(FetchedToTheEnd):
    """Hands over ``polled`` in one poll, then nothing; its position is the end of that poll."""

    def __init__(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        end = polled[P1][-1].offset + 1
        super().__init__(partition_1_end=end, partition_1_position=end)
        self._polls = [polled]

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[ConsumerRecord]]:
        return self._polls.pop() if self._polls else {}


class FortySecondsPerLook:
    """A clock that moves 40 s (more than the TTL) each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 40.0
        return self.now


def test_a_sweep_between_the_batches_of_one_poll_does_not_end_a_session_the_next_batch_continues(
    synthetic_model: Path,
) -> None:
    """B at 1000 s, then one poll: 64 records of A (one batch), then B at 1010 s.  The sweep after the
    first batch sees the consumer's position at the poll's end; trusting it would end B mid-poll."""
    records = streams()
    a_line, (b_first, b_second) = records[P0][0].value.decode(), [r.value.decode() for r in records[P1]]
    fillers = [record(P1, offset, 1000.0, a_line) for offset in range(1, 65)]
    consumer = OnePollConsumer({P1: [*fillers, record(P1, 65, 1010.0, b_second)]})
    service, table = every_event_alerts(
        synthetic_model, consumer, AlertSink(), idle_time=FortySecondsPerLook()
    )
    service.handle_records({P1: [record(P1, 0, 1000.0, b_first)]})
    entity_b = next(iter(table._slot_of))
    service.run_once()
    assert table.expired_total == 0
    assert table.snapshot(entity_b).events_applied == 2


class ReadToItsEnd(TwoPartitionConsumer):
    """Partition 0 read to its end, whatever was polled last; partition 1 never written to."""

    def __init__(self) -> None:
        self.end = {P0: 0, P1: 0}

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.end[partition]

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.end[partition]


def test_a_record_stamped_far_ahead_of_the_wall_ends_no_other_session(synthetic_model: Path) -> None:
    """A timestamp in microseconds, under an hour's TTL, must not end sessions idle for seconds, nor later.

    Stream time stops at this host's clock: were it an hour ahead, every entity of the partition
    would look idle past the TTL at once, and with stream time running on with the wall, each
    later session after a second of quiet.
    """
    lines = [r.value.decode() for r in streams()[P0]]
    ticks = ManualClock()
    consumer = ReadToItsEnd()
    service, table, _ = build_in_process_service(
        synthetic_model,
        consumer=consumer,
        sink=AlertSink(),
        offsets={},
        ttl_seconds=3600.0,
        idle_time=ticks,
    )
    now = time.time()

    def handle(offset: int, seconds: float, line: str) -> None:
        service.handle_records({P0: [record(P0, offset, seconds - EPOCH, line)]})
        consumer.end[P0] = offset + 1
        ticks.now += 1.0
        service.expire_idle_entities()

    handle(0, now - 10.0, lines[0])  # job A
    handle(1, now - 5.0, lines[2])  # job C
    handle(2, now * 1000.0, lines[1])  # job A again, stamped in microseconds
    assert len(table) == 2 and table.expired_total == 0
    handle(3, time.time(), lines[3])  # job A once more, honestly stamped
    ticks.now += 2.0
    service.expire_idle_entities()
    assert len(table) == 2 and table.expired_total == 0


def on_a_moving_wall(
    model: Path, consumer: Any, sink: AlertSink
) -> tuple[Any, EntityStateTable, ManualClock]:
    """A service whose wall clock and idle clock are one clock the test moves: stream time, which
    never passes the wall, can then run on as far as the test says."""
    ticks = ManualClock(start=1_800_000_000.0)
    service, table = every_event_alerts(model, consumer, sink, idle_time=ticks, wall_time=ticks)
    return service, table, ticks


def test_a_quiet_partition_of_records_without_timestamps_still_ends_its_sessions(
    synthetic_model: Path,
) -> None:
    """Records with no timestamp (-1; legacy clients) gave their partition no stream time, so its
    sessions never ended: the partition's time now starts at this host's clock and runs on with it."""
    unstamped = [entry._replace(timestamp=-1) for entry in streams()[P1]]
    service, table, ticks = on_a_moving_wall(synthetic_model, FetchedToTheEnd(partition_1_end=2), AlertSink())
    service.handle_records({P1: unstamped})
    service.expire_idle_entities()
    assert len(table) == 1 and table.expired_total == 0
    ticks.now += 40.0
    service.expire_idle_entities()
    assert len(table) == 0 and table.expired_total == 1


def test_records_stamped_zero_do_not_end_a_live_session_every_second(synthetic_model: Path) -> None:
    """A producer stamping 0 (or seconds as milliseconds): its partition, read to its end, gained the
    wall's time while its records stayed in 1970, so every live session ended at each sweep once the
    TTL had passed, each under one alert id.  Such stamps are taken as none."""
    lines = streams()[P1]
    consumer, sink = FetchedToTheEnd(partition_1_end=0, partition_1_position=0), AlertSink()
    service, table, ticks = on_a_moving_wall(synthetic_model, consumer, sink)
    for second in range(4 * int(TTL_SECONDS)):
        if second % 2 == 0:  # a record every other second, the sweep every second
            offset = consumer.positions[P1]
            consumer.highwaters[P1] = consumer.positions[P1] = offset + 1
            service.handle_records({P1: [lines[offset % 2]._replace(offset=offset, timestamp=0)]})
        service.expire_idle_entities()
        ticks.now += 1.0
    assert len(table) == 1 and table.expired_total == 0, "the session went on: a record every 2 s"
    assert not [alert for alert in sink.alerts if alert["kind"] == "session_end"]
    assert {alert["event_time"] for alert in sink.alerts} == {None}, "no 1970 event time in an alert"
