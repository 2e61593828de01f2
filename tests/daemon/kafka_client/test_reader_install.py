"""Installing the record reader on a consumer: self-check, fallbacks, the broker's own corruption named."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import kafka
import pytest
from kafka import KafkaConsumer
from kafka import errors as Errors
from kafka.consumer.fetcher import CompletedFetch, Fetcher
from kafka.errors import CorruptRecordError
from kafka.structs import TopicPartition

from logwarden.daemon.kafka_client import reader_install
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports


def test_sample_batches_pass_the_self_check(either_class: type) -> None:
    """Both record decoders read the self-check's sample batches exactly as kafka-python does."""
    assert reader_install.self_check(either_class) == ""


def test_a_decoder_that_differs_fails_the_self_check(compiled_class: type) -> None:
    """A decoder whose offsets are one too high fails the self-check, which keeps it from being installed."""

    class OffByOne(compiled_class):  # type: ignore[misc, valid-type]
        def _unpack_records(self, *args: Any) -> Any:
            for record in super()._unpack_records(*args):
                yield record._replace(offset=record.offset + 1)

    assert "decode differently" in reader_install.self_check(OffByOne)


@pytest.mark.parametrize(
    ("breakage", "reason", "skips_corrupt_batches"),
    [
        (lambda mp: mp.setattr(kafka, "__version__", "3.1.0"), "kafka-python 3.1.0 is not 3.0.x", False),
        (
            lambda mp: mp.setattr(
                reader_install, "compiled_batch_class", lambda: (None, None, "no aiokafka")
            ),
            "no aiokafka",
            True,
        ),
        (
            lambda mp: mp.setattr(
                reader_install, "self_check", lambda cls: "sample batches decode differently"
            ),
            "decode differently",
            False,
        ),
    ],
)
def test_install_falls_back_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
    kafka_bootstrap: str,
    breakage: Callable[[pytest.MonkeyPatch], None],
    reason: str,
    skips_corrupt_batches: bool,
) -> None:
    """No compiled decoder: kafka-python's batches still read through the skipping reader when it is
    safe; a kafka-python it does not mirror, or a failed self-check, keeps kafka-python's own reader."""
    consumer = KafkaConsumer(bootstrap_servers=[kafka_bootstrap])
    try:
        breakage(monkeypatch)
        installed = reader_install.install(consumer, CorruptBatchReports())
        assert reason in installed.reason and not installed.compiled
        assert installed.skips_corrupt_batches is skips_corrupt_batches
        replaced = consumer._fetcher.PartitionRecords is not Fetcher.PartitionRecords
        assert replaced is skips_corrupt_batches
    finally:
        consumer.close()


def test_install_without_the_compiled_decoder_still_skips_corrupt_batches(kafka_bootstrap: str) -> None:
    """With ``compiled_record_decoder: false`` the consumer still gets the skipping reader, and says why."""
    consumer = KafkaConsumer(bootstrap_servers=[kafka_bootstrap])
    try:
        installed = reader_install.install(consumer, CorruptBatchReports(), compiled=False)
        assert (installed.compiled, installed.skips_corrupt_batches) == (False, True)
        assert "compiled_record_decoder is false" in installed.reason
        assert consumer._fetcher.PartitionRecords is not Fetcher.PartitionRecords
    finally:
        consumer.close()


def test_install_replaces_only_the_given_consumers_decoder(kafka_bootstrap: str) -> None:
    """Installing on one consumer replaces its fetcher's reader only; a second keeps kafka-python's."""
    first, second = (KafkaConsumer(bootstrap_servers=[kafka_bootstrap]) for _ in range(2))
    try:
        installed = reader_install.install(first, CorruptBatchReports())
        assert (installed.compiled, installed.skips_corrupt_batches, installed.reason) == (True, True, "")
        assert first._fetcher.PartitionRecords is not Fetcher.PartitionRecords
        assert second._fetcher.PartitionRecords is Fetcher.PartitionRecords
    finally:
        first.close()
        second.close()


def test_a_broker_answering_corrupt_message_gets_an_error_naming_partition_and_offset(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """The daemon cannot read past a log the broker itself cannot read, but its last words must say where
    (kafka-python's own error names neither): the fetch answer goes through the consumer's real fetcher."""
    topic = topic_factory(prefix="in-unreadable")
    consumer = KafkaConsumer(bootstrap_servers=[kafka_bootstrap])
    try:
        reader_install.install(consumer, CorruptBatchReports())
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 120)
        answer = CompletedFetch(
            tp, 120, 12, SimpleNamespace(error_code=CorruptRecordError.errno, high_watermark=-1), None
        )
        with pytest.raises(CorruptRecordError, match=f"cannot read partition {topic}-0 at offset 120"):
            consumer._fetcher._parse_fetched_data(answer)
        other = SimpleNamespace(error_code=Errors.TopicAuthorizationFailedError.errno, high_watermark=-1)
        with pytest.raises(Errors.TopicAuthorizationFailedError):  # other answers keep kafka-python's errors
            consumer._fetcher._parse_fetched_data(CompletedFetch(tp, 120, 12, other, None))
    finally:
        consumer.close()
