"""The reserved output classes every model has before its events: START, END and UNKNOWN.

Apart from ``contract.py`` so that the modules ``contract.py`` itself imports (the transition rule)
can name them too; ``contract.py`` re-exports them.
"""

from __future__ import annotations

START_ID = 0
END_ID = 1
UNKNOWN_ID = 2
FIRST_EVENT_ID = 3
RESERVED_TOKENS = ("<START>", "<END>", "<UNKNOWN>")
