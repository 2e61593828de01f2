"""How raw log files are opened, by the trainer and the offline scorer alike.

Both must split a file into the same lines the daemon receives as records: only ``\\n`` ends a
line (a stray ``\\r`` inside a line stays in it, as it does in a Kafka record, where universal
newlines would cut it in two), a UTF-8 byte order mark is not part of the first line, and
undecodable bytes are replaced rather than fatal (the daemon sends such records to its
dead-letter topic; a file has no such place).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO


def open_log_file(path: Path) -> TextIO:
    """``path`` opened for reading lines; OSError as ``open`` raises it."""
    return path.open(encoding="utf-8-sig", errors="replace", newline="\n")
