"""What the daemon writes for scored events: which events alert, how each record is keyed and named.

The end-to-end tests check the same through a broker against the offline oracle; these pin the
emitter's own rules with a sink that records what it was given.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from alert_contract import ALERT_FIELDS, SESSION_END_FIELDS
from model_metadata import hdfs_metadata

from logwarden.daemon.alerts import alert_id, session_end_alert_id
from logwarden.daemon.decode import DecodedEvent
from logwarden.daemon.emitter import Emitter
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.processor import EndedSessions
from logwarden.errors import DecodeError
from logwarden.model.contract import END_ID, FIRST_EVENT_ID, UNKNOWN_ID
from logwarden.model.count_gate import CountGate

THRESHOLD = 5.0
CLASSES = FIRST_EVENT_ID + 3


class RecordingSink:
    """An OutputSink that keeps what it is given."""

    def __init__(self, scores_topic: str | None = None) -> None:
        self.scores_topic = scores_topic
        self.alerts: list[tuple[str, dict[str, Any]]] = []
        self.scores: list[tuple[str, dict[str, Any]]] = []
        self.dead_letters: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def send_alert(self, entity: str, value: bytes) -> None:
        self.alerts.append((entity, json.loads(value)))

    def send_score(self, entity: str, value: bytes) -> None:
        self.scores.append((entity, json.loads(value)))

    def send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self.dead_letters.append((key, value, headers))


def emitter_for(sink: RecordingSink) -> Emitter:
    """An Emitter into ``sink``: threshold 5.0, the HDFS model's metadata, two expected events an alert."""
    return Emitter(sink, AlertPolicy(THRESHOLD), hdfs_metadata(), THRESHOLD, top_k=2)


def record(offset: int, headers: list[tuple[str, bytes | None]] | None = None) -> Any:
    """A consumed record at logs/1 ``offset`` with ``headers``: the coordinates alert ids are made of."""
    return SimpleNamespace(
        topic="logs", partition=1, offset=offset, key=b"k", value=b"line", headers=headers or []
    )


def test_emitter_event_alerts_only_for_surprising_or_unknown_events_keyed_by_entity() -> None:
    """Above the threshold or UNKNOWN alerts, the rest does not; ids come from the record's coordinates."""
    sink = RecordingSink()
    entities = ["blk_1", "blk_2", "blk_3"]
    event_ids = np.array([FIRST_EVENT_ID, FIRST_EVENT_ID + 1, UNKNOWN_ID], np.int64)
    scores = np.array([THRESHOLD + 1, THRESHOLD - 1, 0.0], np.float32)
    log_probs = np.log(np.full((3, CLASSES), 1 / CLASSES, np.float32))
    events = [
        DecodedEvent(e, int(i), f"text {e}", 1_700_000_000_000)
        for e, i in zip(entities, event_ids, strict=True)
    ]

    sent = emitter_for(sink).event_alerts(
        entities, event_ids, scores, log_probs, [record(10), record(11), record(12)], events
    )

    assert sent == 2
    assert [entity for entity, _ in sink.alerts] == ["blk_1", "blk_3"]
    first, unknown = (alert for _, alert in sink.alerts)
    assert first["alert_id"] == alert_id("logs", 1, 10)
    assert first["event"] == "text blk_1" and first["score"] == THRESHOLD + 1
    assert first["source"] == {"topic": "logs", "partition": 1, "offset": 10}
    assert unknown["kind"] == "unknown_template"
    assert not any("session_events" in alert for _, alert in sink.alerts), "events alerts hold no count"


def ended_sessions(
    entities: list[str],
    end_scores: list[float],
    last_seen: list[float],
    *,
    max_surprise: list[float] | None = None,
    profiles: list[int] | None = None,
    unknown_events: list[int] | None = None,
) -> EndedSessions:
    """Ended sessions as the processor hands them over: END scores, and what the count gate reads."""
    count = len(entities)
    return EndedSessions(
        entities=entities,
        scores=np.array(end_scores, np.float32),
        log_probs=np.log(np.full((count, CLASSES), 1 / CLASSES, np.float32)),
        events_applied=np.full(count, 3, np.int64),
        last_seen=np.array(last_seen, np.float64),
        count_profile=np.array(profiles or [0] * count, np.uint64),
        max_surprise=np.array(max_surprise or [0.0] * count, np.float32),
        unknown_events=np.array(unknown_events or [0] * count, np.int64),
    )


def test_emitter_session_end_alerts_are_named_by_entity_and_last_event_time() -> None:
    """Only flagged ends alert; the id comes from the entity and its last event's time, with no source,
    and the alert says how many events the session held."""
    sink = RecordingSink()

    sent = emitter_for(sink).session_end_alerts(
        ended_sessions(["blk_1", "blk_2"], [THRESHOLD + 2, 1.0], [1_700_000_000.25, 1.0])
    )

    assert sent == 1
    ((entity, alert),) = sink.alerts
    assert entity == "blk_1"
    assert alert["alert_id"] == session_end_alert_id("blk_1", 1_700_000_000_250)
    assert alert["kind"] == "session_end" and alert["source"] is None
    assert alert["template"] == hdfs_metadata().template_of(END_ID)
    assert alert["session_events"] == 3
    assert set(alert) == ALERT_FIELDS | SESSION_END_FIELDS


GATE_THRESHOLD = THRESHOLD - 2


def test_emitter_count_gate_alerts_once_on_a_quiet_session_with_unseen_counts() -> None:
    """Of five ended sessions only the one with unseen counts, a largest surprise between the gate's
    and the model's threshold and a quiet END alerts, as ``unseen_counts`` with the gate's threshold
    and the session's score; familiar counts, a score below the gate, or one that already alerted
    when its event came (above the model's threshold, or an unknown event) do not."""
    sink = RecordingSink()
    gate = CountGate(GATE_THRESHOLD, (11,))
    emitter = Emitter(sink, AlertPolicy(THRESHOLD, gate), hdfs_metadata(), THRESHOLD, top_k=2)
    ended = ended_sessions(
        ["unseen", "familiar", "below_gate", "already_alerted", "held_an_unknown_event"],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        [10.0, 11.0, 12.0, 13.0, 14.0],
        max_surprise=[
            GATE_THRESHOLD + 1,
            GATE_THRESHOLD + 1,
            GATE_THRESHOLD - 1,
            THRESHOLD + 1,
            GATE_THRESHOLD + 1,
        ],
        profiles=[99, 11, 99, 99, 99],
        unknown_events=[0, 0, 0, 0, 1],
    )

    assert emitter.session_end_alerts(ended) == 1
    ((entity, alert),) = sink.alerts
    assert entity == "unseen"
    assert alert["kind"] == "unseen_counts"
    assert alert["alert_id"] == session_end_alert_id("unseen", 10_000)
    assert alert["score"] == GATE_THRESHOLD + 1 and alert["threshold"] == GATE_THRESHOLD
    assert alert["session_events"] == 3


def test_emitter_session_with_untracked_counts_is_left_to_the_threshold() -> None:
    """A session restored from a store without counts (NaN largest surprise) never alerts by the gate."""
    sink = RecordingSink()
    emitter = Emitter(
        sink, AlertPolicy(THRESHOLD, CountGate(GATE_THRESHOLD, (11,))), hdfs_metadata(), THRESHOLD, top_k=2
    )
    ended = ended_sessions(["restored"], [1.0], [10.0], max_surprise=[float("nan")], profiles=[99])
    assert emitter.session_end_alerts(ended) == 0


def test_emitter_event_scores_only_with_a_scores_topic() -> None:
    """Without kafka.scores_topic nothing is written; with it, every event's score and coordinates."""
    entities, event_ids, scores = ["blk_1"], np.array([FIRST_EVENT_ID], np.int64), np.array([1.25])
    without, with_topic = RecordingSink(), RecordingSink(scores_topic="scores")

    emitter_for(without).event_scores(entities, event_ids, scores, [record(7)])
    emitter_for(with_topic).event_scores(entities, event_ids, scores, [record(7)])

    assert without.scores == []
    assert with_topic.scores == [
        (
            "blk_1",
            {
                "entity": "blk_1",
                "score": 1.25,
                "event": "T0",
                "source": {"topic": "logs", "partition": 1, "offset": 7},
            },
        )
    ]


def test_emitter_dead_letter_keeps_the_original_record_and_adds_why() -> None:
    """A null header value (legal in Kafka, refused by kafka-python's send) is forwarded as empty."""
    sink = RecordingSink()

    emitter_for(sink).dead_letter(
        record(3, headers=[("trace", b"t1"), ("empty", None)]), DecodeError("invalid_json", "line 1")
    )

    ((key, value, headers),) = sink.dead_letters
    assert (key, value) == (b"k", b"line")
    assert headers[:2] == [("trace", b"t1"), ("empty", b"")]
    assert ("logwarden.reason", b"invalid_json") in headers
    assert ("logwarden.source.offset", b"3") in headers
    assert not [name for name, _ in headers if name == "logwarden.source.timestamp"], "the record has none"


@pytest.mark.parametrize(
    ("timestamp", "header"), [(1_700_000_000_123, b"1700000000123"), (-1, None), (None, None)]
)
def test_emitter_dead_letter_carries_the_original_timestamp_when_the_record_had_one(
    timestamp: int | None, header: bytes | None
) -> None:
    """The dead letter is stamped when sent; a record copied back needs its own time for idle time."""
    sink = RecordingSink()
    bad = record(3)
    bad.timestamp = timestamp
    emitter_for(sink).dead_letter(bad, DecodeError("invalid_json", "line 1"))
    ((_, _, headers),) = sink.dead_letters
    assert dict(headers).get("logwarden.source.timestamp") == header
