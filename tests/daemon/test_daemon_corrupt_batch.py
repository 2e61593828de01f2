"""A record batch that cannot be read, through a real broker: dead-lettered whole, the daemon reads on.

Brokers check CRCs on produce, so in production such a batch comes from damage after the write.
The test broker stores what it is given, so the test writes batches with a broken CRC itself,
with the benchmark's lean producer (one Produce request per batch, bytes as built).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import yaml
from daemon_harness import DaemonProcess, daemon_config
from kafka_broker import read_all
from oracle import fold_records, load_checkpoint, state_differences

from logwarden.daemon.alerts import (
    DETAIL_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
)
from logwarden.daemon.config import load_config
from logwarden.daemon.kafka_client.compiled_records import HEADER_SIZE
from logwarden.daemon.kafka_client.corrupt_batches import RESUME_OFFSET_HEADER, UNREAD_OFFSET_HEADER
from logwarden.synthetic import generate_logs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from lean_producer import LeanProducer, build_batch  # noqa: E402

CORRUPT_RECORDS = 6
PROCESS_DEADLINE_S = 90.0
# The oracle folds every event of an entity into one session: no TTL or capacity may end one.
STATE = {"ttl_seconds": 1e9, "max_entities": 100_000}

Record = tuple[bytes, bytes]


def batch_of(records: Sequence[Record], first_ms: int) -> bytes:
    """One v2 record batch of ``records``, stamped 1 ms apart from ``first_ms``, for the lean producer."""
    keys, values = zip(*records, strict=True)
    return build_batch(keys, values, [first_ms + i for i in range(len(records))])


def with_broken_crc(batch: bytes) -> bytes:
    """The batch with its last byte flipped: inside the records, so its CRC no longer matches."""
    return batch[:-1] + bytes([batch[-1] ^ 0xFF])


def test_daemon_dead_letters_corrupt_batches_and_reads_on(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """Good, corrupt, good, good, corrupt: each corrupt batch is dead-lettered with its raw bytes and
    coordinates, none of its records is applied, and the checkpoint moves past the last one."""
    log = generate_logs(seed=9, entities=40, anomaly_fraction=0.1, first_job_id=90_000)
    valid: list[Record] = [
        (entity.encode(), line.encode()) for entity, line in zip(log.entity_of_line, log.lines, strict=True)
    ]
    third = len(valid) // 3
    chunks = [valid[:third], valid[third : 2 * third], valid[2 * third :]]
    # Real lines of the same entities: had the daemon applied any of them, the states would differ.
    corrupt_records = valid[:CORRUPT_RECORDS]
    plan: list[tuple[str, list[Record]]] = [
        ("good", chunks[0]),
        ("corrupt", corrupt_records),
        ("good", chunks[1]),
        ("good", chunks[2]),
        ("corrupt", corrupt_records),
    ]

    input_topic = topic_factory(prefix="in-corrupt")
    dead_topic = topic_factory(prefix="dead-corrupt")
    config = daemon_config(
        bootstrap=kafka_bootstrap,
        group=f"g-{input_topic}",
        input_topic=input_topic,
        alerts_topic=topic_factory(prefix="alerts-corrupt"),
        dead_letter_topic=dead_topic,
        model_dir=synthetic_model,
        state_dir=tmp_path / "state",
        state=STATE,
    )
    daemon = DaemonProcess.start(tmp_path, config)
    try:
        producer = LeanProducer(kafka_bootstrap, input_topic, partitions=1)
        oracle_input, corrupt_at, written = [], [], []
        offset, first_ms = 0, 1_700_000_000_000
        try:
            for kind, records in plan:
                batch = batch_of(records, first_ms)
                if kind == "corrupt":
                    batch = with_broken_crc(batch)
                    corrupt_at.append(offset)
                    written.append(batch)
                else:
                    oracle_input += [
                        SimpleNamespace(
                            topic=input_topic,
                            partition=0,
                            offset=offset + i,
                            key=key,
                            value=value,
                            timestamp=first_ms + i,
                        )
                        for i, (key, value) in enumerate(records)
                    ]
                producer.send({0: batch})
                producer.flush()
                offset += len(records)
                first_ms += len(records)
        finally:
            producer.close()
        end_offset = offset

        daemon.wait_processed(len(valid) + len(corrupt_at), timeout_s=PROCESS_DEADLINE_S)
        letters = read_all(kafka_bootstrap, dead_topic, expected_count=len(corrupt_at), timeout_s=30)
        assert daemon.process is not None and daemon.process.poll() is None, "the daemon keeps running"
        assert daemon.terminate() == 0
    finally:
        daemon.kill()

    assert len(letters) == len(corrupt_at)
    for letter, base, batch in zip(
        sorted(letters, key=lambda letter: letter.offset), corrupt_at, written, strict=True
    ):
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers[REASON_HEADER] == "corrupt_batch"
        assert (headers[TOPIC_HEADER], headers[PARTITION_HEADER], headers[OFFSET_HEADER]) == (
            input_topic,
            "0",
            str(base),
        )
        assert (headers[UNREAD_OFFSET_HEADER], headers[RESUME_OFFSET_HEADER]) == (
            str(base),
            str(base + CORRUPT_RECORDS),
        )
        assert f"partition {input_topic}-0 at offset {base} failed crc check" in headers[DETAIL_HEADER]
        assert letter.key is None
        # The batch as the broker stored it: its base offset is the broker's, its records ours.
        assert len(letter.value) == len(batch) and letter.value[HEADER_SIZE:] == batch[HEADER_SIZE:]

    corrupt_lines = [e for e in daemon.events() if e.get("event") == "corrupt_batch"]
    assert [(e["offset"], e["resume_offset"]) for e in corrupt_lines] == [
        (base, base + CORRUPT_RECORDS) for base in corrupt_at
    ]
    final = daemon.last_checkpoint()
    assert final is not None and (final["events"], final["dead_letters"]) == (len(valid), len(corrupt_at))

    config_path = tmp_path / "oracle.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = load_config(config_path)
    oracle = fold_records(oracle_input, loaded)
    saved, offsets = load_checkpoint(tmp_path / "state", loaded)
    assert offsets == {(input_topic, 0): end_offset}, "a restart starts after the last corrupt batch"
    problems = state_differences(saved, oracle)
    assert not problems, "state differs from a fold over the readable records:\n" + "\n".join(problems)
