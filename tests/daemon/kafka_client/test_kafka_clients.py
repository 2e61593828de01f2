"""kafka-python adapters: start-up failures become errors that say what to check; OutputSink: delivery
failures surface at flush, oversize dead letters are cut instead of blocking; polls are sliced."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from kafka.errors import (
    KafkaConfigurationError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)
from kafka.producer.future import FutureProduceResult, FutureRecordMetadata
from kafka.structs import TopicPartition

from logwarden.daemon.kafka_client.clients import (
    POLL_SLICE_MS,
    OutputSink,
    build_consumer,
    input_position_required,
    poll_in_slices,
    start_client,
)
from logwarden.errors import BrokerUnavailableError, ConfigError, DeliveryError

SERVERS = ["kafka1:9092"]
QUICK = {"bootstrap_timeout_ms": 100, "request_timeout_ms": 200}


def raising(error: BaseException) -> Any:
    """A client constructor that raises ``error``, as kafka-python's does when a client cannot start."""

    def construct() -> Any:
        raise error

    return construct


def test_start_client_returns_what_the_constructor_built() -> None:
    """When the constructor succeeds, start_client hands back that very client object."""
    client = object()
    assert start_client("consumer", SERVERS, QUICK, lambda: client) is client


def test_start_client_bootstrap_timeout_is_broker_unavailable_naming_servers() -> None:
    """kafka-python's bootstrap timeout is BrokerUnavailableError naming the servers and the 0.1 s waited."""
    with pytest.raises(
        BrokerUnavailableError, match=r"kafka.bootstrap_servers \['kafka1:9092'\].*within 0.1 s"
    ):
        start_client("consumer", SERVERS, QUICK, raising(KafkaTimeoutError("Unable to bootstrap")))


def test_start_client_constructor_still_running_at_deadline_is_broker_unavailable() -> None:
    """A constructor that hangs (a TLS handshake never answered) fails at bootstrap plus request timeout."""
    never = threading.Event()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"still connecting after 0.3 s"):
        start_client("producer", SERVERS, QUICK, never.wait)
    assert time.monotonic() - started < 5
    never.set()


@pytest.mark.parametrize(
    "error",
    [KafkaConfigurationError("Unrecognized isolation_level"), ValueError("Not supported codec: nope")],
)
def test_start_client_setting_kafka_python_rejects_is_config_error_naming_role(error: Exception) -> None:
    """A setting kafka-python rejects (an isolation_level, a codec) is a ConfigError under kafka.producer."""
    with pytest.raises(ConfigError, match=r"^kafka.producer: kafka-python rejects the settings"):
        start_client("producer", SERVERS, QUICK, raising(error))


def test_start_client_refused_credentials_are_config_error_not_retried() -> None:
    """Refused SASL credentials are a ConfigError (kafka.common): its exit status stops systemd's restarts."""
    with pytest.raises(ConfigError, match=r"kafka.common: the brokers refused this client"):
        start_client("consumer", SERVERS, QUICK, raising(SaslAuthenticationFailedError("bad password")))


@pytest.mark.parametrize(
    "refusal", [UnsupportedSaslMechanismError("[Error 33]"), SaslAuthenticationFailedError("bad password")]
)
def test_start_client_refusal_kafka_python_only_logs_before_timing_out_is_a_config_error(
    refusal: Exception,
) -> None:
    """kafka-python 3.0 catches a refused login while bootstrapping, logs it as the argument of a
    warning, retries, and raises a bare timeout: that was exit 8, restarted every 5 s with the same
    credentials.  The logged refusal makes it the ConfigError (exit 3) it is."""

    def refused_then_timeout() -> None:
        logging.getLogger("kafka.net.manager").warning(
            "Bootstrap connection to %s failed: %s (backoff %.2f secs)", "bootstrap-0", refusal, 0.05
        )
        raise KafkaTimeoutError("Unable to bootstrap from ['kafka1:9092']")

    with pytest.raises(
        ConfigError, match=rf"kafka.common: the brokers refused this client \({type(refusal).__name__}"
    ):
        start_client("consumer", SERVERS, QUICK, refused_then_timeout)


def test_start_client_timeout_without_a_refusal_is_still_broker_unavailable() -> None:
    """Connection failures that are no refusal (refused port, reset) keep the timeout's exit status 8."""

    def unreachable_then_timeout() -> None:
        logging.getLogger("kafka.net.manager").warning(
            "Bootstrap connection to %s failed: %s", "bootstrap-0", ConnectionRefusedError(111, "refused")
        )
        raise KafkaTimeoutError("Unable to bootstrap")

    with pytest.raises(BrokerUnavailableError, match="no broker answered the consumer"):
        start_client("consumer", SERVERS, QUICK, unreachable_then_timeout)


def test_start_client_other_errors_pass_through_unchanged() -> None:
    """An error that is no timeout, rejected setting or refused login is raised as it was, not reworded."""
    with pytest.raises(OSError, match="disk on fire"):
        start_client("consumer", SERVERS, QUICK, raising(OSError("disk on fire")))


class RecordingProducer:
    """Stands in for KafkaProducer: keeps sends, rejects values above ``limit`` the way a broker does."""

    def __init__(self, limit: int, sync_limit: int | None = None, fail_with: Exception | None = None) -> None:
        self.limit = limit
        self.sync_limit = sync_limit
        self.fail_with = fail_with
        self.sent: list[dict[str, Any]] = []
        self._pending: list[tuple[FutureRecordMetadata, Exception | None]] = []

    def send(
        self, topic: str, key: bytes | None = None, value: bytes | None = None, headers: Any = None
    ) -> FutureRecordMetadata:
        # What kafka-python's KafkaProducer.send checks before anything else.
        if key is None and value is None:
            raise ValueError("Need at least one: key or value")
        if not all(isinstance(item, tuple) and isinstance(item[1], bytes) for item in headers or []):
            raise TypeError("All headers items must be (str, bytes) tuples")
        size = len(value or b"")
        if self.sync_limit is not None and size > self.sync_limit:
            raise MessageSizeTooLargeError(f"{size} bytes")
        produce = FutureProduceResult(None)
        future = FutureRecordMetadata(produce, 0, -1, None, 0, 0, -1)
        error = self.fail_with or (MessageSizeTooLargeError(f"{size} bytes") if size > self.limit else None)
        if error is None:
            self.sent.append({"topic": topic, "key": key, "value": value, "headers": dict(headers or [])})
        self._pending.append((future, error))
        return future

    def flush(self, timeout: float | None = None) -> None:
        pending, self._pending = self._pending, []
        for future, error in pending:
            if error is None:
                future.success(None)
            else:
                future.failure(error)


def sink_with(producer: RecordingProducer) -> OutputSink:
    """An OutputSink to topics alerts and dead over ``producer``; oversize dead letters cut to 10 bytes."""
    return OutputSink(producer, "alerts", "dead", None, dead_letter_max_bytes=10)  # type: ignore[arg-type]


def test_output_sink_dead_letter_within_limit_kept_whole() -> None:
    """A dead letter the topic accepts is delivered byte for byte."""
    producer = RecordingProducer(limit=100)
    sink = sink_with(producer)
    sink.send_dead_letter(b"k", b"x" * 50, [("logwarden.reason", b"invalid_json")])
    sink.flush()
    assert producer.sent == [
        {"topic": "dead", "key": b"k", "value": b"x" * 50, "headers": {"logwarden.reason": b"invalid_json"}}
    ]


def test_output_sink_dead_letter_rejected_by_broker_resent_cut_with_size() -> None:
    """A dead letter the broker rejects as too large is resent cut, with its original size."""
    producer = RecordingProducer(limit=100)
    sink = sink_with(producer)
    sink.send_dead_letter(b"k", b"y" * 500, [("logwarden.reason", b"oversize")])
    sink.flush()
    assert len(producer.sent) == 1
    letter = producer.sent[0]
    assert letter["value"] == b"y" * 10
    assert letter["headers"] == {"logwarden.reason": b"oversize", "logwarden.original_bytes": b"500"}


def test_output_sink_dead_letter_over_request_size_cut_at_once() -> None:
    """A dead letter kafka-python refuses before sending is cut immediately rather than raising."""
    producer = RecordingProducer(limit=100, sync_limit=200)
    sink = sink_with(producer)
    sink.send_dead_letter(None, b"z" * 300, [])
    sink.flush()
    assert (
        producer.sent[0]["value"] == b"z" * 10
        and producer.sent[0]["headers"]["logwarden.original_bytes"] == b"300"
    )


def test_output_sink_dead_letter_with_neither_key_nor_value_sent_as_empty_value() -> None:
    """A record with no key and no value (legal in Kafka) is dead-lettered, not raised on."""
    producer = RecordingProducer(limit=100)
    sink = sink_with(producer)
    sink.send_dead_letter(None, None, [("logwarden.reason", b"null_value")])
    sink.flush()
    assert producer.sent == [
        {"topic": "dead", "key": None, "value": b"", "headers": {"logwarden.reason": b"null_value"}}
    ]


def test_output_sink_flush_after_a_lost_record_keeps_raising() -> None:
    """Once a record was not delivered, no later flush may report that everything was."""
    producer = RecordingProducer(limit=100, fail_with=KafkaTimeoutError("broker down"))
    sink = sink_with(producer)
    sink.send_alert("job_1", b"{}")
    with pytest.raises(DeliveryError):
        sink.flush()
    producer.fail_with = None
    sink.send_alert("job_2", b"{}")
    with pytest.raises(DeliveryError, match="1 records were not delivered"):
        sink.flush()


def test_output_sink_failed_alert_raises_delivery_error_at_flush() -> None:
    """An alert the broker did not acknowledge makes flush raise, so the checkpoint cannot advance."""
    producer = RecordingProducer(limit=100, fail_with=KafkaTimeoutError("broker down"))
    sink = sink_with(producer)
    sink.send_alert("job_1", b"{}")
    with pytest.raises(DeliveryError, match="1 records were not delivered"):
        sink.flush()


def test_out_of_range_position_with_reset_none_is_config_error_naming_partition_and_offset() -> None:
    """auto_offset_reset none, and retention deleted what comes next: a config error, not a crash."""
    with pytest.raises(ConfigError) as caught, input_position_required("g1"):
        raise OffsetOutOfRangeError({TopicPartition("logs", 1): 5000, TopicPartition("logs", 0): 7})
    message = str(caught.value)
    assert message.startswith("kafka.consumer.auto_offset_reset: none")
    assert "logs/0 at 7, logs/1 at 5000" in message and "retention" in message


def test_no_saved_position_with_reset_none_is_config_error_naming_group() -> None:
    """No offset in the state store or the group, and reset none: the error says what to set."""
    expected = r"no offset is saved for logs/0 .* group 'g1'.*--reset-offsets"
    with pytest.raises(ConfigError, match=expected), input_position_required("g1"):
        raise NoOffsetForPartitionError({TopicPartition("logs", 0)})


class SlowEmptyConsumer:
    """Answers ``poll`` after sleeping its whole timeout, with records from the ``records_on``-th call on."""

    def __init__(self, records_on: int | None = None) -> None:
        self.timeouts: list[int] = []
        self._records_on = records_on

    def poll(self, timeout_ms: int) -> dict:
        self.timeouts.append(timeout_ms)
        if self._records_on is not None and len(self.timeouts) >= self._records_on:
            return {TopicPartition("logs", 0): ["record"]}
        time.sleep(timeout_ms / 1000)
        return {}


def test_poll_in_slices_never_lets_one_poll_wait_longer_than_a_slice() -> None:
    """A 100 ms wait on an empty consumer is polls of at most POLL_SLICE_MS each, lasting about the 100 ms."""
    consumer = SlowEmptyConsumer()
    started = time.monotonic()
    assert poll_in_slices(consumer, 100) == {}
    waited = time.monotonic() - started
    assert max(consumer.timeouts) <= POLL_SLICE_MS
    assert len(consumer.timeouts) >= 100 // POLL_SLICE_MS
    assert 0.09 <= waited < 1.0


def test_poll_in_slices_returns_the_first_records_without_waiting_out_the_timeout() -> None:
    """Records in the second slice are returned at once, not after the rest of the 10 s timeout."""
    consumer = SlowEmptyConsumer(records_on=2)
    assert poll_in_slices(consumer, 10_000) == {TopicPartition("logs", 0): ["record"]}
    assert consumer.timeouts == [POLL_SLICE_MS, POLL_SLICE_MS]


def test_poll_in_slices_zero_timeout_polls_once_without_waiting() -> None:
    """A timeout of 0 is a single ``poll(timeout_ms=0)``: a look at what is fetched, never a wait."""
    consumer = SlowEmptyConsumer()
    assert poll_in_slices(consumer, 0) == {}
    assert consumer.timeouts == [0]


class UnreachableBrokerProducer:
    """Stands in for KafkaProducer with records the broker never acknowledges: each flush waits out
    its timeout and raises, as kafka-python's does."""

    def flush(self, timeout: float | None = None) -> None:
        time.sleep(timeout if timeout is not None else 3600)
        raise KafkaTimeoutError("Timeout waiting for future")


def test_output_sink_flush_waiting_for_the_broker_gives_up_at_the_stop_deadline() -> None:
    """A stop asked for while a checkpoint's 30 s flush waits cuts that flush short at the shutdown
    deadline, so the process can be gone within its stop timeout."""
    sink = OutputSink(UnreachableBrokerProducer(), "alerts", "dead", None)  # type: ignore[arg-type]
    outcome: list[BaseException] = []
    started = time.monotonic()

    def flush() -> None:
        try:
            sink.flush(30.0)
        except DeliveryError as exc:
            outcome.append(exc)

    flusher = threading.Thread(target=flush)
    flusher.start()
    time.sleep(0.3)
    sink.give_up_at(time.monotonic() + 0.5)
    flusher.join(timeout=10)
    assert not flusher.is_alive()
    assert outcome and "producer flush failed" in str(outcome[0])
    assert time.monotonic() - started < 5.0


def test_the_daemons_consumer_fetches_without_incremental_sessions(
    kafka_bootstrap: str, consumer_group: str
) -> None:
    """In a fetch session a broker leaves partitions that did not change out of its answers, and a
    quiet partition's idle time passes only on an answer that shows it (fetch_times.py): so none."""
    consumer = build_consumer([kafka_bootstrap], consumer_group, {})
    try:
        assert consumer.config["enable_incremental_fetch_sessions"] is False
    finally:
        consumer.close()
