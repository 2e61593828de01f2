"""kafka-python adapters: build the consumer and producer from config, and an output sink
that counts delivery failures instead of losing them."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import (
    AuthorizationError,
    KafkaConfigurationError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RecordListTooLargeError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)

from logwarden.errors import BrokerUnavailableError, ConfigError, DeliveryError

# Defaults the daemon needs for throughput and safety; the config's kafka.consumer / kafka.producer
# maps override them (except the keys the daemon controls, which config validation rejects).
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 1024 * 1024,
    # Each poll takes everything fetched so far (the service scores it in batches): kafka-python
    # sends the next fetch only once its buffer is empty, so draining it at once lets that fetch
    # travel while the batch is scored (+20 % events/s measured against polls of one batch).
    "max_poll_records": 20_000,
    "fetch_min_bytes": 1,
    # How long the broker may hold a fetch with no new data: short, so an event arriving at a quiet
    # moment is not parked behind it (halved p50 and cut p99 5x in benchmarks/throughput.py).
    "fetch_max_wait_ms": 20,
}
FLUSH_SLICE_SECONDS = 0.25
"""How long one wait of a flush lasts before it checks whether a stop cut the flush short."""

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "max_request_size": 4 * 1024 * 1024,
}


# kafka-python logs these at INFO, below the default ``logging.kafka_level``, yet each one means the
# daemon's next input offset no longer exists on the broker and the consumer jumped as
# ``auto_offset_reset`` says: retention deleted records before the daemon read them (they are
# never scored), or the topic was deleted and created again.  The daemon logs them as warnings.
KAFKA_MESSAGES_ALWAYS_SHOWN: dict[str, tuple[str, ...]] = {
    "kafka.consumer.fetcher": ("Fetch offset %s is out of range for topic-partition %s",),
}


POLL_SLICE_MS = 20
"""Longest single ``KafkaConsumer.poll`` call; a longer wait for records is made of several.

Works around a race in kafka-python 3.0.12 (the newest release): when the fetch in flight
completes while ``poll`` is sending the next one, the fetcher drops the finished request from its
list, sees nothing in flight, and reports itself idle without looking at the records that fetch
has just buffered; ``poll`` then sleeps ``min(timeout, retry_backoff_ms)`` (100 ms by default) with
those records in hand.  In benchmarks/throughput.py at 31,000 events/s this happened 8 times in
26 runs; 6 of the 7 runs it hit had an event -> alert p99 above 100 ms (107-245 ms).  A new slice
drains the buffer at once, so the stall is at most one slice (after the change, with 10 ms
producer ticks: p99 60-91 ms in eight runs; the race was seen in two of them, 20 ms each).  The
price is paid while the input is idle: a consumer polling an empty topic used 9.0 % of a core
instead of 6.7 % (two alternating 10 s runs each)."""


def poll_in_slices(consumer: KafkaConsumer, timeout_ms: int, slice_ms: int = POLL_SLICE_MS) -> dict:
    """``consumer.poll(timeout_ms)``, made of polls of at most ``slice_ms`` (see ``POLL_SLICE_MS``).

    Returns the first non-empty poll's records, or an empty dict once ``timeout_ms`` has passed.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
        polled = consumer.poll(timeout_ms=min(slice_ms, remaining_ms))
        if polled or remaining_ms <= slice_ms:
            return polled


# kafka-python's own defaults for how long a client waits for its first broker at construction,
# and for one request (the bootstrap's metadata request may start just before that deadline).
_BOOTSTRAP_TIMEOUT_MS = 30_000
_REQUEST_TIMEOUT_MS = 30_000

T = TypeVar("T")


def build_consumer(bootstrap_servers: Sequence[str], group_id: str, options: dict[str, Any]) -> KafkaConsumer:
    """A group member with manual commits: offsets are committed by the checkpoint only."""
    settings = {**CONSUMER_DEFAULTS, **options}
    return start_client(
        "consumer",
        bootstrap_servers,
        settings,
        lambda: KafkaConsumer(
            bootstrap_servers=list(bootstrap_servers),
            group_id=group_id,
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            # Every fetch answer then lists every partition asked for, a quiet one too: that answer is
            # what lets a quiet partition's idle time pass (daemon/kafka_client/fetch_times.py).
            enable_incremental_fetch_sessions=False,
            **settings,
        ),
    )


def build_producer(bootstrap_servers: Sequence[str], options: dict[str, Any]) -> KafkaProducer:
    """The one producer for alerts, dead letters and scores."""
    settings = {**PRODUCER_DEFAULTS, **options}
    return start_client(
        "producer",
        bootstrap_servers,
        settings,
        lambda: KafkaProducer(
            bootstrap_servers=list(bootstrap_servers), allow_auto_create_topics=False, **settings
        ),
    )


def topics_missing(consumer: KafkaConsumer, topics: Iterable[str]) -> list[str]:
    """Which of ``topics`` the brokers do not list: absent, or hidden from this client by ACLs.

    One request for the cluster's topic list, which creates nothing.  Asking the producer for one
    missing topic's partitions instead waits its whole ``max_block_ms`` (60 s) and then says only
    that no metadata came.
    """
    try:
        listed = consumer.topics()
    except KafkaError as exc:
        raise DeliveryError(f"no topic list from the brokers: {exc!r}") from exc
    return [topic for topic in topics if topic not in listed]


def start_client(
    role: str, bootstrap_servers: Sequence[str], settings: dict[str, Any], construct: Callable[[], T]
) -> T:
    """Run a kafka-python constructor (it connects) and turn its failures into errors that say what to check.

    When no broker answers, kafka-python raises a bare "Unable to bootstrap" timeout; the reason
    (refused, TLS, SASL) is in its log, which the daemon forwards just before this error.  The
    constructor runs in a helper thread with a deadline because kafka-python 3.0 does not bound
    the TLS handshake: a TLS client facing an endpoint that accepts the connection and never
    answers would otherwise wait forever, silently, instead of failing with exit status 8.
    """
    bootstrap_s = settings.get("bootstrap_timeout_ms", _BOOTSTRAP_TIMEOUT_MS) / 1000
    deadline_s = bootstrap_s + settings.get("request_timeout_ms", _REQUEST_TIMEOUT_MS) / 1000
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["client"] = construct()
        except BaseException as exc:  # handed to the waiting thread below
            outcome["error"] = exc

    starter = threading.Thread(target=run, name=f"logwarden-start-{role}", daemon=True)
    with refusals_logged() as refusals:
        starter.start()
        starter.join(deadline_s)
    where = f"kafka.bootstrap_servers {list(bootstrap_servers)}"
    checks = (
        "check the addresses, that the brokers advertise listeners this host can reach, and the "
        "security settings (security_protocol, ssl_*, sasl_*) under kafka.common"
    )
    if starter.is_alive():
        raise BrokerUnavailableError(
            f"{where}: the {role} was still connecting after {deadline_s:g} s (bootstrap_timeout_ms + "
            f"request_timeout_ms), as when TLS meets an endpoint that never answers; {checks}"
        )
    error = outcome.get("error")
    if error is None:
        return outcome["client"]  # type: ignore[no-any-return]
    if isinstance(error, (KafkaConfigurationError, ValueError, TypeError)):
        # Raised once connected, for values the config check cannot know (e.g. a codec that this
        # kafka-python build lacks): a config error, so systemd does not restart in a loop.
        raise ConfigError(f"kafka.{role}: kafka-python rejects the settings: {error}") from None
    if isinstance(error, KafkaTimeoutError) and refusals:
        # kafka-python 3.0 retries a refused login until its bootstrap times out and then raises a bare
        # timeout; the refusal itself is only in its log.
        error = refusals[-1]
    if isinstance(error, REFUSALS):
        # Restarting with the same credentials cannot succeed and may lock the account: exit 3.
        raise ConfigError(
            f"kafka.common: the brokers refused this client ({type(error).__name__}: {error}); check "
            "security_protocol, sasl_mechanism and the credentials, and the ACLs of this principal"
        ) from None
    if isinstance(error, (KafkaTimeoutError, KafkaConnectionError)):
        raise BrokerUnavailableError(
            f"{where}: no broker answered the {role} within {bootstrap_s:g} s "
            f"({type(error).__name__}); {checks}"
        ) from None
    raise error


REFUSALS = (SaslAuthenticationFailedError, UnsupportedSaslMechanismError, AuthorizationError)
"""Errors by which brokers refuse this client: retrying with the same settings cannot succeed."""


class _RefusalCollector(logging.Handler):
    """Keeps the refusal errors kafka-python logs as arguments of its connection warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.refusals: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        arguments = record.args if isinstance(record.args, tuple) else ()
        self.refusals.extend(argument for argument in arguments if isinstance(argument, REFUSALS))


@contextmanager
def refusals_logged() -> Iterator[list[BaseException]]:
    """The refusals kafka-python logs while the block runs (its "Bootstrap connection ... failed: %s"
    warning carries the error itself), with its logger letting warnings through for that time."""
    library = logging.getLogger("kafka")
    collector = _RefusalCollector()
    level = library.level
    library.addHandler(collector)
    if level == logging.NOTSET or level > logging.WARNING:
        library.setLevel(logging.WARNING)
    try:
        yield collector.refusals
    finally:
        library.removeHandler(collector)
        library.setLevel(level)


@contextmanager
def input_position_required(group_id: str) -> Iterator[None]:
    """Turn kafka-python's "no valid position" errors into a ConfigError naming the setting.

    kafka-python raises them from ``poll`` only when ``auto_offset_reset`` is ``none``: the operator
    asked the consumer to stop rather than guess where to read.  Restarting cannot help until the
    group's offsets are set or the setting changed, so it is a config error (exit 3, which the unit
    does not restart), not a crash with a traceback.
    """
    advice = "set the group's offsets (kafka-consumer-groups.sh --reset-offsets) or choose earliest or latest"
    try:
        yield
    except NoOffsetForPartitionError as exc:
        raise ConfigError(
            f"kafka.consumer.auto_offset_reset: none, and no offset is saved for {_partition_list(exc)} "
            f"in the state store or by group {group_id!r}: {advice}"
        ) from None
    except OffsetOutOfRangeError as exc:
        raise ConfigError(
            f"kafka.consumer.auto_offset_reset: none, and the next offset to read no longer exists for "
            f"{_partition_list(exc)} (retention deleted those records, or the topic was recreated): {advice}"
        ) from None


def _partition_list(error: Exception) -> str:
    """``logs/0 at 5000, logs/1`` from the partitions (set, or {partition: offset}) kafka-python raised."""
    partitions: Iterable[Any] = error.args[0] if error.args else ()
    offsets = partitions if isinstance(partitions, dict) else dict.fromkeys(partitions)
    names = [
        f"{tp.topic}/{tp.partition}" + (f" at {offset}" if offset is not None else "")
        for tp, offset in sorted(offsets.items(), key=lambda item: (item[0].topic, item[0].partition))
    ]
    return ", ".join(names) or "some partitions"


class OutputSink:
    """Produces alerts, dead letters and scores; ``flush`` raises if any record was not delivered."""

    def __init__(
        self,
        producer: KafkaProducer,
        alerts_topic: str,
        dead_letter_topic: str,
        scores_topic: str | None,
        dead_letter_max_bytes: int = 900_000,
    ) -> None:
        self._producer = producer
        self._dead_letter_max_bytes = dead_letter_max_bytes
        self.alerts_topic = alerts_topic
        self.dead_letter_topic = dead_letter_topic
        self.scores_topic = scores_topic
        self._lock = threading.Lock()
        self._give_up_at: float | None = None
        self._failures: list[str] = []
        self._oversize_letters: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def _on_error(self, exc: BaseException) -> None:
        # Runs on kafka-python's sender thread.
        with self._lock:
            self._failures.append(repr(exc))

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self._producer.send(topic, key=key, value=value, headers=headers).add_errback(self._on_error)

    def warm_up(self) -> None:
        """Fetch the output topics' metadata now rather than on the first alert.

        Without it the first alert of a run waits for a metadata round trip.  Whether the topics
        exist was checked before, from the brokers' topic list (``topics_missing``); this fails only
        on what changed since (a broker that stopped answering, a topic deleted), after
        kafka-python's ``max_block_ms``.
        """
        for topic in (self.alerts_topic, self.dead_letter_topic, self.scores_topic):
            if topic is None:
                continue
            try:
                self._producer.partitions_for(topic)
            except Exception as exc:  # kafka-python raises KafkaTimeoutError after max_block_ms
                raise DeliveryError(f"output topic {topic!r}: no metadata from the brokers: {exc}") from exc

    def send_alert(self, entity: str, payload: bytes) -> None:
        """Queue ``payload`` on the alerts topic keyed by ``entity``; a failure surfaces at ``flush``."""
        self._send(self.alerts_topic, entity.encode("utf-8"), payload)

    def send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        """Forward the original record; if it is too large for the dead-letter topic, a cut copy.

        The cut copy keeps the first ``dead_letter_max_bytes`` of the value and says the original
        size in ``logwarden.original_bytes``; its ``source.*`` headers point at the full record.
        Without it, a record the topic rejects would fail every checkpoint, and the daemon would
        crash on it again after each restart.
        """
        if key is None and value is None:
            # Kafka accepts a record with neither (a tombstone without a key) but kafka-python's
            # producer refuses to send one; an empty value with reason header null_value says it.
            value = b""
        letter = (key, value, headers)
        try:
            future = self._producer.send(self.dead_letter_topic, key=key, value=value, headers=headers)
        except (MessageSizeTooLargeError, RecordListTooLargeError):
            self._send_cut_dead_letter(letter)
            return
        future.add_errback(lambda exc: self._on_dead_letter_error(letter, exc))

    def _on_dead_letter_error(
        self, letter: tuple[bytes | None, bytes | None, list[tuple[str, bytes]]], exc: BaseException
    ) -> None:
        if isinstance(exc, (MessageSizeTooLargeError, RecordListTooLargeError)):
            with self._lock:
                self._oversize_letters.append(letter)
        else:
            self._on_error(exc)

    def _send_cut_dead_letter(
        self, letter: tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
    ) -> None:
        key, value, headers = letter
        size = len(value) if value is not None else 0
        cut = value[: self._dead_letter_max_bytes] if value is not None else None
        self._send(
            self.dead_letter_topic, key, cut, [*headers, ("logwarden.original_bytes", str(size).encode())]
        )

    def send_score(self, entity: str, payload: bytes) -> None:
        """Queue ``payload`` on the scores topic keyed by ``entity``; nothing without a scores topic."""
        if self.scores_topic is not None:
            self._send(self.scores_topic, entity.encode("utf-8"), payload)

    def flush(self, timeout_seconds: float | None = None) -> None:
        """Block until every record sent so far is acknowledged; DeliveryError if any failed."""
        self._flush(timeout_seconds)
        with self._lock:
            oversize, self._oversize_letters = self._oversize_letters, []
        if oversize:
            for letter in oversize:
                self._send_cut_dead_letter(letter)
            self._flush(timeout_seconds)
        # Failures stay: once a record was lost, no later flush may report everything delivered.
        with self._lock:
            failures = list(self._failures)
        if failures:
            raise DeliveryError(f"{len(failures)} records were not delivered, first: {failures[0]}")

    def give_up_at(self, deadline: float) -> None:
        """Cut any flush short at ``deadline`` (``time.monotonic``), even one already waiting.

        Set when a stop is requested: a checkpoint's flush may wait 30 s for a broker that does not
        answer, and the process has to be gone within the shutdown timeout.  Assigning one float is
        atomic, so the signal handler may call this while ``flush`` runs.
        """
        self._give_up_at = deadline

    def _flush(self, timeout_seconds: float | None) -> None:
        """``producer.flush`` in slices of ``FLUSH_SLICE_SECONDS``, so a stop request is noticed."""
        deadline = math.inf if timeout_seconds is None else time.monotonic() + timeout_seconds
        while True:
            if self._give_up_at is not None:
                deadline = min(deadline, self._give_up_at)
            left = deadline - time.monotonic()
            try:
                self._producer.flush(timeout=max(0.0, min(FLUSH_SLICE_SECONDS, left)))
                return
            except KafkaTimeoutError as exc:
                if time.monotonic() >= deadline:
                    raise DeliveryError(f"producer flush failed: {exc}") from exc
            except Exception as exc:
                raise DeliveryError(f"producer flush failed: {exc}") from exc

    def close(self, timeout_seconds: float) -> None:
        """Close the producer, waiting at most ``timeout_seconds`` for records still queued."""
        self._producer.close(timeout=timeout_seconds)
