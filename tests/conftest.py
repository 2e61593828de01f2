"""Suite-wide fixtures: one real Kafka-protocol broker per test session, uuid topics and groups per test.

The broker is started on first use only, so a run that needs no broker starts none.  If it
cannot start, every test that needs it fails with the reason (never skips): the daemon's
integration tests are part of the required suite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from kafka_broker import (
    FAST_CONSUMER_SETTINGS,
    BrokerStartError,
    LocalBroker,
    make_topic_factory,
    resolve_broker_binary,
)

_BROKER_LOG_KEY = pytest.StashKey[Path]()
_START_ATTEMPTS = 3
_BROKER_FIXTURES = frozenset({"kafka_bootstrap", "topic_factory", "kafka_broker"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker ``kafka``, so ``-m 'not kafka'`` selects the rest."""
    for item in items:
        if _BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Attach the broker's log to the report of a failed broker test."""
    outcome = yield
    report = outcome.get_result()
    log_path = item.config.stash.get(_BROKER_LOG_KEY, None)
    if report.failed and log_path is not None and item.get_closest_marker("kafka") is not None:
        try:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-8000:]
        except OSError as exc:
            tail = f"<unreadable: {exc}>"
        report.sections.append((f"tansu broker log ({log_path})", tail))


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put structlog back to its defaults after each test.

    ``logwarden``'s commands point structlog at the stdout or stderr of the moment, which pytest
    replaces per test and closes after it: a later test that logs would write to a closed file.
    """
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def kafka_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalBroker]:
    """The session's Tansu broker, started once on a free loopback port and stopped at the end.

    Its log goes under pytest's base temporary directory, which pytest prunes (the last three runs
    are kept), so a failed test's report can still point at the log after the run.
    """
    log_dir = tmp_path_factory.mktemp("tansu")
    try:
        binary = resolve_broker_binary()
    except BrokerStartError as exc:
        unavailable = str(exc)
    else:
        unavailable = ""
    if unavailable:
        pytest.fail(f"Kafka test broker unavailable: {unavailable}", pytrace=False)
    log_path = log_dir / "broker.log"
    log_path.touch()
    request.config.stash[_BROKER_LOG_KEY] = log_path
    broker: LocalBroker | None = None
    errors: list[str] = []
    # A free port can be taken between choosing it and the broker binding it: try another.
    for _ in range(_START_ATTEMPTS):
        candidate = LocalBroker(log_path, binary=binary)
        try:
            candidate.start()
        except BrokerStartError as exc:
            errors.append(str(exc))
            continue
        broker = candidate
        break
    if broker is None:
        pytest.fail(
            f"Kafka test broker ({binary}) did not start after {_START_ATTEMPTS} attempts:\n"
            + "\n---\n".join(errors),
            pytrace=False,
        )
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker) -> str:
    """``"127.0.0.1:PORT"`` of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """``topic_factory(partitions=1, prefix="t")`` creates a uuid-named topic and returns its name."""
    return make_topic_factory(kafka_bootstrap)


@pytest.fixture
def consumer_group() -> str:
    """A consumer group id no other test uses."""
    return f"g-{uuid.uuid4().hex}"


@pytest.fixture
def fast_consumer_settings() -> dict[str, Any]:
    """KafkaConsumer kwargs that make group joins fast on this broker (a fresh copy per test)."""
    return dict(FAST_CONSUMER_SETTINGS)
