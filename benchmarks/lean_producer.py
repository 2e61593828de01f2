"""A load generator that costs little CPU: record batches built here, Produce requests on one socket.

Why it exists: in the latency phase the broker, the load generator and the daemon share two cores.
kafka-python's ``KafkaProducer`` spends about 28 µs of CPU per record (0.8 of a core at 30,000
records/s), so the daemon being measured would get the cores of a machine whose producers run
on it, which is not how it is deployed.  Building a batch with kafka-python's own
``DefaultRecordBatchBuilder`` and writing one Produce request per tick costs about 4 µs a record.

Scope: a benchmark tool for ONE broker that leads every partition (the local test broker).  It
speaks Produce v3 (record batches v2, no idempotence, no compression), keeps one connection,
and fails loudly on any error in a response.  Records are partitioned like Java's and
kafka-python's default partitioner (murmur2 of the key), so each entity stays on one partition.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Sequence

from kafka.partitioner.default import murmur2

from logwarden.daemon.kafka_client.record_batches import encode_batch

PRODUCE_API_KEY = 0
PRODUCE_VERSION = 3  # the first version that carries v2 record batches; not a flexible version
CLIENT_ID = b"logwarden-bench"


def partition_for(key: bytes, partitions: int) -> int:
    """Java's default partitioner for keyed records: positive murmur2 of the key, modulo partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def build_batch(keys: Sequence[bytes], values: Sequence[bytes], timestamps_ms: Sequence[int]) -> bytes:
    """One uncompressed v2 record batch; each record carries its own timestamp (CreateTime)."""
    return encode_batch(
        0,
        [
            (timestamp_ms, key, value, [])
            for key, value, timestamp_ms in zip(keys, values, timestamps_ms, strict=True)
        ],
    )


def batches_by_partition(
    partitions: Sequence[int], keys: Sequence[bytes], values: Sequence[bytes], timestamps_ms: Sequence[int]
) -> dict[int, bytes]:
    """One request's records (parallel sequences) as one record batch per partition, order kept."""
    by_partition: dict[int, list[int]] = {}
    for index, partition in enumerate(partitions):
        by_partition.setdefault(partition, []).append(index)
    return {
        partition: build_batch(
            [keys[i] for i in indices], [values[i] for i in indices], [timestamps_ms[i] for i in indices]
        )
        for partition, indices in by_partition.items()
    }


def _string(text: bytes) -> bytes:
    return struct.pack(">h", len(text)) + text


def encode_produce_request(
    correlation_id: int, topic: str, batches: dict[int, bytes], acks: int = 1, timeout_ms: int = 30_000
) -> bytes:
    """A size-prefixed Produce v3 request carrying one batch per partition of one topic."""
    header = struct.pack(">hhi", PRODUCE_API_KEY, PRODUCE_VERSION, correlation_id) + _string(CLIENT_ID)
    parts = [struct.pack(">hhi", -1, acks, timeout_ms), struct.pack(">i", 1), _string(topic.encode())]
    parts.append(struct.pack(">i", len(batches)))
    for partition, batch in batches.items():
        parts.append(struct.pack(">ii", partition, len(batch)))
        parts.append(batch)
    body = b"".join(parts)
    return struct.pack(">i", len(header) + len(body)) + header + body


def produce_errors(response: bytes) -> list[tuple[str, int, int]]:
    """(topic, partition, error code) for every partition of a Produce v3 response that failed."""
    errors = []
    position = 4  # the correlation id
    (topics,) = struct.unpack_from(">i", response, position)
    position += 4
    for _ in range(topics):
        (length,) = struct.unpack_from(">h", response, position)
        topic = response[position + 2 : position + 2 + length].decode()
        position += 2 + length
        (partitions,) = struct.unpack_from(">i", response, position)
        position += 4
        for _ in range(partitions):
            partition, error, _base_offset, _append_time = struct.unpack_from(">ihqq", response, position)
            position += 22
            if error:
                errors.append((topic, partition, error))
    return errors


class LeanProducer:
    """Writes Produce requests to one broker; a thread reads the responses and keeps the first error."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.topic = topic
        self.partitions = partitions
        self._socket = socket.create_connection((host, int(port)), timeout=30)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.settimeout(None)  # the response reader waits as long as the run lasts
        self._next_correlation = 0
        self._acknowledged = 0
        self._condition = threading.Condition()
        self.error: str | None = None
        self._reader = threading.Thread(target=self._read_responses, daemon=True)
        self._reader.start()

    def send(self, batches: dict[int, bytes]) -> None:
        """Send one request; raises if the broker already reported an error."""
        if self.error is not None:
            raise RuntimeError(self.error)
        request = encode_produce_request(self._next_correlation, self.topic, batches)
        self._next_correlation += 1
        self._socket.sendall(request)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every request sent has been answered."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._acknowledged < self._next_correlation and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self._next_correlation - self._acknowledged} produce requests unanswered"
                    )
                self._condition.wait(left)
        if self.error is not None:
            raise RuntimeError(self.error)

    def close(self) -> None:
        """Close the connection, which also ends the response reader."""
        self._socket.close()

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self._socket.recv(size)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _read_responses(self) -> None:
        try:
            while True:
                (size,) = struct.unpack(">i", self._read_exactly(4))
                errors = produce_errors(self._read_exactly(size))
                with self._condition:
                    if errors and self.error is None:
                        self.error = f"produce failed (topic, partition, error code): {errors[:3]}"
                    self._acknowledged += 1
                    self._condition.notify_all()
        except OSError as exc:  # closed by close(), or the broker went away
            with self._condition:
                if self._acknowledged < self._next_correlation and self.error is None:
                    self.error = f"connection lost with requests unanswered: {exc}"
                self._condition.notify_all()
