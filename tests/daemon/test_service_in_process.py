"""DaemonService in process: at a rebalance partitions this instance lost are released and kept ones
resume locally; bad input is logged once per save, not once per batch; a refused group commit is
made again while the input is quiet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from in_process_service import SETTINGS, QuietSink, build_in_process_service
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError, RebalanceInProgressError
from manual_clock import ManualClock
from structlog.testing import capture_logs

from logwarden.daemon.kafka_client.group_commit import FIRST_RETRY_SECONDS, GroupCommitter
from logwarden.errors import DeliveryError


class AssignedConsumer:
    """Enough of KafkaConsumer for a rebalance: the current assignment, and the seeks made."""

    def __init__(self, owned: set[TopicPartition]) -> None:
        self.owned = owned
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def highwater(self, partition: TopicPartition) -> int | None:
        return None  # no fetch response seen

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset


def service_with_entities(
    model: Path,
    consumer: AssignedConsumer,
    offsets: dict[tuple[str, int], int],
    entities: dict[str, tuple[str, int]],
) -> tuple[Any, Any, Any]:
    """An in-process service with saved ``offsets`` whose table holds ``entities``, each last seen on
    the (topic, partition) given."""
    service, table, store = build_in_process_service(
        model, consumer=consumer, sink=QuietSink(), offsets=offsets
    )
    names = list(entities)
    partitions = np.array([entities[name][1] for name in names], np.int32)
    topics = np.array([table.topic_id_of(entities[name][0]) for name in names])
    slots = table.slots_for(names, 1.0, partitions, topics)
    table.write(slots, table.h[:, slots, :], table.c[:, slots, :], 1.0)
    return service, table, store


def test_service_partition_moved_away_entities_and_offset_released(synthetic_model: Path) -> None:
    """After a rebalance, entities of a partition now owned elsewhere and its saved offset are forgotten."""
    kept = TopicPartition("in", 0)
    consumer = AssignedConsumer({kept})
    service, table, store = build_in_process_service(
        synthetic_model, consumer=consumer, sink=QuietSink(), offsets={("in", 0): 5, ("in", 1): 7}
    )
    slots = table.slots_for(
        ["job_1", "job_2", "job_3"], 1.0, np.array([0, 1, 1], np.int32), table.topic_id_of("in")
    )
    table.write(slots, table.h[:, slots, :], table.c[:, slots, :], 1.0)

    service.handle_assigned([kept])
    service.checkpoint("rebalance")

    assert consumer.seeks == {kept: 5}, "a partition still owned resumes from the local checkpoint"
    assert "job_1" in table and "job_2" not in table and "job_3" not in table
    assert table.released_total == 2 and table.expired_total == 0, "released, not ended: no END scored"
    rows, offsets = store.load()
    assert offsets == {("in", 0): 5}
    assert [entity for chunk in rows for entity in chunk.entities] == ["job_1"]


def test_service_partition_moved_away_takes_only_its_topics_entities(synthetic_model: Path) -> None:
    """Two input topics with a partition 1 each: when logs/1 moves away and audit/1 stays, the
    entities whose last event came from logs/1 go, those of audit/1 stay; partition numbers alone
    would keep both (their sessions then spliced with a gap when logs/1 came back)."""
    owned = {TopicPartition("logs", 0), TopicPartition("audit", 1)}
    service, table, store = service_with_entities(
        synthetic_model,
        AssignedConsumer(owned),
        offsets={("logs", 0): 5, ("logs", 1): 7, ("audit", 1): 9},
        entities={"job_1": ("logs", 0), "job_2": ("logs", 1), "host_1": ("audit", 1)},
    )

    service.handle_assigned(sorted(owned))
    service.checkpoint("rebalance")

    assert "job_1" in table and "job_2" not in table and "host_1" in table
    assert table.released_total == 1
    rows, offsets = store.load()
    assert offsets == {("logs", 0): 5, ("audit", 1): 9}
    saved = {
        entity: topic for chunk in rows for entity, topic in zip(chunk.entities, chunk.topic, strict=True)
    }
    assert saved == {"job_1": "logs", "host_1": "audit"}


def test_service_saved_state_of_a_topic_taken_out_of_the_config_is_dropped_with_a_warning(
    synthetic_model: Path,
) -> None:
    """A topic removed from kafka.input_topics: its saved sessions go, and the log says why (a
    partition moving to another instance looks the same otherwise, but its sessions go on there)."""
    service, table, _ = service_with_entities(
        synthetic_model,
        AssignedConsumer({TopicPartition("in", 0)}),
        offsets={("in", 0): 5, ("in", 1): 6, ("old", 0): 7},
        entities={"job_1": ("in", 0), "job_2": ("in", 1), "job_3": ("old", 0)},
    )

    with capture_logs() as logs:
        service.handle_assigned([TopicPartition("in", 0)])

    assert "job_1" in table and "job_2" not in table and "job_3" not in table
    warned = [entry for entry in logs if entry["event"] == "topics_unsubscribed"]
    assert len(warned) == 1 and warned[0]["topics"] == ["old"] and warned[0]["log_level"] == "warning"


def test_service_same_partitions_reassigned_nothing_released(synthetic_model: Path) -> None:
    """A rebalance that hands back the same partitions keeps every entity and seeks to the local offsets."""
    owned = {TopicPartition("in", 0), TopicPartition("in", 1)}
    consumer = AssignedConsumer(owned)
    service, table, store = build_in_process_service(
        synthetic_model, consumer=consumer, sink=QuietSink(), offsets={("in", 0): 5, ("in", 1): 7}
    )
    table.slots_for(["job_1", "job_2"], 1.0, np.array([0, 1], np.int32))

    service.handle_assigned(sorted(owned))

    assert len(table) == 2 and table.released_total == 0
    assert consumer.seeks == {TopicPartition("in", 0): 5, TopicPartition("in", 1): 7}


class DeadLetterSink(QuietSink):
    """An OutputSink that keeps the dead letters it is given."""

    def __init__(self) -> None:
        self.dead_letters: list[tuple[bytes | None, bytes | None]] = []
        self.headers: list[list[tuple[str, bytes]]] = []

    def send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self.dead_letters.append((key, value))
        self.headers.append(headers)


def bad_record(
    offset: int, value: bytes, headers: list[tuple[str, bytes | None]] | None = None
) -> ConsumerRecord:
    """A keyless record at in/0 ``offset`` with ``value`` and ``headers``, for input the decoder rejects."""
    return ConsumerRecord(
        "in", 0, -1, offset, 1_700_000_000_000, 0, None, value, headers or [], None, -1, len(value), -1
    )


def test_service_dead_letter_keeps_the_original_headers_before_its_own(synthetic_model: Path) -> None:
    """A dead letter carries the record's own headers (a null value as empty), then why it was rejected."""
    partition = TopicPartition("in", 0)
    sink = DeadLetterSink()
    service, _, _ = build_in_process_service(
        synthetic_model, consumer=AssignedConsumer({partition}), sink=sink, offsets={}
    )
    original = [("trace-id", b"4bf92f35"), ("tombstone-marker", None)]
    service.handle_records({partition: [bad_record(7, b"no entity here", original)]})
    [headers] = sink.headers
    assert headers[:2] == [("trace-id", b"4bf92f35"), ("tombstone-marker", b"")]
    assert dict(headers[2:])["logwarden.reason"] == b"missing_entity"
    assert dict(headers[2:])["logwarden.source.offset"] == b"7"


def test_service_flood_of_bad_input_logs_one_bad_input_line_per_save(synthetic_model: Path) -> None:
    """Dead letters are counted per batch but logged once per checkpoint, with the totals by reason."""
    partition = TopicPartition("in", 0)
    sink = DeadLetterSink()
    service, _, _ = build_in_process_service(
        synthetic_model, consumer=AssignedConsumer({partition}), sink=sink, offsets={}
    )
    with capture_logs() as logged:
        for batch in range(20):
            offset = batch * 2
            service.handle_records(
                {partition: [bad_record(offset, b"no entity here"), bad_record(offset + 1, b"\xff\xfe")]}
            )
        bad_lines_before_save = [line for line in logged if line["event"] == "bad_input"]
        service.checkpoint("periodic", wait=True)
    assert len(sink.dead_letters) == 40
    assert bad_lines_before_save == []
    [bad_line] = [line for line in logged if line["event"] == "bad_input"]
    assert bad_line["dead_letters"] == {"missing_entity": 20, "invalid_utf8": 20}


class ClosingConsumer(AssignedConsumer):
    def __init__(self, owned: set[TopicPartition]) -> None:
        super().__init__(owned)
        self.closed = False

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed = True


class UnreachableBrokerSink(QuietSink):
    """A sink whose broker stopped answering: flush fails, and so does the producer's close (kafka-python's
    ``close`` flushes first and raises KafkaTimeoutError)."""

    def __init__(self) -> None:
        self.gave_up_at: float | None = None

    def give_up_at(self, deadline: float) -> None:
        self.gave_up_at = deadline

    def flush(self, timeout_seconds: float | None = None) -> None:
        raise DeliveryError("producer flush failed: KafkaTimeoutError: Timeout waiting for future")

    def close(self, timeout_seconds: float) -> None:
        raise KafkaTimeoutError("Timeout waiting for future")


def test_service_shutdown_after_a_failed_flush_closes_everything_and_raises_the_flush_error(
    synthetic_model: Path,
) -> None:
    """The producer's failing close used to replace the flush error and skip the rest: the state store
    stayed open (its lock held) and no shutdown line was written."""
    consumer = ClosingConsumer({TopicPartition("in", 0)})
    closed_store: list[bool] = []
    service, _, _ = build_in_process_service(
        synthetic_model,
        consumer=consumer,
        sink=UnreachableBrokerSink(),
        offsets={("in", 0): 5},
        on_close=lambda: closed_store.append(True),
    )
    with capture_logs() as logs, pytest.raises(DeliveryError, match="producer flush failed"):
        service.shutdown(checkpoint=True)
    assert consumer.closed and closed_store == [True]
    events = [entry["event"] for entry in logs]
    assert "shutdown" in events
    assert any(entry["event"] == "close_failed" and entry["step"] == "producer" for entry in logs)


def test_service_stop_request_starts_the_shutdown_budget_and_cuts_flushes_short(
    synthetic_model: Path,
) -> None:
    """The budget runs from the signal: a flush already waiting for the broker gives up by then."""
    sink = UnreachableBrokerSink()
    service, _, _ = build_in_process_service(
        synthetic_model, consumer=ClosingConsumer(set()), sink=sink, offsets={}
    )
    service.request_stop()
    assert service.should_exit
    assert sink.gave_up_at is not None and 0 < sink.gave_up_at - time.monotonic() <= 5.0
    time.sleep(0.3)
    with capture_logs() as logs:
        service.shutdown(checkpoint=False)
    [shutdown] = [entry for entry in logs if entry["event"] == "shutdown"]
    assert shutdown["seconds"] >= 0.3, "the shutdown line says how long the stop took since it was asked for"


class RefusingOnceConsumer(AssignedConsumer):
    """Owns in/0; the group refuses the first commit (it was rebalancing) and accepts the next ones."""

    def __init__(self) -> None:
        super().__init__({TopicPartition("in", 0)})
        self.refused = False
        self.commits: list[dict[TopicPartition, int]] = []

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int | None = None) -> None:
        if not self.refused:
            self.refused = True
            raise RebalanceInProgressError()
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})


def test_service_commits_refused_offsets_again_while_the_input_stays_quiet(synthetic_model: Path) -> None:
    """A caught-up save whose commit the group refused, then no input: the loop commits the offsets
    again after the retry wait, so lag tools and the partition's next owner see what was saved."""
    consumer, clock = RefusingOnceConsumer(), ManualClock()
    committer = GroupCommitter(consumer, monotonic=clock)  # type: ignore[arg-type]
    sink = DeadLetterSink()
    service, _, store = build_in_process_service(
        synthetic_model, consumer=consumer, sink=sink, offsets={}, committer=committer
    )
    service.handle_records({TopicPartition("in", 0): [bad_record(0, b"no entity"), bad_record(1, b"\xff")]})
    with capture_logs() as logged:
        service.checkpoint("caught_up", wait=True)
        assert store.load().offsets == {("in", 0): 2} and consumer.commits == []
        for _ in range(3):
            service.on_tick(input_idle=True)
        assert consumer.commits == [], "not before the retry wait"
        clock.now += FIRST_RETRY_SECONDS
        service.on_tick(input_idle=True)
        service.on_tick(input_idle=True)
    assert consumer.commits == [{TopicPartition("in", 0): 2}], "committed again, once"
    assert [line["event"] for line in logged if "group_commit" in line["event"]] == [
        "group_commit_refused",
        "group_commit_retried",
    ]


def test_service_revocation_commit_while_stopping_waits_only_what_is_left_of_the_stop_budget(
    synthetic_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``consumer.close()`` revokes every partition, and its group commit waited its full 5 s after the
    shutdown checkpoint's had given up at the deadline (an outage): while stopping it gets what is left."""
    from types import SimpleNamespace

    from logwarden.daemon import service as service_module
    from logwarden.daemon.kafka_client.group_commit import GROUP_COMMIT_TIMEOUT_SECONDS

    ticks = ManualClock(1000.0)
    monkeypatch.setattr(service_module, "time", SimpleNamespace(monotonic=ticks, time=time.time))

    class StoppingSink(QuietSink):
        def give_up_at(self, deadline: float) -> None:
            self.deadline = deadline

    service, _, _ = build_in_process_service(
        synthetic_model, consumer=AssignedConsumer(set()), sink=StoppingSink(), offsets={}
    )
    assert service.revocation_commit_seconds() == GROUP_COMMIT_TIMEOUT_SECONDS
    service.request_stop()
    budget = SETTINGS.shutdown_timeout_seconds
    ticks.now += budget - 1.5
    assert service.revocation_commit_seconds() == pytest.approx(min(1.5, GROUP_COMMIT_TIMEOUT_SECONDS))
    ticks.now += 10.0
    assert service.revocation_commit_seconds() == 0.1, "past the deadline: one short try"


def test_service_takes_no_periodic_checkpoint_between_a_revocation_and_the_next_assignment(
    synthetic_model: Path,
) -> None:
    """kafka-python still lists revoked partitions until the join completes: a checkpoint then would
    commit partitions already handed over (refused: a group_commit_refused warning at every rebalance)."""
    tp = TopicPartition("in", 0)
    service, table, _ = service_with_entities(
        synthetic_model, AssignedConsumer({tp}), offsets={("in", 0): 5}, entities={"job_1": ("in", 0)}
    )
    service.handle_revoked([tp])
    taken = service.counters.checkpoints
    table.slots_for(["job_2"], 2.0, np.array([0], np.int32))  # a change after the revocation
    service._cadence.mark_dirty()
    service.checkpoint("periodic", wait=True)
    service.checkpoint("caught_up", wait=True)
    assert service.counters.checkpoints == taken, "no checkpoint while the rebalance is under way"
    service.handle_assigned([tp])
    service.checkpoint("periodic", wait=True)
    assert service.counters.checkpoints == taken + 1


@pytest.mark.parametrize(
    ("group", "warned"), [(9, {"in/0": {"saved": 5, "group": 9, "records": 4}}), (3, None), (None, None)]
)
def test_service_resuming_behind_the_groups_offset_warns_how_many_records_it_reads_again(
    synthetic_model: Path, group: int | None, warned: dict[str, Any] | None
) -> None:
    """An instance restarted on an old state.dir resumes from its own checkpoint, behind what another
    instance processed meanwhile: those records are scored again, and the log says how many."""
    tp = TopicPartition("in", 0)
    consumer = AssignedConsumer({tp})
    service, _, _ = build_in_process_service(
        synthetic_model, consumer=consumer, sink=QuietSink(), offsets={("in", 0): 5}
    )
    with capture_logs() as logs:
        service.handle_assigned([tp], None if group is None else {tp: group})
    rewound = [entry["partitions"] for entry in logs if entry["event"] == "partitions_rewound"]
    assert rewound == ([] if warned is None else [warned])
    assert consumer.seeks == {tp: 5}, "the local checkpoint still decides where reading resumes"
