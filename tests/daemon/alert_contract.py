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
