"""The fields every alert must carry, as the product promises them to alert consumers."""

ALERT_FIELDS = frozenset(
    {
        "alert_id",
        "kind",
        "entity",
        "score",
        "threshold",
        "template",
        "event",
        "expected",
        "model",
        "source",
        "event_time",
        "detected_at",
    }
)

TRUNCATED_EVENT_FIELDS = frozenset({"event_truncated", "event_bytes"})
"""Present, besides ALERT_FIELDS, only when ``event`` holds the start of a longer line."""

SESSION_END_FIELDS = frozenset({"session_events"})
"""Present, besides ALERT_FIELDS, only in the alert of a session's end (kinds ``session_end`` and
``unseen_counts``): how many events the session held."""
