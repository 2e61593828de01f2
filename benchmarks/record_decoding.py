"""CPU per fetched record: kafka-python's own decoder against the compiled one the daemon uses.

Both read the same fetch buffers through kafka-python 3.0's ``PartitionRecords`` (what
``KafkaConsumer.poll`` runs for every partition it fetched), so the figures include building
each ``ConsumerRecord``.  The records are ~200-byte raw log lines in batches of 50 (what a
producer lingering a few ms writes) and 500, uncompressed and gzip-compressed.  Best of
``--repeats`` passes over 10,000 records; no broker involved.

Usage: python benchmarks/record_decoding.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from kafka.consumer.fetcher import Fetcher
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition

from logwarden.daemon.kafka_client import compiled_records, record_batches
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports

RECORDS = 10_000


def fetch_buffer(rng: random.Random, per_batch: int, codec: int) -> bytes:
    """RECORDS log lines as consecutive batches of ``per_batch``, as one fetch response holds them."""
    batches = []
    for base in range(0, RECORDS, per_batch):
        lines: list[record_batches.RecordFields] = [
            (
                1_700_000_000_000 + base + i,
                b"blk_%d" % rng.randrange(10**9),
                (
                    b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
                    b"blk_%d terminating" % rng.randrange(10**12)
                ).ljust(200, b" "),
                [],
            )
            for i in range(per_batch)
        ]
        batches.append(record_batches.encode_batch(base, lines, codec=codec))
    return b"".join(batches)


def microseconds_per_record(partition_records_class: type, data: bytes, repeats: int) -> float:
    """Best µs per record over ``repeats`` decodes of ``data``; RuntimeError if a record is missing."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        records = partition_records_class(0, TopicPartition("bench", 0), MemoryRecords(data), check_crcs=True)
        count = sum(1 for _ in records.record_iterator)
        best = min(best, time.perf_counter() - started)
        if count != RECORDS:
            raise RuntimeError(f"decoded {count} records, expected {RECORDS}")
    return best / RECORDS * 1e6


def main() -> int:
    """Print both decoders' µs per record by batch size and codec; 1 when no compiled decoder is available."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    batch_class, error_class, reason = compiled_records.compiled_batch_class()
    if batch_class is None or error_class is None:
        print(f"compiled decoder unavailable: {reason}")
        return 1
    # As the daemon reads: corrupt batches skipped and reported (none here).
    compiled = compiled_records.make_partition_records_class(batch_class, error_class, CorruptBatchReports())
    rng = random.Random(7)
    print(
        f"{'records/batch':>13} {'codec':>5} {'kafka-python':>14} {'compiled':>10} {'saved':>9} {'ratio':>6}"
    )
    for per_batch in (50, 500):
        for codec_name, codec in (
            ("none", DefaultRecordBatch.CODEC_NONE),
            ("gzip", DefaultRecordBatch.CODEC_GZIP),
        ):
            data = fetch_buffer(rng, per_batch, codec)
            stock = microseconds_per_record(Fetcher.PartitionRecords, data, args.repeats)
            fast = microseconds_per_record(compiled, data, args.repeats)
            print(
                f"{per_batch:>13} {codec_name:>5} {stock:>11.2f} µs {fast:>7.2f} µs {stock - fast:>6.2f} µs"
                f" {stock / fast:>5.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
