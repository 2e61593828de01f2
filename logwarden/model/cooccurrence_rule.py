"""The co-occurrence rule: an event alerts when the session already holds an event it never met.

Two events "met" when one training session contains both, in any order and at any distance.
On HDFS the training sessions contain 79 of the 91 pairs of their 14 event keys, and no training
session holds a pair that no other holds; the twelve missing pairs all join a replication event
(ask to replicate, start transfer, transmitted, received from a peer) to a deletion or a serving
event.  The anomalies the model scores lowest (7–10.5 nats, below its threshold) are exactly
blocks that were replicated and later deleted: each step looks ordinary next to its neighbours,
so neither the LSTM nor the transition rule sees them, while the pair is a fact of the training
data, the same for every training draw.  ``COOCCURRENCE_PENALTY`` nats are added to the surprise
of an event whose arrival completes such a pair, which puts it far above any threshold.

It lives in the ONNX graph, as the transition rule does (``train/rules_graph.py``): the graph
carries the set of *watched* events the entity has had so far (those with at least one partner
they never met) as the bits of one float in its state, so the daemon, the state store and the
offline scorer run it unchanged.  A float32 holds whole numbers below 2**24 exactly, hence at most
``MAX_WATCHED_EVENTS`` watched events.  The rule is learned only when the training sessions show
that pairs repeat (``MAX_ALARM_SHARE``; HDFS: no training session holds a pair no other holds).
Pure: numpy only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from logwarden.errors import shown
from logwarden.model.count_gate import MAX_ALARM_SHARE, MIN_SESSIONS
from logwarden.model.tokens import FIRST_EVENT_ID
from logwarden.model.transition_rule import is_id_pair, rule_object, rule_penalty

COOCCURRENCE_PENALTY = 100.0
"""Nats added to the surprise of an event that completes a pair no training session contains
(the transition rule's penalty: a score of 100 or more in an alert reads as a rule)."""

MAX_WATCHED_EVENTS = 24
"""Most events the rule can watch: their set travels as the bits of one float32, exact below 2**24."""


def session_pairs(session: Iterable[int]) -> set[tuple[int, int]]:
    """The unordered pairs (smaller id first) of distinct events in one session, reserved ids left out."""
    events = sorted({int(e) for e in session if int(e) >= FIRST_EVENT_ID})
    return set(itertools.combinations(events, 2))


@dataclass(frozen=True)
class CooccurrenceRule:
    """The pairs of events that training sessions contain together, as (smaller id, larger id)."""

    pairs: tuple[tuple[int, int], ...]
    penalty: float = COOCCURRENCE_PENALTY

    @cached_property
    def _met(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.pairs)

    def forbidden(self, vocab_size: int) -> np.ndarray:
        """bool [vocab_size, vocab_size], symmetric: ``forbidden[a, b]`` when a and b never met.

        Only events (ids from ``FIRST_EVENT_ID``) are ever forbidden: START, END and UNKNOWN meet
        everything (an unknown event alerts on its own).
        """
        met = np.zeros((vocab_size, vocab_size), bool)
        if self.pairs:
            first, second = np.array(self.pairs, np.int64).T
            met[first, second] = met[second, first] = True
        forbidden = ~met
        forbidden[:FIRST_EVENT_ID, :] = False
        forbidden[:, :FIRST_EVENT_ID] = False
        np.fill_diagonal(forbidden, False)
        return forbidden

    def watched(self, vocab_size: int) -> list[int]:
        """The events with at least one partner they never met, in id order: the bits of the state."""
        return np.flatnonzero(self.forbidden(vocab_size).any(axis=1)).tolist()

    def unseen(self, session: np.ndarray) -> int:
        """How many events of ``session`` (int event ids) arrive after an event they never met."""
        met = self._met
        earlier: set[int] = set()
        count = 0
        for event in np.asarray(session, np.int64).tolist():
            if event >= FIRST_EVENT_ID:
                if any(
                    other != event and (min(other, event), max(other, event)) not in met for other in earlier
                ):
                    count += 1
                earlier.add(event)
        return count

    def describe(self) -> dict[str, float | int]:
        """How many pairs the rule knows and its penalty, as ``train``, ``run --check`` and the daemon's
        ``started`` line report it."""
        return {"pairs": len(self.pairs), "penalty": self.penalty}

    def to_dict(self) -> dict[str, Any]:
        """The ``cooccurrence_rule`` object of ``model.json``."""
        return {"penalty": self.penalty, "pairs": [list(pair) for pair in self.pairs]}

    @classmethod
    def from_dict(cls, raw: object, vocab_size: int) -> CooccurrenceRule:
        """Parse ``model.json``'s ``cooccurrence_rule``; ValueError naming the key of a bad value."""
        raw = rule_object(raw, "cooccurrence_rule")
        penalty = rule_penalty(raw, "cooccurrence_rule")
        raw_pairs = raw.get("pairs")
        if not isinstance(raw_pairs, list):
            raise ValueError(f"cooccurrence_rule.pairs must be a list, got {shown(raw_pairs)}")
        pairs = []
        for index, pair in enumerate(raw_pairs):
            if not (is_id_pair(pair, FIRST_EVENT_ID, vocab_size) and pair[0] < pair[1]):
                raise ValueError(
                    f"cooccurrence_rule.pairs[{index}] must be two event ids from {FIRST_EVENT_ID} to "
                    f"{vocab_size - 1}, the smaller first, got {shown(pair)}"
                )
            pairs.append((pair[0], pair[1]))
        rule = cls(tuple(pairs), penalty)
        watched = len(rule.watched(vocab_size))
        if watched > MAX_WATCHED_EVENTS:
            raise ValueError(
                f"cooccurrence_rule.pairs leave {watched} events with a partner they never met; the "
                f"graph's state holds at most {MAX_WATCHED_EVENTS}"
            )
        return rule


_HELD_CHUNK_ROWS = 8192
"""Sessions per block of the session x event matrix ``learn_cooccurrence_rule`` multiplies, so its
memory stays bounded (8,192 x 1,000 events: 32 MB) however many sessions training reads."""


def _held_events(sessions: Sequence[np.ndarray], vocab_size: int) -> Iterator[np.ndarray]:
    """float32 [chunk, vocab_size] blocks: 1 where the session of the row holds the event of the
    column, reserved ids left out.  Pair counts are matrix products of these, so sessions holding
    hundreds of distinct templates stay cheap."""
    for start in range(0, len(sessions), _HELD_CHUNK_ROWS):
        chunk = sessions[start : start + _HELD_CHUNK_ROWS]
        held = np.zeros((len(chunk), vocab_size), np.float32)
        for row, session in enumerate(chunk):
            held[row, np.asarray(session, np.int64)] = 1.0
        held[:, :FIRST_EVENT_ID] = 0.0
        yield held


@dataclass(frozen=True)
class CooccurrenceDecision:
    """The learned rule, or None, and the summary ``model.json`` records either way."""

    rule: CooccurrenceRule | None
    summary: dict[str, Any]


def learn_cooccurrence_rule(sessions: Sequence[np.ndarray], vocab_size: int) -> CooccurrenceDecision:
    """The rule over all training sessions (fit and held out), or why training declines it.

    Declined with fewer than ``MIN_SESSIONS`` sessions, when more than ``MAX_ALARM_SHARE`` of them
    hold a pair no other session holds (pairs do not repeat), when every pair of events met (the
    rule would never fire), and when more than ``MAX_WATCHED_EVENTS`` events have a partner they
    never met.
    """
    nonempty = [s for s in sessions if len(s)]
    together = np.zeros((vocab_size, vocab_size), np.float64)
    for held in _held_events(nonempty, vocab_size):
        together += held.T @ held  # sessions holding both events (the diagonal: each event alone)
    np.fill_diagonal(together, 0.0)
    unique = (together == 1.0).astype(np.float32)
    once = sum(
        int((((held @ unique) * held).sum(axis=1) > 0).sum()) for held in _held_events(nonempty, vocab_size)
    )
    first, second = np.nonzero(np.triu(together > 0))
    rule = CooccurrenceRule(tuple(zip(first.tolist(), second.tolist(), strict=True)))
    watched = rule.watched(vocab_size)
    count = len(nonempty)
    summary: dict[str, Any] = {
        "sessions": count,
        "pairs": len(rule.pairs),
        "sessions_with_a_unique_pair": once,
        "estimated_unseen_share": round(once / max(count, 1), 6),
        "watched_events": len(watched),
    }
    if count < MIN_SESSIONS:
        summary["off"] = f"fewer than {MIN_SESSIONS} training sessions to judge whether pairs repeat"
    elif once > MAX_ALARM_SHARE * count:
        summary["off"] = (
            f"{once} of {count} training sessions hold a pair of events no other holds "
            f"(more than {MAX_ALARM_SHARE:.1%}): pairs do not repeat"
        )
    elif not watched:
        summary["off"] = "every pair of events occurs together in some training session"
    elif len(watched) > MAX_WATCHED_EVENTS:
        summary["off"] = (
            f"{len(watched)} events have a partner they never met, more than the "
            f"{MAX_WATCHED_EVENTS} the graph's state can watch"
        )
    if "off" in summary:
        return CooccurrenceDecision(None, summary)
    summary["penalty"] = COOCCURRENCE_PENALTY
    return CooccurrenceDecision(rule, summary)
