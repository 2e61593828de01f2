"""Two properties of the local test broker that show in throughput.py's latency figures.

    .venv/bin/python benchmarks/broker_properties.py [--steps 4] [--batches-per-step 2000]

Each is measured with no other load, on a fresh broker:

1. **Round trip against what the broker holds.**  The latency phase's load generator writes one
   small batch per partition every 5 ms tick, 4,000 per partition in a 20 s run, and both the
   bare consumer's and the daemon's latency climb as the run goes on.  Here one record's
   produce -> fetch round trip (a fresh consumer positioned at the end of partition 0) is timed
   after each step of filling the 3 partitions, once with small batches (50 records, as the
   latency phase writes them) and once with the same records in large batches.  Apache Kafka
   finds a fetch offset through its offset index, so its round trip does not depend on either.
2. **How long a fetch waits when records arrive during it.**  Apache Kafka answers a waiting fetch
   as soon as ``fetch_min_bytes`` have arrived, so ``fetch_max_wait_ms`` only bounds the wait on an
   idle topic.  Here one record is produced every 37 ms and read by consumers with different
   ``fetch_max_wait_ms``; the latency each sees shows whether the broker answers on arrival.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from tempfile import mkdtemp

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from lean_producer import LeanProducer, build_batch

from logwarden.devbroker import LocalBroker

TOPIC = "bench.broker"
PARTITIONS = 3  # as the latency phase's input topic
VALUE = b"x" * 180  # the size of the throughput benchmark's lines
PROBES = 30  # round trips timed after each step
ARRIVAL_INTERVAL_S = 0.037  # between records in the fetch-wait measurement; not a multiple of any wait
FETCH_WAITS_MS = (5, 20, 100, 300)


def round_trips_ms(bootstrap: str, producer: KafkaProducer, next_offset: int) -> list[float]:
    """``PROBES`` produce -> fetch round trips of one record each on partition 0, from ``next_offset``."""
    partition = TopicPartition(TOPIC, 0)
    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], fetch_max_wait_ms=5, enable_auto_commit=False)
    consumer.assign([partition])
    consumer.seek(partition, next_offset)
    timings = []
    for _ in range(PROBES):
        started = time.perf_counter()
        producer.send(TOPIC, VALUE, partition=0).get(timeout=120)
        received = 0
        deadline = time.monotonic() + 120  # the broker's worst stalls seen here lasted about 40 s
        while not received:
            if time.monotonic() > deadline:
                raise TimeoutError("a produced record was not fetched within 120 s")
            received = sum(len(batch) for batch in consumer.poll(timeout_ms=20).values())
        timings.append((time.perf_counter() - started) * 1000)
    consumer.close()
    return timings


def fill(bootstrap: str, batches: int, records_per_batch: int) -> None:
    """Append ``batches`` batches of ``records_per_batch`` records to every partition; wait for acks."""
    producer = LeanProducer(bootstrap, TOPIC, PARTITIONS)
    now_ms = int(time.time() * 1000)
    batch = build_batch([b"k"] * records_per_batch, [VALUE] * records_per_batch, [now_ms] * records_per_batch)
    for _ in range(batches):
        producer.send({partition: batch for partition in range(PARTITIONS)})
    producer.flush()
    producer.close()


def round_trip_by_batches_held(steps: int, records_per_step: int, records_per_batch: int, work: Path) -> None:
    """Print the round trip after each of ``steps`` fills of ``records_per_step`` records per partition."""
    label = f"{records_per_batch:,}/batch"
    with LocalBroker(work / f"broker-{records_per_batch}.log") as broker:
        broker.create_topics([TOPIC], partitions=PARTITIONS)
        producer = KafkaProducer(bootstrap_servers=[broker.bootstrap], linger_ms=0)
        held_records = held_batches = 0  # in partition 0
        for step in range(steps + 1):
            timings = round_trips_ms(broker.bootstrap, producer, held_records)
            held_records += PROBES
            held_batches += PROBES
            print(
                f"{label:>13}: {held_batches:>6,} batches, {held_records:>7,} records per partition; "
                f"round trip p50 {np.percentile(timings, 50):5.1f} ms, max {max(timings):7.1f} ms",
                flush=True,
            )
            if step < steps:
                batches = records_per_step // records_per_batch
                fill(broker.bootstrap, batches, records_per_batch)
                held_records += batches * records_per_batch
                held_batches += batches
        producer.close()


def latency_by_fetch_wait(work: Path, records: int = 60) -> None:
    """Print what consumers with each of ``FETCH_WAITS_MS`` see of records arriving every 37 ms."""
    with LocalBroker(work / "broker-fetch-wait.log") as broker:
        broker.create_topics([TOPIC], partitions=1)
        producer = KafkaProducer(bootstrap_servers=[broker.bootstrap], linger_ms=0)
        partition = TopicPartition(TOPIC, 0)
        next_offset = 0
        for wait_ms in FETCH_WAITS_MS:
            consumer = KafkaConsumer(
                bootstrap_servers=[broker.bootstrap], fetch_max_wait_ms=wait_ms, enable_auto_commit=False
            )
            consumer.assign([partition])
            consumer.seek(partition, next_offset)

            def send_paced() -> None:
                for _ in range(records):
                    time.sleep(ARRIVAL_INTERVAL_S)
                    producer.send(TOPIC, VALUE, partition=0).get(timeout=120)

            sender = threading.Thread(target=send_paced)
            sender.start()
            latencies: list[float] = []
            deadline = time.monotonic() + records * ARRIVAL_INTERVAL_S + 60
            while len(latencies) < records:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"received {len(latencies)} of {records} records")
                for batch in consumer.poll(timeout_ms=50).values():
                    now_ms = time.time() * 1000
                    latencies.extend(now_ms - record.timestamp for record in batch)
            sender.join()
            consumer.close()
            next_offset += records
            p50, p99 = np.percentile(latencies, [50, 99])
            print(
                f"fetch_max_wait_ms {wait_ms:>3}: produce -> received p50 {p50:5.1f} ms, p99 {p99:5.1f} ms "
                f"({records} records, one every {ARRIVAL_INTERVAL_S * 1000:.0f} ms)",
                flush=True,
            )
        producer.close()


def main() -> int:
    """Run both measurements on fresh local brokers; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--batches-per-step", type=int, default=2_000, help="small batches per partition per step"
    )
    parser.add_argument("--small", type=int, default=50, help="records in a small batch")
    parser.add_argument("--large", type=int, default=5_000, help="records in a large batch")
    args = parser.parse_args()
    work = Path(mkdtemp(prefix="logwarden-bench-broker-"))
    records_per_step = args.batches_per_step * args.small
    for records_per_batch in (args.small, args.large):
        round_trip_by_batches_held(args.steps, records_per_step, records_per_batch, work)
    latency_by_fetch_wait(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
