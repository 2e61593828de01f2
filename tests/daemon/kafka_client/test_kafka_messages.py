"""The kafka-python messages the daemon always shows still exist, word for word, in the installed version."""

from __future__ import annotations

import importlib
import inspect

import pytest

from logwarden.daemon.kafka_client.clients import KAFKA_MESSAGES_ALWAYS_SHOWN


@pytest.mark.parametrize(
    ("logger_name", "message"),
    [(name, message) for name, messages in KAFKA_MESSAGES_ALWAYS_SHOWN.items() for message in messages],
)
def test_always_shown_kafka_message_is_still_logged_by_that_module(logger_name: str, message: str) -> None:
    """A kafka-python upgrade that rewords or moves one of them would silently hide it again."""
    source = inspect.getsource(importlib.import_module(logger_name))
    assert f'"{message}"' in source or f"'{message}'" in source
