"""A DaemonService built in the test process around fakes, for what a subprocess cannot show.

The real composition root (daemon/app.py) wires Kafka, SQLite and systemd; these tests hand in a
scripted consumer, a sink double and a MemoryStateStore so one batch or one rebalance can be
driven step by step.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logwarden.daemon.checkpoint import Checkpointer
from logwarden.daemon.config import EntityConfig, InputConfig
from logwarden.daemon.decode import MessageDecoder
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.kafka_client.group_commit import GroupCommitter
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.processor import BatchProcessor
from logwarden.daemon.service import DaemonService, LoopSettings
from logwarden.daemon.state.memory_store import MemoryStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.systemd import SystemdNotifier
from logwarden.model.bundle import load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.synthetic import ENTITY_REGEX

SETTINGS = LoopSettings(("in",), 100, 64, 1_000_000, 1e9, 1e9, 3, 5.0)
"""Topic "in", batches of 64, no checkpoint by count or time, no expiry: the test decides."""


class QuietSink:
    """An OutputSink with nothing to deliver."""

    alerts_topic = "alerts"
    dead_letter_topic = "dead-letters"
    scores_topic = None

    def flush(self, timeout_seconds: float | None = None) -> None:
        pass


def build_in_process_service(
    model_dir: Path,
    *,
    consumer: Any,
    sink: Any,
    offsets: dict[tuple[str, int], int],
    threshold: float | None = None,
    capacity: int = 100,
    ttl_seconds: float | None = None,
    allowed_lateness_seconds: float = 0.0,
    idle_time: Callable[[], float] = lambda: 0.0,
    on_close: Callable[[], None] = lambda: None,
    committer: GroupCommitter | None = None,
    wall_time: Callable[[], float] = time.time,
) -> tuple[DaemonService, EntityStateTable, MemoryStateStore]:
    """The service over raw lines with entity regex ``job_<n>``, its state table and its store.

    ``threshold`` defaults to the model's own; ``ttl_seconds`` to none (no session ends);
    ``idle_time`` is the clock by which partitions read to their end gain stream time (by default
    one that stands still, so results never depend on how fast the test ran), ``wall_time`` this
    host's clock, which no stream time passes; the store is open
    and holds no checkpoint yet.  Checkpoints commit to the group through ``committer`` if given,
    else nowhere.
    """
    bundle = load_bundle(model_dir)
    model, metadata = OnnxStepModel.load(bundle), bundle.metadata
    store = MemoryStateStore()
    store.open(StoreHeader(metadata.onnx_sha256, metadata.num_layers, metadata.state_size))
    table = EntityStateTable(
        metadata.num_layers, metadata.state_size, capacity, model.initial_h, model.initial_c
    )
    threshold = metadata.threshold if threshold is None else threshold
    settings = dataclasses.replace(
        SETTINGS,
        ttl_seconds=SETTINGS.ttl_seconds if ttl_seconds is None else ttl_seconds,
        allowed_lateness_seconds=allowed_lateness_seconds,
    )
    service = DaemonService(
        settings=settings,
        consumer=consumer,
        sink=sink,
        decoder=MessageDecoder.build(
            InputConfig(format="raw", entity=EntityConfig(regex=ENTITY_REGEX)), metadata
        ),
        processor=BatchProcessor(model, table),
        policy=AlertPolicy(threshold, metadata.count_gate),
        table=table,
        checkpointer=Checkpointer(
            flush_producer=sink.flush,
            store=store,
            table=table,
            commit_group=committer.commit if committer is not None else lambda offsets, budget: None,
            crash_points=CrashPoints(None),
        ),
        stored_offsets=offsets,
        metadata=metadata,
        threshold=threshold,
        crash_points=CrashPoints(None),
        notifier=SystemdNotifier(address=""),
        idle_time=idle_time,
        on_close=on_close,
        committer=committer,
        wall_time=wall_time,
    )
    return service, table, store
