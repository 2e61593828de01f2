"""Map event keys to model ids and back; unseen keys become UNKNOWN, never an error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID


class Vocabulary:
    """Event key -> id, with ids from ``FIRST_EVENT_ID`` on, in the order the keys were given."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys: tuple[str, ...] = tuple(keys)
        self._ids = {key: FIRST_EVENT_ID + i for i, key in enumerate(self.keys)}
        if len(self._ids) != len(self.keys):
            raise ValueError("vocabulary keys must be unique")

    def __len__(self) -> int:
        return len(self.keys)

    def id_of(self, key: str) -> int:
        """Model id of ``key``, or UNKNOWN_ID."""
        return self._ids.get(key, UNKNOWN_ID)

    def encode(self, keys: Iterable[str]) -> np.ndarray:
        """int64 ids of a session's keys."""
        get = self._ids.get
        return np.fromiter((get(k, UNKNOWN_ID) for k in keys), dtype=np.int64)

    @classmethod
    def from_sessions(cls, sessions: Iterable[Sequence[str]]) -> Vocabulary:
        """Vocabulary of every key in ``sessions``, ordered numerically when keys are numbers."""
        seen: set[str] = set()
        for session in sessions:
            seen.update(session)
        return cls(sorted(seen, key=_natural_key))


def _natural_key(key: str) -> tuple[int, int, str, str]:
    """Sort key giving one total order: ASCII numbers by value, then by text ('5' and '05' differ).

    ``str.isdigit`` alone accepts digits ``int`` rejects ('²'), and two keys equal as numbers must
    still compare unequal, or their order follows set iteration, which varies with PYTHONHASHSEED.
    Values are compared as digit strings (shorter without leading zeros is smaller), never through
    ``int``: a key of more than 4,300 digits would raise ValueError (Python's int/str limit) and stop
    training on a sequences file or event keys that hold one.
    """
    if key.isascii() and key.isdigit():
        digits = key.lstrip("0")
        return (0, len(digits), digits, key)
    return (1, 0, "", key)
