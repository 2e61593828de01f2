"""The daemon's lifecycle: startup -> main loop (poll, score, alert, tick) -> shutdown.

Signal handlers only set flags (the first SIGTERM/SIGINT asks for a graceful stop, a second
one forces exit); the loop notices within one poll timeout, finishes its batch, checkpoints
and closes.  Watchdog pings come from the loop's tick, so a stuck loop stops pinging.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from types import FrameType
from typing import Any

import numpy as np
import structlog
from kafka import KafkaConsumer, TopicPartition

from logwarden.daemon.cadence import CheckpointCadence, CheckpointReason
from logwarden.daemon.checkpoint import Checkpointer, CheckpointResult, Offsets
from logwarden.daemon.checkpoint_log import CheckpointLog
from logwarden.daemon.clock import StreamClock
from logwarden.daemon.decode import DecodedEvent, MessageDecoder
from logwarden.daemon.emitter import Emitter
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.gc_tuning import collect_between_polls
from logwarden.daemon.input_positions import InputPositions
from logwarden.daemon.kafka_client.clients import OutputSink, input_position_required, poll_in_slices
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports
from logwarden.daemon.kafka_client.fetch_times import FetchTimes
from logwarden.daemon.kafka_client.group_commit import GROUP_COMMIT_TIMEOUT_SECONDS, GroupCommitter
from logwarden.daemon.kafka_client.rebalance import CheckpointingRebalanceListener
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.poll_batches import PLAUSIBLE_TIMESTAMP_MS, event_times, split_polled
from logwarden.daemon.processor import BatchProcessor
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.systemd import SystemdNotifier
from logwarden.errors import DecodeError
from logwarden.model.contract import ModelMetadata

log = structlog.get_logger("logwarden.daemon")

RUNNING_FLUSH_TIMEOUT_SECONDS = 30.0
"""How long a periodic checkpoint waits for the broker to acknowledge outputs before the daemon
gives up (exits non-zero, restarts, and replays from its last checkpoint)."""

LEAVE_GROUP_TIMEOUT_SECONDS = 2.0
"""Longest a stop waits for the coordinator to acknowledge that this member leaves the group."""


@dataclass(frozen=True)
class LoopSettings:
    """The knobs of the main loop, taken from the validated config."""

    topics: tuple[str, ...]
    poll_timeout_ms: int
    batch_max_events: int
    checkpoint_every_events: int
    checkpoint_interval_seconds: float
    ttl_seconds: float
    top_k: int
    shutdown_timeout_seconds: float
    expiry_check_seconds: float = 1.0
    group_id: str = ""
    allowed_lateness_seconds: float = 0.0
    """How far a partition's timestamps may go back: the idle sweep waits this long past the TTL, so
    it never ends a session that a late record of the same partition would have continued."""


@dataclass
class Counters:
    """Running totals, logged with every checkpoint and at shutdown."""

    events: int = 0
    alerts: int = 0
    dead_letters: int = 0
    session_ends: int = 0
    checkpoints: int = 0

    def as_dict(self) -> dict[str, int]:
        """The totals by name, copied for log lines."""
        return dict(self.__dict__)


class DaemonService:
    """Owns the loop; every collaborator is built by app.py and handed in."""

    def __init__(
        self,
        *,
        settings: LoopSettings,
        consumer: KafkaConsumer,
        sink: OutputSink,
        decoder: MessageDecoder,
        processor: BatchProcessor,
        policy: AlertPolicy,
        table: EntityStateTable,
        checkpointer: Checkpointer,
        stored_offsets: Offsets,
        metadata: ModelMetadata,
        threshold: float,
        crash_points: CrashPoints,
        notifier: SystemdNotifier,
        committer: GroupCommitter | None = None,
        on_close: Callable[[], None] = lambda: None,
        idle_time: Callable[[], float] = time.monotonic,
        corrupt_batches: CorruptBatchReports | None = None,
        fetch_times: FetchTimes | None = None,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        """``committer`` is the one ``checkpointer`` commits to the group with: the rebalance listener
        holds its commits and sends them asynchronously (daemon/kafka_client/rebalance.py).  Without one, the
        listener commits nothing itself.  ``corrupt_batches``: where the consumer's record reader
        reports the batches it skipped (daemon/kafka_client/compiled_records.py); each is dead-lettered.
        ``fetch_times``: when each partition's last fetch answer came (``watch_fetches``): a partition
        is known to be read to its end only as of then.  ``wall_time``: this host's clock, which no
        stream time passes."""
        self._settings = settings
        self._committer = committer if committer is not None else GroupCommitter(consumer)
        self._consumer = consumer
        self._sink = sink
        self._decoder = decoder
        self._processor = processor
        self._emitter = Emitter(sink, policy, metadata, threshold, settings.top_k)
        self._table = table
        self._checkpointer = checkpointer
        self._positions = InputPositions(stored_offsets, consumer, settings.group_id, fetch_times, idle_time)
        self._threshold = threshold
        self._crash = crash_points
        self._notifier = notifier
        self._on_close = on_close
        self._corrupt_batches = corrupt_batches
        # Each partition's time resumes at its entities' latest event: at most where it was.
        latest = table.last_seen_max_by_source()
        self._clock = StreamClock(
            {key: latest[key] for key in stored_offsets if key in latest},
            wall_time=wall_time,
            monotonic=idle_time,
        )
        self.counters = Counters()
        self.should_exit = False
        # When a stop was asked for, the time by which the process must be gone (shutdown timeout).
        self._stop_deadline: float | None = None
        self._leave_group_seconds = 0.0
        # Set when the loop raised: the batch in hand may be half applied, so nothing more is saved.
        self._loop_failed = False
        self._cadence = CheckpointCadence(
            settings.checkpoint_every_events, settings.checkpoint_interval_seconds, time.monotonic()
        )
        self._next_expiry_check = time.monotonic()
        self._checkpoint_log = CheckpointLog(
            table, self._clock, notifier, sink.dead_letter_topic, self.counters.as_dict(), decoder
        )
        self._released_partitions: set[tuple[str, int]] = set()
        # Between a revocation and the assignment that ends the rebalance (seconds, the JoinGroup):
        # the revocation saved and committed everything, and kafka-python still lists the revoked
        # partitions in ``assignment()`` (eager protocol), so a checkpoint then would commit
        # partitions this member has already handed over, refused as RebalanceInProgress.
        self._awaiting_assignment = False
        self._model_info = metadata.identity()
        gate = policy.count_gate
        self._count_gate_threshold = None if gate is None else gate.threshold
        self._rules = metadata.describe_rules()

    # -- lifecycle -------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: the first asks for a graceful stop, the second exits at once.

        Exiting at once is safe: the state on disk stays at its last checkpoint.
        """
        signal.signal(signal.SIGTERM, self.handle_exit_signal)
        signal.signal(signal.SIGINT, self.handle_exit_signal)

    def handle_exit_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT handler: a first signal requests a stop, a second exits at once (128 + signum)."""
        if self.should_exit:
            os._exit(128 + signum)
        self.request_stop()

    def request_stop(self) -> None:
        """Stop after the batch in hand, within ``shutdown_timeout_seconds`` from now.

        The budget starts now, not when the loop gets to the shutdown: a checkpoint that is waiting
        for an unreachable broker when the signal comes gives up by the same deadline.
        """
        self.should_exit = True
        self._start_stop_budget()

    def revocation_commit_seconds(self) -> float:
        """How long a revocation's group commit may wait: its usual bound, or while stopping what is
        left of the stop budget (at least 0.1 s) less the LeaveGroup's share, since
        ``consumer.close()`` revokes every partition, commits, and only then leaves the group."""
        if self._stop_deadline is None:
            return GROUP_COMMIT_TIMEOUT_SECONDS
        left = self._stop_deadline - time.monotonic() - self._leave_group_seconds
        return min(GROUP_COMMIT_TIMEOUT_SECONDS, max(0.1, left))

    def _close_consumer(self, left_seconds: float) -> None:
        """Close the consumer within ``left_seconds``, the rest of the stop budget.

        kafka-python's ``close()`` runs the revocation (our listener's group commit, bounded by
        ``revocation_commit_seconds``) and then waits up to its ``timeout_ms`` for the LeaveGroup
        answer: given the whole remainder each, a stop during a broker outage took the remainder
        twice (11 s for the default 8 s).  The LeaveGroup gets half of it, at most
        ``LEAVE_GROUP_TIMEOUT_SECONDS`` (a healthy coordinator answers in ms; an unanswered one
        only means the group notices the departure at the session timeout instead).
        """
        self._leave_group_seconds = min(LEAVE_GROUP_TIMEOUT_SECONDS, left_seconds / 2)
        self._consumer.close(autocommit=False, timeout_ms=int(self._leave_group_seconds * 1000))

    def _start_stop_budget(self) -> float:
        """The deadline of the stop, set at its first request (a signal, or the shutdown itself)."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self._settings.shutdown_timeout_seconds
            self._sink.give_up_at(self._stop_deadline)
        return self._stop_deadline

    def run(self) -> int:
        """Start, loop until asked to stop, shut down cleanly; returns the exit code.

        When the loop raises, the batch in hand may be half applied or its alerts half sent, so
        shutdown must not checkpoint it: the next start replays it from the last checkpoint.
        """
        self.startup()
        try:
            while not self.should_exit:
                self.run_once()
        except BaseException:
            self._loop_failed = True
            raise
        finally:
            self.shutdown(checkpoint=not self._loop_failed)
        return 0

    def startup(self) -> None:
        """Subscribe with the rebalance listener, log ``started`` and tell systemd the daemon is ready."""
        self._consumer.subscribe(
            list(self._settings.topics),
            listener=CheckpointingRebalanceListener(
                self, self._committer, self._consumer, self.revocation_commit_seconds
            ),
        )
        log.info(
            "started",
            topics=list(self._settings.topics),
            entities_restored=len(self._table),
            partitions_restored=len(self._positions.offsets),
            model=self._model_info,
            threshold=self._threshold,
            count_gate_threshold=self._count_gate_threshold,
            **self._rules,
        )
        self._notifier.ready()
        self._notifier.status("started; no save yet")

    def run_once(self) -> None:
        """One poll, its records in batches of at most ``batch_max_events``, and the periodic work."""
        # The last poll's records are freed by now, so a collection scans only what outlived them.
        collect_between_polls()
        with input_position_required(self._settings.group_id):
            polled = poll_in_slices(self._consumer, self._settings.poll_timeout_ms)
        # Dead-lettered before any checkpoint: the next one may cover offsets past the batch.
        skipped = self.dead_letter_corrupt_batches()
        # Ticking after every batch keeps the checkpoint cadence and the watchdog going through a
        # large poll; no rebalance can happen in between, as callbacks run only inside poll().
        batches = list(split_polled(polled, self._settings.batch_max_events))
        for batch in batches[:-1]:
            self.handle_records(batch)
            self.on_tick(records_in_hand=True)
        if batches:
            self.handle_records(batches[-1])
        # Only now, with the records before a skipped batch applied, may the saved offset pass it.
        self.pass_corrupt_batches(skipped)
        self.on_tick(input_idle=not polled)

    def on_tick(self, *, input_idle: bool = False, records_in_hand: bool = False) -> None:
        """Periodic work: idle expiry, a due checkpoint, the watchdog ping.

        ``records_in_hand``: batches of the last poll are still to be handled, so the consumer's
        positions run ahead of what was applied.  When a checkpoint is due is decided by
        ``CheckpointCadence`` (daemon/cadence.py).
        """
        wall = time.monotonic()
        if wall >= self._next_expiry_check:
            self._next_expiry_check = wall + self._settings.expiry_check_seconds
            self.expire_idle_entities(records_in_hand=records_in_hand)
        if self._checkpointer.in_flight:
            self.finish_checkpoint(wait=False)
        reason = self._cadence.due(wall, input_idle=input_idle, in_flight=self._checkpointer.in_flight)
        if reason is not None:
            # Paced while input flows, so the snapshot thread leaves the cores to the loop.
            self.checkpoint(reason, paced=not input_idle)
        elif not self._checkpointer.in_flight and self._committer.retry_due():
            self.retry_group_commit()
        self._notifier.watchdog()

    def retry_group_commit(self) -> None:
        """Commit again the saved offsets the group refused, when no checkpoint came to commit newer ones.

        Without it a refusal just before the input went quiet would leave the group behind the
        local state for as long as the quiet lasts: lag tools would show work left, and a
        partition's next owner would apply again what this instance saved.
        """
        partitions, refused = self._committer.retry_unconfirmed()
        if not partitions:
            return
        if refused is None:
            log.info("group_commit_retried", partitions=partitions)
        else:
            log.warning(
                "group_commit_refused",
                error=refused,
                note="committing the saved offsets again later, or with the next checkpoint",
            )

    def shutdown(self, *, checkpoint: bool = True) -> None:
        """Checkpoint what was processed (unless told not to), then close; bounded by the shutdown timeout.

        If the broker cannot acknowledge the last alerts in time, the checkpoint is not written
        and the next start replays from the previous one: late, never lost.  Every closing step
        runs even when an earlier one fails, so the state store is always closed (its lock
        released) and the ``shutdown`` line always written.
        """
        self._notifier.stopping()
        deadline = self._start_stop_budget()

        def remaining() -> float:
            return max(0.5, deadline - time.monotonic())

        try:
            if checkpoint:
                self.checkpoint("shutdown", flush_timeout_seconds=remaining(), wait=True)
        finally:
            closing = [
                ("consumer", lambda: self._close_consumer(remaining())),
                ("producer", lambda: self._sink.close(remaining())),
                ("checkpoint_writer", self._checkpointer.close),
                ("state_store", self._on_close),
                ("systemd_notifier", self._notifier.close),
            ]
            close_all(closing)
            # Counted from the stop request, which is when the shutdown budget started.
            stop_requested = deadline - self._settings.shutdown_timeout_seconds
            log.info(
                "shutdown", seconds=round(time.monotonic() - stop_requested, 3), **self.counters.as_dict()
            )

    # -- the work --------------------------------------------------------------------------
    def handle_records(self, polled: dict[TopicPartition, list[Any]]) -> None:
        """Decode, score and apply one polled batch; bad records go to the dead-letter topic."""
        decode = self._decoder.decode_one
        records: list[Any] = []
        events: list[DecodedEvent] = []
        partitions: list[int] = []
        topic_ids: list[int] = []
        bad: Counter[str] = Counter()
        fallbacks: list[float] = []  # per event: its partition's time, for a record without one
        for tp, batch in polled.items():
            decoded_before = len(events)
            for record in batch:
                try:
                    events.append(decode(record.value, record.key, record.timestamp))
                except DecodeError as exc:
                    self._emitter.dead_letter(record, exc)
                    bad[exc.reason] += 1
                    continue
                records.append(record)
            partitions.extend(repeat(tp.partition, len(events) - decoded_before))
            topic_ids.extend(repeat(self._table.topic_id_of(tp.topic), len(events) - decoded_before))
            if batch:
                key = (tp.topic, tp.partition)
                self._positions.applied(key, batch[-1].offset + 1)
                newest_ms = batch[-1].timestamp  # None from a legacy (magic 0) record
                if newest_ms is not None and newest_ms >= PLAUSIBLE_TIMESTAMP_MS:
                    self._clock.observe(key, newest_ms / 1000.0)
                else:
                    self._clock.start_at_wall(key)
                fallbacks.extend(repeat(self._clock.time_of(key), len(events) - decoded_before))
        processed = sum(len(batch) for batch in polled.values())
        self._cadence.record(processed)
        if bad:
            self.counters.dead_letters += sum(bad.values())
            self._checkpoint_log.bad_input(bad)
        if events:
            entities, event_ids, _, _ = zip(*events, strict=True)
            times = event_times(records, np.asarray(fallbacks, np.float64), self._clock.limit())
            self._clock.clamped += times.ahead > 0
            self._clock.stamped_in_the_past += times.past > 0
            self.score_and_alert(
                entities,
                np.asarray(event_ids, np.int64),
                np.asarray(partitions, np.int32),
                times.seconds,
                records,
                events,
                np.asarray(topic_ids, np.int32),
            )
        self._crash.reach("batch")

    def score_and_alert(
        self,
        entities: Sequence[str],
        event_ids: np.ndarray,
        partitions: np.ndarray,
        times: np.ndarray,
        records: list[Any],
        events: list[DecodedEvent],
        topic_ids: np.ndarray,
    ) -> None:
        """Score a decoded batch, send its alerts and scores, and update the counters.

        Sessions that a late event ended (TTL passed) are alerted on first, like idle-expired ones.
        ``partitions`` and ``topic_ids`` (the table's) say where each event came from.
        """
        scored = self._processor.process(
            entities, event_ids, partitions, times, self._settings.ttl_seconds, topic_ids
        )
        if scored.ended.entities:
            self.counters.alerts += self._emitter.session_end_alerts(scored.ended)
            self.counters.session_ends += len(scored.ended.entities)
        self.counters.events += len(entities)
        self.counters.alerts += self._emitter.event_alerts(
            entities, event_ids, scored.scores, scored.log_probs, records, events
        )
        self._emitter.event_scores(entities, event_ids, scored.scores, records)

    def dead_letter_corrupt_batches(self) -> dict[tuple[str, int], int]:
        """Dead-letter the batches the record reader skipped in the last poll: raw bytes, coordinates, why.

        Returns, for each partition, the offset reading resumed at.  One ``corrupt_batch`` warning
        per batch: each means damaged data on the broker, rare and worth a look.
        """
        if self._corrupt_batches is None:
            return {}
        resumed: dict[tuple[str, int], int] = {}
        for corrupt in self._corrupt_batches.take_all():
            detail = corrupt.detail()
            self._emitter.corrupt_batch(corrupt, detail)
            key = (corrupt.topic, corrupt.partition)
            resumed[key] = max(resumed.get(key, 0), corrupt.resume_offset)
            self.counters.dead_letters += 1
            self._checkpoint_log.bad_input({"corrupt_batch": 1})
            log.warning(
                "corrupt_batch",
                topic=corrupt.topic,
                partition=corrupt.partition,
                offset=corrupt.base_offset,
                unread_offset=corrupt.unread_offset,
                resume_offset=corrupt.resume_offset,
                bytes=len(corrupt.raw),
                error=detail,
                dead_letter_topic=self._sink.dead_letter_topic,
            )
        return resumed

    def pass_corrupt_batches(self, resumed: dict[tuple[str, int], int]) -> None:
        """Move the saved offsets past skipped batches (``InputPositions.pass_skipped``)."""
        if resumed:
            self._positions.pass_skipped(resumed)
            self._cadence.mark_dirty()

    def expire_idle_entities(self, *, records_in_hand: bool = False) -> None:
        """End the sessions of entities idle longer than the TTL: score END, alert, forget them.

        Each entity is judged by its own partition's stream time (``StreamClock``).  An entity
        this sweep has not reached yet is ended all the same when its next event comes late
        (``BatchProcessor.process``), with the same score and the same alert id.
        """
        caught_up = self._positions.caught_up(records_in_hand=records_in_hand)
        self._clock.advance(caught_up)
        clocks = self._clock.by_source
        # An assigned partition with no time yet and records that may be unread (not fetched yet, or
        # not restored after a restart) holds back its partition number: a co-partitioned topic read
        # first must not end sessions whose next events wait in it.
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        clocks.update(dict.fromkeys(assigned - clocks.keys() - set(caught_up), float("-inf")))
        expired = self._table.expire_idle(
            clocks, self._settings.ttl_seconds + self._settings.allowed_lateness_seconds
        )
        if not expired:
            return
        entities = [entity for entity, _ in expired]
        slots = np.asarray([slot for _, slot in expired], np.int64)
        alerts = self._emitter.session_end_alerts(self._processor.end_sessions(entities, slots))
        self._table.remove(entities)
        self._cadence.mark_dirty()
        self.counters.session_ends += len(entities)
        self.counters.alerts += alerts
        log.info(
            "sessions_expired",
            entities=len(entities),
            alerts=alerts,
            ttl_seconds=self._settings.ttl_seconds,
        )

    def checkpoint(
        self,
        reason: CheckpointReason,
        flush_timeout_seconds: float = RUNNING_FLUSH_TIMEOUT_SECONDS,
        *,
        wait: bool = False,
        paced: bool = False,
    ) -> None:
        """Run the checkpoint order (checkpoint.py) for everything processed so far.

        A periodic checkpoint's snapshot may still be written in the background when this
        returns (it is finished by ``on_tick``); ``wait`` finishes it here, as rebalances and
        shutdown need.  ``paced`` is passed to ``Checkpointer.start``.
        """
        if self._checkpointer.in_flight:
            self.finish_checkpoint(wait=True)
        if reason in ("periodic", "caught_up") and (not self._cadence.dirty or self._awaiting_assignment):
            return
        result = self._checkpointer.start(
            self._positions.offsets, flush_timeout_seconds, self._released_partitions, paced=paced
        )
        self._released_partitions = set()
        self._cadence.taken(time.monotonic(), reason)
        self._checkpoint_log.started(reason, self.counters.as_dict())
        if result is not None:
            self.log_checkpoint(result)
        elif wait:
            self.finish_checkpoint(wait=True)

    def finish_checkpoint(self, *, wait: bool) -> None:
        """Complete a checkpoint whose snapshot was written in the background (step 3 and the log line)."""
        result = self._checkpointer.wait() if wait else self._checkpointer.poll_completed()
        if result is not None:
            self.log_checkpoint(result)

    def log_checkpoint(self, result: CheckpointResult) -> None:
        """Count a finished checkpoint and log it (which also updates systemd's status line)."""
        self.counters.checkpoints += 1
        self._checkpoint_log.finished(result, self.counters.checkpoints)

    # -- rebalances ------------------------------------------------------------------------
    def handle_assigned(
        self, assigned: Collection[TopicPartition], group_offsets: Mapping[TopicPartition, int] | None = None
    ) -> None:
        """Resume each partition from the local checkpoint, which is authoritative over the group.

        Partitions this instance processed before but no longer owns are released first.
        """
        self._awaiting_assignment = False
        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()} | {
            (tp.topic, tp.partition) for tp in assigned
        }
        released = self._positions.not_owned(owned)
        if released:
            self.release_partitions(released)
        resumed = self._positions.resume(assigned)
        log.info(
            "partitions_assigned",
            partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in assigned),
            resumed=resumed,
        )
        rewound = {
            name: {"saved": saved, "group": group, "records": group - saved}
            for tp in assigned
            if (name := f"{tp.topic}/{tp.partition}") in resumed
            and (group := (group_offsets or {}).get(tp)) is not None
            and group > (saved := resumed[name])
        }
        if rewound:
            log.warning(
                "partitions_rewound",
                partitions=rewound,
                note="this instance's own checkpoint is behind the group's committed offset: another "
                "instance processed these records meanwhile; they are read and scored again here and "
                "their alerts sent again under the same alert_ids",
            )

    def release_partitions(self, released: list[tuple[str, int]]) -> None:
        """Forget partitions another instance now owns: their entities' state and their saved offsets.

        Their entities are dropped without scoring END (their sessions go on elsewhere), and the
        next start on them resumes from the group's committed offsets, not a stale local one.  An
        entity goes with the topic-partition of its last event.
        """
        entities = self._table.entities_in(released)
        self._table.remove(entities, reason="released")
        self._positions.forget(released)
        self._clock.forget(released)
        self._released_partitions.update(released)
        self._cadence.mark_dirty()
        log.info(
            "partitions_released",
            partitions=[f"{topic}/{partition}" for topic, partition in released],
            entities_dropped=len(entities),
        )
        unsubscribed = sorted({topic for topic, _ in released} - set(self._settings.topics))
        if unsubscribed:
            # The saved state of a topic taken out of kafka.input_topics: no other instance carries
            # these sessions on, and their ends are never scored.
            log.warning(
                "topics_unsubscribed",
                topics=unsubscribed,
                note="saved sessions of topics no longer in kafka.input_topics were dropped without "
                "their ends scored; put a topic back in the list to keep reading it",
            )

    def handle_revoked(self, revoked: Collection[TopicPartition], *, lost: bool = False) -> None:
        """Checkpoint before partitions move, so their next owner starts where we stopped.

        Called by the rebalance listener (daemon/kafka_client/rebalance.py), which sends the
        checkpoint's group commit, and by kafka-python from ``consumer.close()``.  ``lost``: the
        group already gave the partitions to another member (this one missed its session); the
        local checkpoint is still taken.  When the loop or a checkpoint failed, nothing more may be
        saved (see ``run`` and ``Checkpointer``): the partitions go and the next owner replays them
        from the last checkpoint.
        """
        event = "partitions_lost" if lost else "partitions_revoked"
        partitions = sorted(f"{tp.topic}/{tp.partition}" for tp in revoked)
        if self._loop_failed or self._checkpointer.failed:
            log.warning(
                event,
                partitions=partitions,
                checkpoint="skipped after a failure; the next owner replays from the last checkpoint",
            )
            return
        if self._checkpointer.in_flight:
            self.finish_checkpoint(wait=True)
        if revoked and self._cadence.dirty:
            self.checkpoint("rebalance", wait=True)
        self._awaiting_assignment = bool(revoked) and not lost
        (log.warning if lost else log.info)(event, partitions=partitions)


def close_all(steps: Sequence[tuple[str, Callable[[], None]]]) -> None:
    """Run every closing step; one that fails is logged (``close_failed``) and the next runs.

    Nothing is raised: whatever mattered was decided by the shutdown checkpoint before (its flush
    delivered every record, or it failed and its error is the one the caller sees); a client that
    cannot close cleanly after that must not hide that error, nor leave the state lock held.
    """
    for name, close in steps:
        try:
            close()
        except Exception as exc:
            log.warning("close_failed", step=name, error=f"{type(exc).__name__}: {exc}")
