"""Input compressed as real producers compress it, through a real broker: every codec is read.

Java producers and librdkafka (Fluent Bit, Vector, Filebeat) offer gzip, snappy, lz4 and zstd, and a
topic's own ``compression.type`` makes the broker store every batch so, whatever the producer sent.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from daemon_harness import DaemonProcess, live_config
from kafka.record.default_records import DefaultRecordBatch

from logwarden.daemon.kafka_client.record_batches import encode_batch
from logwarden.synthetic import generate_logs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from lean_producer import LeanProducer  # noqa: E402

CODECS = {
    "gzip": DefaultRecordBatch.CODEC_GZIP,
    "snappy": DefaultRecordBatch.CODEC_SNAPPY,
    "lz4": DefaultRecordBatch.CODEC_LZ4,
    "zstd": DefaultRecordBatch.CODEC_ZSTD,
}


def test_daemon_reads_batches_of_every_codec(
    kafka_bootstrap: str, topic_factory: Callable[..., str], synthetic_model: Path, tmp_path: Path
) -> None:
    """One batch per codec, then a plain one: all 50 records are scored and the daemon keeps running."""
    log = generate_logs(seed=9, entities=10, anomaly_fraction=0.0, first_job_id=90_000)
    lines = [(key.encode(), line.encode()) for key, line in zip(log.entity_of_line, log.lines, strict=True)]
    input_topic = topic_factory(prefix="in-codec")
    config = live_config(
        kafka_bootstrap, topic_factory, f"g-{input_topic}", synthetic_model, tmp_path, input_topic
    )
    producer = LeanProducer(kafka_bootstrap, input_topic, partitions=1)
    offset, first_ms = 0, 1_700_000_000_000
    try:
        for codec in [*CODECS.values(), DefaultRecordBatch.CODEC_NONE]:
            chunk = lines[offset : offset + 10]
            records = [(first_ms + offset + i, key, value, []) for i, (key, value) in enumerate(chunk)]
            producer.send({0: encode_batch(offset, records, codec=codec)})
            offset += len(chunk)
        producer.flush()
    finally:
        producer.close()
    daemon = DaemonProcess.start(tmp_path, config)
    try:
        daemon.wait_processed(offset, timeout_s=60)
        assert daemon.process is not None and daemon.process.poll() is None, "the daemon keeps running"
        checkpoint = daemon.last_checkpoint()
        assert checkpoint is not None and checkpoint.get("dead_letters", 0) == 0
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
