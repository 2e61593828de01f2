"""sd_notify without libsystemd: what the daemon tells systemd, and that telling it never blocks the loop."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import pytest

from logwarden.daemon.systemd import SystemdNotifier, checkpoint_status


def receiver(address: str) -> socket.socket:
    """A datagram socket bound where systemd's NOTIFY_SOCKET would be (helper)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(2.0)
    return listener


def test_notifications_reach_a_socket_given_by_path(tmp_path: Path) -> None:
    """READY, WATCHDOG, STATUS and STOPPING arrive as systemd's protocol spells them."""
    path = str(tmp_path / "notify.sock")
    with receiver(path) as listener:
        notifier = SystemdNotifier(address=path)
        notifier.ready()
        notifier.watchdog()
        notifier.status("3 partitions")
        notifier.stopping()
        notifier.close()
        received = [listener.recv(4096).decode() for _ in range(4)]
    assert received == ["READY=1", "WATCHDOG=1", "STATUS=3 partitions", "STOPPING=1"]


def test_an_abstract_socket_address_written_with_at_is_reached() -> None:
    """systemd may hand out an abstract-namespace socket as ``@name``: that is a leading NUL byte."""
    name = f"logwarden-test-{uuid.uuid4().hex}"
    with receiver(f"\0{name}") as listener:
        notifier = SystemdNotifier(address=f"@{name}")
        notifier.ready()
        notifier.close()
        assert listener.recv(4096) == b"READY=1"


def test_without_notify_socket_every_notification_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run outside systemd (no NOTIFY_SOCKET), the daemon notifies nobody and nothing fails."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()


def test_a_full_or_vanished_receiver_never_blocks_or_raises(tmp_path: Path) -> None:
    """A receiver that stops reading (queue full) or disappears costs a dropped ping, never a stalled loop."""
    path = str(tmp_path / "notify.sock")
    with receiver(path):
        notifier = SystemdNotifier(address=path)
        # Far beyond a datagram queue's default depth; in a thread, so a blocking send fails the test.
        sender = threading.Thread(target=lambda: [notifier.watchdog() for _ in range(10_000)], daemon=True)
        sender.start()
        sender.join(timeout=10)
        assert not sender.is_alive(), "a notification blocked on a receiver that does not read"
    notifier.watchdog()  # the socket is gone now
    notifier.close()
    notifier.watchdog()  # and after close, a no-op


def test_checkpoint_status_names_the_table_the_totals_and_the_save() -> None:
    """``systemctl status`` shows one line an operator reads at a glance, numbers grouped by thousands."""
    text = checkpoint_status(
        entities=12_345,
        totals={"events": 1_234_567, "alerts": 89, "dead_letters": 0, "session_ends": 5, "checkpoints": 3},
        saved_at="18:34:05",
        reason="periodic",
    )
    assert text == (
        "12,345 entities; since start 1,234,567 events, 89 alerts, 0 dead letters; "
        "last save 18:34:05 (periodic)"
    )
