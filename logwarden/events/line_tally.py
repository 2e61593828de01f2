"""What reading an input file left out, line by line: blank lines, lines naming no entity, invalid lines.

The trainer and the offline scorer count them the same way for raw logs and JSON events, so their
summaries say what the daemon would have sent to its dead-letter topic or left without a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from logwarden.errors import DecodeError


@dataclass
class LineTally:
    """Lines of an input file that yield no event in a session, counted, never dropped in silence.

    A JSON line may be no usable event (bad JSON, no message), a raw or JSON line may name an entity
    the daemon refuses (``entity_refusal``): each is invalid, by reason.  ``first_invalid`` quotes the
    first, with its number (from 1) and the reason, so a wrong ``--message-field`` or a raw log given
    as JSON is named at once.
    """

    lines: int = 0
    blank_lines: int = 0
    invalid_lines: int = 0
    invalid_reasons: dict[str, int] = dataclass_field(default_factory=dict)
    first_invalid: str | None = None
    lines_without_entity: int = 0

    def count_invalid(self, line_number: int, error: DecodeError) -> None:
        """Count a line that yields no event, and quote it if it is the first (``line_number`` from 1)."""
        self.invalid_lines += 1
        self.invalid_reasons[error.reason] = self.invalid_reasons.get(error.reason, 0) + 1
        if self.first_invalid is None:
            self.first_invalid = f"line {line_number}: {error}"

    def as_dict(self) -> dict[str, object]:
        """The counts, as ``logwarden train`` and ``score`` print them."""
        counts: dict[str, object] = {
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "lines_without_entity": self.lines_without_entity,
            "invalid_lines": self.invalid_lines,
            "invalid_reasons": dict(self.invalid_reasons),
        }
        if self.first_invalid is not None:
            counts["first_invalid"] = self.first_invalid
        return counts
