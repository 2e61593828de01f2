"""sd_notify over $NOTIFY_SOCKET (READY, WATCHDOG, STATUS, STOPPING) without a libsystemd binding."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping


class SystemdNotifier:
    """Sends notifications when running under systemd with Type=notify; a no-op elsewhere."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._socket: socket.socket | None = None
        self._address = ""
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # A datagram to a receiver whose queue is full blocks a blocking socket: the event loop
            # must never wait on a notification (a watchdog ping comes again next tick).
            self._socket.setblocking(False)

    def notify(self, message: str) -> None:
        """Send ``message`` (e.g. ``READY=1``) without blocking; a no-op outside systemd, errors ignored."""
        if self._socket is None:
            return
        # systemd may be gone (e.g. during shutdown): notifications are advisory.
        with contextlib.suppress(OSError):
            self._socket.sendto(message.encode("utf-8"), self._address)

    def ready(self) -> None:
        """Tell systemd that start-up is over (``READY=1``)."""
        self.notify("READY=1")

    def watchdog(self) -> None:
        """Ping the watchdog (``WATCHDOG=1``); sent from the loop's tick, so a stuck loop stops pinging."""
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        """Tell systemd that shutdown has begun (``STOPPING=1``)."""
        self.notify("STOPPING=1")

    def status(self, text: str) -> None:
        """Set the one-line status ``systemctl status`` shows (``STATUS=``)."""
        self.notify(f"STATUS={text}")

    def close(self) -> None:
        """Release the socket; later notifications are no-ops."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def checkpoint_status(*, entities: int, totals: Mapping[str, int], saved_at: str, reason: str) -> str:
    """What ``systemctl status`` shows after a save: the table's size, totals since start, the save.

    Pure, so the wording is tested without a socket.
    """
    return (
        f"{entities:,} entities; since start {totals['events']:,} events, {totals['alerts']:,} alerts, "
        f"{totals['dead_letters']:,} dead letters; last save {saved_at} ({reason})"
    )
