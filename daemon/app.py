"""The composition root: the only module that wires config, onnxruntime, SQLite and Kafka together."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import structlog
from kafka import KafkaConsumer

from logwarden import __version__
from logwarden.daemon.checkpoint import Checkpointer
from logwarden.daemon.config import DaemonConfig, KafkaConfig, load_config
from logwarden.daemon.decode import MessageDecoder
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.gc_tuning import tune_for_event_loop
from logwarden.daemon.kafka_client import reader_install
from logwarden.daemon.kafka_client.clients import (
    KAFKA_MESSAGES_ALWAYS_SHOWN,
    POLL_SLICE_MS,
    OutputSink,
    build_consumer,
    build_producer,
    topics_missing,
)
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports
from logwarden.daemon.kafka_client.fetch_times import FetchTimes, watch_fetches
from logwarden.daemon.kafka_client.group_commit import GroupCommitter
from logwarden.daemon.kafka_client.poll_spin import stop_poll_spins
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.processor import BatchProcessor
from logwarden.daemon.service import DaemonService, LoopSettings
from logwarden.daemon.state.memory_budget import check_model_table_fits
from logwarden.daemon.state.sqlite_store import SavedState, SqliteStateStore, inspect_saved_state
from logwarden.daemon.state.store import StoreHeader
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.systemd import SystemdNotifier
from logwarden.daemon.training_input import training_input_differences
from logwarden.errors import ConfigError, DeliveryError, StateStoreError
from logwarden.logs import configure_logging, forward_library_logs
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import ModelMetadata
from logwarden.model.runtime import OnnxStepModel

log = structlog.get_logger("logwarden.daemon")

SOFTWARE_REPORTED = ("kafka-python", "aiokafka", "crc32c", "onnxruntime", "numpy")
"""The libraries on the event path whose versions the start-up line reports, by distribution name."""


def software_versions() -> dict[str, str]:
    """logwarden's version, Python's and those of the libraries on the event path.

    Why: a bug report or a fleet audit starts from what runs; the start-up log line and ``--check``
    carry it, so nobody has to log in and ask pip.
    """
    versions = {"logwarden": __version__, "python": platform.python_version()}
    for name in SOFTWARE_REPORTED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def loop_settings(config: DaemonConfig) -> LoopSettings:
    """The main loop's knobs from the validated config."""
    return LoopSettings(
        topics=tuple(config.kafka.input_topics),
        poll_timeout_ms=config.processing.poll_timeout_ms,
        batch_max_events=config.processing.batch_max_events,
        checkpoint_every_events=config.state.checkpoint_every_events,
        checkpoint_interval_seconds=config.state.checkpoint_interval_seconds,
        ttl_seconds=config.state.ttl_seconds,
        allowed_lateness_seconds=config.state.allowed_lateness_seconds,
        top_k=config.model.top_k,
        shutdown_timeout_seconds=config.shutdown.timeout_seconds,
        group_id=config.kafka.group_id,
    )


def install_record_reader(consumer: KafkaConsumer, compiled: bool) -> CorruptBatchReports | None:
    """Give the consumer logwarden's record reader; log which decoder reads the input.

    Returns where skipped corrupt batches are reported, or None when kafka-python's own reader
    stays (a corrupt batch then stops the daemon, as kafka-python raises on it).
    """
    reports = CorruptBatchReports()
    reader = reader_install.install(consumer, reports, compiled=compiled)
    corrupt_batches = "dead_lettered" if reader.skips_corrupt_batches else "stop_the_daemon"
    if reader.compiled:
        log.info("record_decoder", decoder="compiled", library="aiokafka", corrupt_batches=corrupt_batches)
    elif compiled or not reader.skips_corrupt_batches:
        # Still correct, only slower: each record costs about 3.4 us more CPU.
        log.warning(
            "record_decoder", decoder="kafka-python", reason=reader.reason, corrupt_batches=corrupt_batches
        )
    else:
        log.info(
            "record_decoder", decoder="kafka-python", reason=reader.reason, corrupt_batches=corrupt_batches
        )
    return reports if reader.skips_corrupt_batches else None


def watch_input_fetches(consumer: KafkaConsumer) -> FetchTimes | None:
    """Note when each input partition's fetch responses come, so a stale high watermark (brokers out
    of reach) is not taken for a quiet partition; None, with a warning, where it cannot be watched."""
    times = FetchTimes()
    reason = watch_fetches(consumer, times)
    if not reason:
        return times
    log.warning(
        "fetch_times_unavailable",
        reason=reason,
        note="while no broker can be reached, idle sessions end as if their partitions were quiet",
    )
    return None


def keep_polls_from_spinning(consumer: KafkaConsumer) -> None:
    """Stop kafka-python's poll spinning while the brokers are out of reach (a core and hundreds of
    MB an outage, daemon/kafka_client/poll_spin.py); a warning where this kafka-python differs."""
    reason = stop_poll_spins(consumer, POLL_SLICE_MS)
    if reason:
        log.warning(
            "poll_spin_unchanged",
            reason=reason,
            note="while no broker answers, polls may spin on a core and hold memory until requests time out",
        )


def check_topics(consumer: KafkaConsumer, kafka: KafkaConfig) -> None:
    """Stop at start when an output topic is missing; warn when an input topic is.

    Every alert would fail without its output topic, so the daemon stops (exit 1, restarted).
    A consumer group may subscribe to a topic before it exists, so a missing input topic is only
    a warning: on a typo in ``kafka.input_topics`` the daemon would otherwise idle without a word.
    """
    outputs = list(kafka.output_topics().values())
    missing = topics_missing(consumer, [*kafka.input_topics, *outputs])
    missing_outputs = [topic for topic in outputs if topic in missing]
    if missing_outputs:
        names = ", ".join(repr(topic) for topic in missing_outputs)
        one = len(missing_outputs) == 1
        noun, does, it = ("topic", "does", "it") if one else ("topics", "do", "them")
        raise DeliveryError(
            f"output {noun} {names} {does} not exist, or this client may not describe {it}: create {it} "
            "before starting logwarden, which never creates topics (deploy/README.md, section 5)"
        )
    missing_inputs = [topic for topic in kafka.input_topics if topic in missing]
    if missing_inputs:
        log.warning(
            "input_topics_missing",
            topics=missing_inputs,
            note="not listed by the brokers (absent, or not visible to this client); the daemon reads "
            "them once they exist and its metadata shows them (kafka.consumer.metadata_max_age_ms)",
        )


def build_service(config: DaemonConfig) -> DaemonService:
    """Load the model and the local state, connect to Kafka, and hand everything to the service."""
    bundle = load_bundle(config.model.path)
    model = OnnxStepModel.load(bundle, intra_op_threads=config.processing.onnx_threads)
    metadata = bundle.metadata
    decoder = MessageDecoder.build(config.input, metadata)
    differences = training_input_differences(config.input, metadata)
    if differences:
        log.warning("input_differs_from_training", differences=differences)
    threshold = metadata.threshold if config.model.threshold is None else config.model.threshold
    check_model_table_fits(config.state.max_entities, metadata)
    try:
        table = EntityStateTable(
            num_layers=metadata.num_layers,
            hidden_size=metadata.state_size,
            capacity=config.state.max_entities,
            initial_h=model.initial_h,
            initial_c=model.initial_c,
        )
    except MemoryError as exc:
        raise ConfigError(
            f"state.max_entities: a table of {config.state.max_entities:,} entities cannot be allocated "
            f"({exc or 'out of memory'}); lower it"
        ) from exc
    store = SqliteStateStore(config.state.dir)
    store.open(store_header(metadata))
    evicted = store.evict_least_recently_seen(table.capacity)
    if evicted:
        # The operator lowered state.max_entities below what was saved: keep the most recently seen,
        # as the running table would have.
        log.warning(
            "entities_evicted",
            evicted=evicted,
            max_entities=table.capacity,
            at="start",
            note="the saved state holds more entities than state.max_entities; the least recently "
            "seen were dropped without scoring their end",
        )
    rows, stored_offsets = store.load()
    try:
        table.load_rows(rows)
    except StateStoreError as exc:
        if str(store.path) in str(exc):
            raise
        raise StateStoreError(f"{store.path}: {exc}") from exc
    log.info("kafka_connecting", bootstrap_servers=list(config.kafka.bootstrap_servers))
    consumer = build_consumer(
        config.kafka.bootstrap_servers, config.kafka.group_id, config.kafka.consumer_options()
    )
    try:
        check_topics(consumer, config.kafka)
        corrupt_batches = install_record_reader(consumer, config.kafka.compiled_record_decoder)
        fetch_times = watch_input_fetches(consumer)
        keep_polls_from_spinning(consumer)
        producer = build_producer(config.kafka.bootstrap_servers, config.kafka.producer_options())
    except BaseException:
        consumer.close(autocommit=False)
        raise
    sink = OutputSink(
        producer,
        config.kafka.alerts_topic,
        config.kafka.dead_letter_topic,
        config.kafka.scores_topic,
        config.kafka.dead_letter_max_bytes,
    )
    sink.warm_up()
    crash_points = CrashPoints.from_environment()
    committer = GroupCommitter(consumer)
    checkpointer = Checkpointer(
        flush_producer=sink.flush,
        store=store,
        table=table,
        commit_group=committer.commit,
        crash_points=crash_points,
        background=True,
    )
    return DaemonService(
        settings=loop_settings(config),
        consumer=consumer,
        sink=sink,
        decoder=decoder,
        processor=BatchProcessor(model, table),
        policy=AlertPolicy.for_model(metadata, config.model.threshold, count_gate=config.model.count_gate),
        table=table,
        checkpointer=checkpointer,
        stored_offsets=stored_offsets,
        metadata=metadata,
        threshold=threshold,
        crash_points=crash_points,
        notifier=SystemdNotifier(),
        committer=committer,
        on_close=store.close,
        corrupt_batches=corrupt_batches,
        fetch_times=fetch_times,
    )


def _count_gate_threshold(metadata: ModelMetadata, config: DaemonConfig) -> float | None:
    """The count gate's threshold the daemon will apply, or None (no gate, or ``model.count_gate: false``)."""
    policy = AlertPolicy.for_model(metadata, config.model.threshold, count_gate=config.model.count_gate)
    return None if policy.count_gate is None else policy.count_gate.threshold


def store_header(metadata: ModelMetadata) -> StoreHeader:
    """What the state store must have been written for: this model's graph and state shape."""
    return StoreHeader(
        model_sha256=metadata.onnx_sha256, num_layers=metadata.num_layers, hidden_size=metadata.state_size
    )


def check_saved_state(config: DaemonConfig, metadata: ModelMetadata) -> SavedState:
    """What ``run --check`` can say of the saved state before a start: refused (exit 6) where the start
    would refuse it (another model, damage), the most common
    mistake of a model upgrade.  Read only, so it may run beside the daemon."""
    return inspect_saved_state(config.state.dir, store_header(metadata))


def run_daemon(config_path: Path, *, check_only: bool = False) -> int:
    """``logwarden run``: validate, log the effective config once (secrets masked), serve until stopped."""
    config = load_config(config_path)
    configure_logging(config.logging.level)
    if check_only:
        bundle = load_bundle(config.model.path)
        # The graph is opened as at start, so a model.onnx that disagrees with model.json fails here.
        OnnxStepModel.load(bundle, intra_op_threads=config.processing.onnx_threads)
        MessageDecoder.build(config.input, bundle.metadata)
        check_model_table_fits(config.state.max_entities, bundle.metadata)
        saved = check_saved_state(config, bundle.metadata)
        configured = config.model.threshold
        report = {
            "config": config.as_loggable(),
            "model": bundle.metadata.model_version,
            "metadata_sha256": bundle.metadata.metadata_sha256,
            # The alert threshold in force: model.threshold, or the model's calibrated one.
            "threshold": bundle.metadata.threshold if configured is None else configured,
            "count_gate_threshold": _count_gate_threshold(bundle.metadata, config),
            **bundle.metadata.describe_rules(),
            "state": {
                "path": str(saved.path),
                "entities_saved": saved.entities or 0,
                # What the start will drop, least recently seen first, to fit state.max_entities.
                "entities_to_evict": max(0, (saved.entities or 0) - config.state.max_entities),
            },
            "software": software_versions(),
        }
        differences = training_input_differences(config.input, bundle.metadata)
        if differences:
            report["input_differs_from_training"] = differences
        print(json.dumps(report, default=str))
        return 0
    log.info("config", software=software_versions(), **config.as_loggable())
    forward_library_logs("kafka", config.logging.kafka_level, KAFKA_MESSAGES_ALWAYS_SHOWN)
    service = build_service(config)
    service.install_signal_handlers()
    tune_for_event_loop()
    return service.run()
