"""What the daemon writes for scored events and unreadable input: alerts, scores and dead letters.

The service decides when to write (after each batch, at a session's end, for a skipped record
batch); the emitter decides which events alert (through the policy), what each record holds
(``alerts.py``) and hands it to the output sink, keyed by entity.  Each method returns how many
alerts it sent, for the service's counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from logwarden.daemon.alerts import (
    alert_id,
    build_alert,
    dead_letter_headers,
    encode_alert,
    session_end_alert_id,
)
from logwarden.daemon.decode import DecodedEvent
from logwarden.daemon.kafka_client.clients import OutputSink
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatch
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.processor import EndedSessions
from logwarden.errors import DecodeError
from logwarden.model.contract import END_ID, ModelMetadata

SOURCE_TIMESTAMP_HEADER = "logwarden.source.timestamp"


class Emitter:
    """Alerts, per-event scores and dead letters, written through one ``OutputSink``."""

    def __init__(
        self, sink: OutputSink, policy: AlertPolicy, metadata: ModelMetadata, threshold: float, top_k: int
    ) -> None:
        self._sink = sink
        self._policy = policy
        self._metadata = metadata
        self._threshold = threshold
        self._top_k = top_k

    def event_alerts(
        self,
        entities: Sequence[str],
        event_ids: np.ndarray,
        scores: np.ndarray,
        log_probs: np.ndarray,
        records: Sequence[Any],
        events: Sequence[DecodedEvent],
    ) -> int:
        """Alert on each event the policy flags, its id derived from the record's coordinates."""
        flagged = np.flatnonzero(self._policy.decide(scores, event_ids))
        detected_ms = int(time.time() * 1000)
        for index in flagged.tolist():
            record = records[index]
            alert = build_alert(
                alert_id=alert_id(record.topic, record.partition, record.offset),
                entity=entities[index],
                score=float(scores[index]),
                threshold=self._threshold,
                event_id=int(event_ids[index]),
                event_text=events[index].text,
                log_probs=log_probs[index],
                metadata=self._metadata,
                top_k=self._top_k,
                source=(record.topic, record.partition, record.offset),
                event_time_ms=events[index].event_time_ms,
                detected_ms=detected_ms,
            )
            self._sink.send_alert(entities[index], encode_alert(alert))
        return len(flagged)

    def event_scores(
        self, entities: Sequence[str], event_ids: np.ndarray, scores: np.ndarray, records: Sequence[Any]
    ) -> None:
        """Every event's score on the scores topic, when one is configured."""
        if self._sink.scores_topic is None:
            return
        for position, record in enumerate(records):
            payload = {
                "entity": entities[position],
                "score": round(float(scores[position]), 6),
                "event": self._metadata.token_name(int(event_ids[position])),
                "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            }
            self._sink.send_score(entities[position], encode_alert(payload))

    def session_end_alerts(self, ended: EndedSessions) -> int:
        """Alert on the ended sessions the policy flags, their ids derived from entity and last event.

        A session flagged by its END token alerts as ``session_end`` (score: END's surprise); one
        flagged by the count gate as ``unseen_counts`` (score: the session's largest surprise,
        threshold: the gate's).  Either way one alert per session, under the same id.
        """
        session_scores = ended.session_scores
        by_end, by_counts = self._policy.decide_session_ends(
            ended.scores, session_scores, ended.count_profile, ended.unknown_events
        )
        gate = self._policy.count_gate
        gate_threshold = self._threshold if gate is None else gate.threshold  # by_counts needs a gate
        detected_ms = int(time.time() * 1000)
        flagged = np.flatnonzero(by_end | by_counts)
        for index in flagged.tolist():
            entity = ended.entities[index]
            last_event_ms = round(float(ended.last_seen[index]) * 1000)
            counts = bool(by_counts[index])
            alert = build_alert(
                alert_id=session_end_alert_id(entity, last_event_ms),
                entity=entity,
                score=float(session_scores[index] if counts else ended.scores[index]),
                threshold=gate_threshold if counts else self._threshold,
                event_id=END_ID,
                event_text="",
                log_probs=ended.log_probs[index],
                metadata=self._metadata,
                top_k=self._top_k,
                source=None,
                event_time_ms=last_event_ms,
                detected_ms=detected_ms,
                kind="unseen_counts" if counts else None,
                session_events=int(ended.events_applied[index]),
            )
            self._sink.send_alert(entity, encode_alert(alert))
        return len(flagged)

    def dead_letter(self, record: Any, error: DecodeError) -> None:
        """The original key, value and headers, followed by the ``logwarden.*`` headers saying why."""
        headers = [
            *forwarded_headers(record.headers),
            *dead_letter_headers(error.reason, error.detail, record.topic, record.partition, record.offset),
        ]
        timestamp = getattr(record, "timestamp", None)
        if isinstance(timestamp, int) and timestamp >= 0:
            # The dead letter is stamped when it is sent; the original time (which the daemon's
            # stream time and ``event_time`` read) would be lost to a record copied back.
            headers.append((SOURCE_TIMESTAMP_HEADER, str(timestamp).encode("ascii")))
        self._sink.send_dead_letter(record.key, record.value, headers)

    def corrupt_batch(self, corrupt: CorruptBatch, detail: str) -> None:
        """A skipped record batch, whole and unkeyed, with its coordinates and why it was unreadable."""
        headers = [
            *dead_letter_headers(
                "corrupt_batch", detail, corrupt.topic, corrupt.partition, corrupt.base_offset
            ),
            *corrupt.headers(),
        ]
        self._sink.send_dead_letter(None, corrupt.raw, headers)


def forwarded_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
    """A record's headers as the producer takes them: a null header value (legal in Kafka, refused
    by kafka-python's ``send``) becomes empty."""
    return [(key, b"" if value is None else bytes(value)) for key, value in headers or ()]
