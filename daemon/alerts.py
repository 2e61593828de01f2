"""What the daemon writes for an anomaly (an alert) and for a record it cannot read (a dead letter).

Alert ids never come from the wall clock or a counter: an event's alert id is derived from where
its record sits in Kafka (topic/partition/offset), a session end's from the entity and its last
event's time.  After a crash the daemon re-reads from its last checkpoint and produces
the same alerts with the same ids, so consumers de-duplicate on ``alert_id``.  Pure: no Kafka
import.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from logwarden.daemon.poll_batches import PLAUSIBLE_TIMESTAMP_MS
from logwarden.model.contract import END_ID, UNKNOWN_ID, ModelMetadata

AlertKind = Literal["event", "session_end", "unknown_template", "unseen_counts"]

_ALERT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://logwarden.invalid/alert")
_MAX_DETAIL_BYTES = 1024

MAX_ALERT_EVENT_BYTES = 16 * 1024
"""Most UTF-8 bytes of the event text an alert carries; a longer line is cut to its start.

An input line may be as long as ``input.max_message_bytes`` (1 MiB by default), and the alert's
JSON escapes every non-ASCII or control character to 6 bytes (``\\u00e9``), 12 for one outside the
BMP: whole, such a line makes an alert several MB long, which Kafka's default 1 MB message limit
refuses, and the daemon stops on the failed delivery, again after every restart.  Cut here, the
event takes at most 96 KiB of the alert however it is escaped, leaving room for the rest, and
still holds far more than an analyst reads of one log line.
"""

MAX_ALERT_TEMPLATE_CHARS = 1024
"""Most characters of a template an alert carries, its own and each expected event's (then "...").

Templates are mined from training lines, and a line of megabytes gives a template as long; quoted
whole in every alert whose top events include it, it would make the alert too large to deliver, and
the daemon would stop on the failed delivery after every restart.  With at most ``TOP_K_MAXIMUM + 1``
templates of at most 1,024 characters (12 bytes each as the JSON escape of a character outside the
BMP at worst) and the event's 96 KiB, an alert stays under 400 KiB, within Kafka's 1 MB default."""

TOP_K_MAXIMUM = 20
"""Most expected events an alert lists (``model.top_k``): an analyst reads the first few, and each
costs up to 12 KiB of the alert."""

MAX_ALERT_RECORD_BYTES = 512 * 1024
"""More than the largest alert record can take, key included (tests/daemon/test_alerts.py builds the
worst one: about 330 KiB).  ``kafka.producer.max_request_size`` may not be set below it: kafka-python
refuses a larger record at ``send``, the daemon stops, and meets the same event after each restart."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate left in a ``str``: JSON input can spell one alone (``"\\ud800"``); a pair
is decoded to one character, so any left is lone.  ``json.dumps`` writes it as ``\\ud800``, which
strict parsers refuse (jq 1.6 rejects the whole alert; Python can parse it but not encode it to
UTF-8 again), so an attacker who controls a message could make its alert unreadable."""

REASON_HEADER = "logwarden.reason"
DETAIL_HEADER = "logwarden.detail"
TOPIC_HEADER = "logwarden.source.topic"
PARTITION_HEADER = "logwarden.source.partition"
OFFSET_HEADER = "logwarden.source.offset"


def alert_id(topic: str, partition: int, offset: int) -> str:
    """Stable id of the alert raised by the record at ``topic/partition/offset``."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{topic}/{partition}/{offset}"))


def session_end_alert_id(entity: str, last_event_ms: int) -> str:
    """Stable id of the end-of-session alert of ``entity``: the entity and its last event's time.

    A session's last event keeps its timestamp, so a replay ends the same session with the same
    id; so does another instance that took the partition over meanwhile, although it started the
    entity fresh and applied fewer of its events (the event count was part of the id before, and
    two owners then sent one session end under two ids).  A later session of the same entity ends
    at a later time, so it gets another id.
    """
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{entity}/{last_event_ms}:end"))


def alert_kind(event_id: int) -> AlertKind:
    """What triggered an alert: a session end, an event of an unknown template, or a surprising event."""
    if event_id == END_ID:
        return "session_end"
    if event_id == UNKNOWN_ID:
        return "unknown_template"
    return "event"


def expected_events(log_probs: np.ndarray, metadata: ModelMetadata, top_k: int) -> list[dict[str, Any]]:
    """The ``top_k`` most likely next events of one ``log_probs`` row [V], most likely first."""
    row = np.asarray(log_probs, dtype=np.float64).reshape(-1)
    k = min(top_k, row.shape[0])
    if k <= 0:
        return []
    candidates = np.argpartition(-row, k - 1)[:k]
    ranked = candidates[np.argsort(-row[candidates], kind="stable")]
    return [
        {
            "event": metadata.token_name(int(i)),
            "template": capped_template(metadata.template_of(int(i))),
            "probability": round(float(np.exp(row[i])), 6),
        }
        for i in ranked
    ]


def build_alert(
    *,
    alert_id: str,
    entity: str,
    event_id: int,
    score: float,
    threshold: float,
    event_text: str | None,
    log_probs: np.ndarray,
    top_k: int,
    metadata: ModelMetadata,
    source: tuple[str, int, int] | None,
    event_time_ms: int | None,
    detected_ms: int,
    kind: AlertKind | None = None,
    session_events: int | None = None,
) -> dict[str, Any]:
    """The alert for one anomalous event, or for a session's end when ``event_id`` is END_ID.

    ``alert_id`` comes from ``alert_id()`` or ``session_end_alert_id()``; ``log_probs`` is the
    model's distribution before the event (the row the score came from); ``source`` is the
    triggering record's (topic, partition, offset), None for a session end.  The detection
    time is a parameter so that the function stays pure.  ``kind`` overrides the kind read from
    ``event_id``: a session end that the count gate flagged is ``unseen_counts``.  ``session_events``,
    given for a session end, is how many events the session held (what a length rule judged).  An
    event text longer than MAX_ALERT_EVENT_BYTES is cut, and ``event_truncated`` and ``event_bytes``
    (its full size) say so.
    """
    event, event_bytes = _capped(_well_formed(event_text))
    alert: dict[str, Any] = {
        "alert_id": alert_id,
        "kind": kind or alert_kind(event_id),
        "entity": entity,
        "score": _finite_or_none(score),
        "threshold": _finite_or_none(threshold),
        "template": capped_template(metadata.template_of(event_id)),
        "event": event,
        "expected": expected_events(log_probs, metadata, top_k),
        "model": metadata.identity(),
        "source": None
        if source is None
        else {"topic": source[0], "partition": source[1], "offset": source[2]},
        "event_time": iso_utc(event_time_ms),
        "detected_at": iso_utc(detected_ms),
    }
    if session_events is not None:
        alert["session_events"] = session_events
    if event_bytes is not None:
        alert["event_truncated"] = True
        alert["event_bytes"] = event_bytes
    return alert


def encode_alert(alert: dict[str, Any]) -> bytes:
    """Compact JSON; ValueError on NaN or infinity, which ``build_alert`` never produces."""
    return json.dumps(alert, separators=(",", ":"), allow_nan=False).encode("ascii")


def iso_utc(epoch_ms: int | None) -> str | None:
    """``2026-11-21T10:00:00.123Z`` for epoch milliseconds; None when Kafka gave no timestamp.

    Kafka says "no timestamp" with -1, or with None for a legacy (magic 0) record; a stamp before
    1973 (0, or seconds sent as milliseconds) is taken as none too (``PLAUSIBLE_TIMESTAMP_MS``).
    """
    if epoch_ms is None or epoch_ms < PLAUSIBLE_TIMESTAMP_MS:
        return None
    try:
        moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_headers(
    reason: str, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record; its value and key stay the original bytes, so nothing is lost."""
    detail_bytes = detail.encode("utf-8", "backslashreplace")
    if len(detail_bytes) > _MAX_DETAIL_BYTES:
        detail_bytes = (
            detail_bytes[: _MAX_DETAIL_BYTES - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."
        )
    return [
        (REASON_HEADER, reason.encode("utf-8")),
        (DETAIL_HEADER, detail_bytes),
        (TOPIC_HEADER, topic.encode("utf-8")),
        (PARTITION_HEADER, str(partition).encode("ascii")),
        (OFFSET_HEADER, str(offset).encode("ascii")),
    ]


def _capped(text: str | None) -> tuple[str | None, int | None]:
    """``text`` cut to at most MAX_ALERT_EVENT_BYTES of whole characters, and its full size if cut.

    Sizes count UTF-8 bytes; a lone surrogate (JSON input can hold one) counts its 3 bytes
    instead of failing the encode.
    """
    if text is None or len(text) * 4 <= MAX_ALERT_EVENT_BYTES:
        return text, None
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_ALERT_EVENT_BYTES:
        return text, None
    end = MAX_ALERT_EVENT_BYTES
    while encoded[end] & 0xC0 == 0x80:  # a continuation byte: ``end`` is inside a character
        end -= 1
    return encoded[:end].decode("utf-8", "surrogatepass"), len(encoded)


def _well_formed(text: str | None) -> str | None:
    """``text`` with each lone surrogate replaced by U+FFFD, so the alert is valid Unicode text."""
    if text is None or text.isascii():
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


def capped_template(template: str) -> str:
    """``template`` cut to MAX_ALERT_TEMPLATE_CHARS characters, marked "..." where it was cut."""
    if len(template) <= MAX_ALERT_TEMPLATE_CHARS:
        return template
    return template[: MAX_ALERT_TEMPLATE_CHARS - 3] + "..."


def _finite_or_none(value: float) -> float | None:
    number = float(value)
    return round(number, 6) if math.isfinite(number) else None
