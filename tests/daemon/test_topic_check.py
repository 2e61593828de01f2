"""The start-up topic check, against a stand-in for the consumer's topic list (the real broker cases
are in test_daemon_lifecycle.py)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from kafka.errors import KafkaTimeoutError

from logwarden.daemon.app import check_topics
from logwarden.daemon.config import KafkaConfig
from logwarden.errors import DeliveryError


class ListedTopics:
    """Answers ``topics()`` as KafkaConsumer does: the names the brokers list, or its error."""

    def __init__(self, *names: str, error: Exception | None = None) -> None:
        self._names = set(names)
        self._error = error

    def topics(self) -> set[str]:
        if self._error is not None:
            raise self._error
        return self._names


def kafka(**overrides: Any) -> KafkaConfig:
    """A KafkaConfig with inputs logs and audit and all three output topics, changed by ``overrides``."""
    settings: dict[str, Any] = {
        "bootstrap_servers": ("127.0.0.1:9092",),
        "group_id": "g",
        "input_topics": ("logs", "audit"),
        "alerts_topic": "alerts",
        "dead_letter_topic": "dead",
        "scores_topic": "scores",
    }
    return KafkaConfig(**{**settings, **overrides})


def test_check_topics_passes_quietly_when_every_topic_is_listed() -> None:
    """Nothing is raised or logged when the brokers list every input and output topic."""
    with structlog.testing.capture_logs() as logs:
        check_topics(ListedTopics("logs", "audit", "alerts", "dead", "scores"), kafka())  # type: ignore[arg-type]
    assert logs == []


def test_check_topics_names_every_missing_output_topic() -> None:
    """Every missing output topic is named in one error, so one restart cycle shows them all."""
    with pytest.raises(DeliveryError, match=r"output topics 'dead', 'scores' do not exist, or this client"):
        check_topics(ListedTopics("logs", "audit", "alerts"), kafka())  # type: ignore[arg-type]


def test_check_topics_ignores_an_unset_scores_topic() -> None:
    """Without a scores topic configured, none is required."""
    check_topics(ListedTopics("logs", "audit", "alerts", "dead"), kafka(scores_topic=None))  # type: ignore[arg-type]


def test_check_topics_warns_of_missing_input_topics_only() -> None:
    """A missing input topic is one warning naming it; listed ones are not mentioned."""
    with structlog.testing.capture_logs() as logs:
        check_topics(ListedTopics("audit", "alerts", "dead", "scores"), kafka())  # type: ignore[arg-type]
    assert [(entry["event"], entry["log_level"], entry["topics"]) for entry in logs] == [
        ("input_topics_missing", "warning", ["logs"])
    ]


def test_check_topics_turns_a_failed_topic_list_into_a_delivery_error() -> None:
    """A broker that does not answer the topic list gives a DeliveryError (exit 1), not a traceback."""
    consumer = ListedTopics(error=KafkaTimeoutError("no answer"))
    with pytest.raises(DeliveryError, match="no topic list from the brokers: KafkaTimeoutError"):
        check_topics(consumer, kafka())  # type: ignore[arg-type]
