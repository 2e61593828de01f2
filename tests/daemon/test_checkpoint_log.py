"""What is logged when a checkpoint completes: its totals as taken, and warnings only when due."""

from __future__ import annotations

import json

import numpy as np
from model_metadata import hdfs_metadata
from structlog.testing import capture_logs

from logwarden.daemon.checkpoint import CheckpointResult
from logwarden.daemon.checkpoint_log import CheckpointLog
from logwarden.daemon.clock import StreamClock
from logwarden.daemon.config import EntityConfig, InputConfig, JsonInputConfig
from logwarden.daemon.decode import MessageDecoder
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.systemd import SystemdNotifier

TOTALS = {"events": 0, "alerts": 0, "dead_letters": 0, "session_ends": 0, "checkpoints": 0}
RESULT = CheckpointResult(upserts=3, deletes=1, partitions=2, seconds=0.01234567)


class RecordingNotifier(SystemdNotifier):
    """The real notifier without a socket, keeping the status lines it was given."""

    def __init__(self) -> None:
        super().__init__(address="")
        self.statuses: list[str] = []

    def status(self, text: str) -> None:
        self.statuses.append(text)


def make_log(capacity: int = 4) -> tuple[CheckpointLog, EntityStateTable, StreamClock, RecordingNotifier]:
    """A CheckpointLog over an empty table of ``capacity``, a clock at wall time 1,000 s and a notifier."""
    table = EntityStateTable(1, 2, capacity, np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32))
    clock = StreamClock(wall_time=lambda: 1_000.0)
    notifier = RecordingNotifier()
    return CheckpointLog(table, clock, notifier, "dlq", TOTALS), table, clock, notifier


def test_checkpoint_line_reports_the_totals_taken_at_its_start_not_at_its_end() -> None:
    """A save finishing after the loop moved on reports the counts it covers, with its reason."""
    checkpoint_log, table, _, notifier = make_log()
    table.slots_for(["a", "b"], now=1.0, partitions=0)
    checkpoint_log.started("caught_up", {**TOTALS, "events": 10, "alerts": 1})
    with capture_logs() as logs:
        checkpoint_log.finished(RESULT, checkpoints=7)
    assert [entry["event"] for entry in logs] == ["checkpoint"]
    line = logs[0]
    assert (line["reason"], line["events"], line["alerts"], line["checkpoints"]) == ("caught_up", 10, 1, 7)
    assert (line["upserts"], line["deletes"], line["partitions"], line["entities"]) == (3, 1, 2, 2)
    assert line["seconds"] == 0.0123
    assert notifier.statuses and "10 events, 1 alerts" in notifier.statuses[-1]
    assert "(caught_up)" in notifier.statuses[-1]


def test_bad_input_is_one_warning_per_checkpoint_summed_by_reason_then_cleared() -> None:
    """Dead letters counted between saves give one bad_input line with their sums, and none next time."""
    checkpoint_log, *_ = make_log()
    checkpoint_log.bad_input({"invalid_json": 2, "oversize": 1})
    checkpoint_log.bad_input({"invalid_json": 3})
    checkpoint_log.bad_input({"corrupt_batch": 1})
    with capture_logs() as logs:
        checkpoint_log.finished(RESULT, checkpoints=1)
        checkpoint_log.finished(RESULT, checkpoints=2)
    bad = [entry for entry in logs if entry["event"] == "bad_input"]
    assert len(bad) == 1
    assert bad[0]["dead_letters"] == {"invalid_json": 5, "oversize": 1, "corrupt_batch": 1}
    assert bad[0]["dead_letter_topic"] == "dlq"
    assert bad[0]["log_level"] == "warning"


def test_evictions_clamped_timestamps_and_refused_commits_are_warned_as_new_counts_only() -> None:
    """Each warning carries what happened since the last save, and is absent when nothing did."""
    checkpoint_log, table, clock, _ = make_log(capacity=2)
    table.slots_for(["a", "b"], now=1.0, partitions=0)
    table.slots_for(["c"], now=2.0, partitions=0)  # a full table: the least recently seen goes
    clock.clamped += 1  # the loop met a record stamped far past the wall clock
    clock.stamped_in_the_past += 2  # and two batches with records stamped 0
    refused = CheckpointResult(upserts=0, deletes=0, partitions=1, seconds=0.0, group_commit_error="boom")
    with capture_logs() as logs:
        checkpoint_log.finished(refused, checkpoints=1)
    events = {entry["event"]: entry for entry in logs}
    assert events["entities_evicted"]["evicted"] == table.evicted_total >= 1
    assert events["entities_evicted"]["max_entities"] == 2
    assert events["future_timestamps"]["batches"] == 1
    assert events["past_timestamps"]["batches"] == 2
    assert events["group_commit_refused"]["error"] == "boom"
    with capture_logs() as again:
        checkpoint_log.finished(RESULT, checkpoints=2)
    assert [entry["event"] for entry in again] == ["checkpoint"]


def test_unreadable_event_times_are_one_warning_per_checkpoint_with_the_latest_reason() -> None:
    """Events scored without the time of input.json.timestamp_field are counted by the decoder and
    warned with the next save (one line, however many), naming why the latest one had none."""
    table = EntityStateTable(1, 2, 4, np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32))
    config = InputConfig(
        format="json", entity=EntityConfig(field="host"), json=JsonInputConfig(timestamp_field="ts")
    )
    decoder = MessageDecoder.build(config, hdfs_metadata("logs"))
    clock = StreamClock(wall_time=lambda: 1_000.0)
    checkpoint_log = CheckpointLog(table, clock, RecordingNotifier(), "dlq", TOTALS, decoder)
    message = "PacketResponder 1 for block blk_1 terminating"
    for ts in ("yesterday", None, "2023-11-14T22:13:20Z"):
        decoder.decode_one(json.dumps({"host": "a", "message": message, "ts": ts}).encode(), None, 5)
    with capture_logs() as logs:
        checkpoint_log.finished(RESULT, checkpoints=1)
        checkpoint_log.finished(RESULT, checkpoints=2)
    warned = [entry for entry in logs if entry["event"] == "unreadable_event_times"]
    assert len(warned) == 1 and warned[0]["events"] == 2
    assert "'ts' is missing" in warned[0]["latest"]
