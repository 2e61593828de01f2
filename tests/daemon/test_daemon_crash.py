"""Crash consistency of the daemon: SIGKILL anywhere, then the state equals an uninterrupted run.

The real daemon runs as a subprocess against the test broker and is killed with SIGKILL at
random moments and at every step of the checkpoint order (``LOGWARDEN_CRASH_AT``, see
daemon/faults.py).  A final clean run drains the input; its SQLite checkpoint is then compared
with the offline oracle (oracle.py): per entity the same number of applied events, the same
(h, c) within 1e-5, and every expected ``alert_id`` on the alerts topic (duplicates allowed).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_harness import DaemonProcess, committed_offsets, daemon_config, keyed_records, produce_records
from in_process_service import build_in_process_service
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError
from kafka_broker import read_all
from oracle import OracleResult, fold_records, load_checkpoint, state_differences

from logwarden.daemon.checkpoint import CHECKPOINT_STEPS
from logwarden.daemon.config import DaemonConfig, load_config
from logwarden.daemon.faults import CRASH_ENV
from logwarden.errors import DeliveryError
from logwarden.synthetic import generate_logs

pytestmark = pytest.mark.slow

PARTITIONS = 3
KILLED = -signal.SIGKILL
CRASH_SETTINGS = {
    # TTL and capacity never fire: the oracle folds every event of an entity into one session.
    "state": {"ttl_seconds": 1e9, "max_entities": 100_000, "checkpoint_every_events": 200},
    # Small batches and frequent checkpoints put many batches and checkpoints in a short stream.
    "processing": {"batch_max_events": 64},
}
# Below the model's calibrated threshold, so that a few hundred events alert and the alert check has teeth.
ALERT_THRESHOLD = 3.0
RANDOM_KILLS = 10
EXTERNAL = "external"


@dataclass
class CrashRig:
    """One input topic and everything a daemon run against it needs; a fresh group and state per rig."""

    bootstrap: str
    workdir: Path
    input_topic: str
    alerts_topic: str
    config: dict[str, Any]
    group: str = field(init=False)
    daemons: list[DaemonProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.group = self.config["kafka"]["group_id"]

    @property
    def state_dir(self) -> Path:
        return Path(self.config["state"]["dir"])

    def start(self, crash_at: str | None = None) -> DaemonProcess:
        env = {CRASH_ENV: crash_at} if crash_at else {}
        daemon = DaemonProcess.start(self.workdir, self.config, env=env)
        self.daemons.append(daemon)
        return daemon

    def kill_survivors(self) -> None:
        """SIGKILL any daemon of this rig still running (a failed test must not leave one behind)."""
        for daemon in self.daemons:
            daemon.kill()

    def loaded_config(self) -> DaemonConfig:
        """The validated config the daemon runs with; the oracle builds its decoder and policy from it."""
        path = self.workdir / "oracle.yaml"
        path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return load_config(path)


@pytest.fixture
def rig_factory(
    kafka_bootstrap: str, topic_factory: Callable[..., str], synthetic_model: Path
) -> Iterator[Callable[[Path, str], CrashRig]]:
    """``rig_factory(workdir, input_topic)``; every daemon the rigs started is gone after the test."""
    rigs: list[CrashRig] = []

    def factory(workdir: Path, input_topic: str) -> CrashRig:
        rig = make_rig(kafka_bootstrap, topic_factory, workdir, input_topic, synthetic_model)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        rig.kill_survivors()


def make_rig(
    bootstrap: str, topic_factory: Callable[..., str], workdir: Path, input_topic: str, model_dir: Path
) -> CrashRig:
    """A rig with its own group, state directory, alerts and dead-letter topics."""
    config = daemon_config(
        bootstrap=bootstrap,
        group=f"g-{uuid.uuid4().hex}",
        input_topic=input_topic,
        alerts_topic=topic_factory(partitions=1, prefix="alerts"),
        dead_letter_topic=topic_factory(partitions=1, prefix="dlq"),
        model_dir=model_dir,
        state_dir=workdir / "state",
        state=CRASH_SETTINGS["state"],
        processing=CRASH_SETTINGS["processing"],
    )
    config["model"]["threshold"] = ALERT_THRESHOLD
    return CrashRig(bootstrap, workdir, input_topic, config["kafka"]["alerts_topic"], config)


def keyed_lines(seed: int, entities: int) -> list[tuple[bytes, bytes]]:
    """A synthetic scheduler stream with anomalies, keyed by entity so each entity stays in one partition."""
    return keyed_records(
        generate_logs(seed=seed, entities=entities, anomaly_fraction=0.1, first_job_id=50_000)
    )


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    """Return once ``condition`` holds; fail naming ``what`` after ``timeout_s``, so no test waits forever."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def finish_cleanly(rig: CrashRig, oracle: OracleResult) -> None:
    """Run the daemon without faults until the group holds a checkpoint of every record, then stop it."""
    daemon = rig.start()
    process = daemon.process
    assert process is not None
    wait_until(
        lambda: (
            process.poll() is not None or committed_offsets(rig.bootstrap, rig.group) == oracle.next_offsets
        ),
        90,
        f"a checkpoint at {oracle.next_offsets}",
    )
    code = daemon.terminate() if process.poll() is None else process.returncode
    assert code == 0, f"clean run exited {code}:\n{daemon.log_text()[-4000:]}"


def read_alert_ids(
    bootstrap: str, topic: str, wanted: frozenset[str], timeout_s: float = 30.0
) -> Counter[str]:
    """alert_id counts on ``topic``: reads until every wanted id is seen and the topic is quiet for 1 s."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=100
    )
    seen: Counter[str] = Counter()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    seen[json.loads(record.value)["alert_id"]] += 1
            if batches:
                quiet_since = time.monotonic()
            elif wanted <= seen.keys() and time.monotonic() - quiet_since >= 1.0:
                break
    finally:
        consumer.close()
    return seen


def assert_matches_oracle(rig: CrashRig, oracle: OracleResult) -> None:
    """The checkpoint equals the oracle's fold, and the alerts topic holds every expected alert_id."""
    saved, offsets = load_checkpoint(rig.state_dir, rig.loaded_config())
    assert offsets == oracle.next_offsets
    problems = state_differences(saved, oracle)
    assert not problems, "checkpoint differs from the oracle:\n" + "\n".join(problems)
    alert_counts = read_alert_ids(rig.bootstrap, rig.alerts_topic, oracle.alert_ids)
    missing = oracle.alert_ids - alert_counts.keys()
    assert not missing, f"{len(missing)} of {len(oracle.alert_ids)} expected alerts never produced"
    unexplained = alert_counts.keys() - oracle.alert_ids - oracle.borderline_alert_ids
    assert not unexplained, f"{len(unexplained)} alerts the oracle does not raise"


def read_oracle(rig: CrashRig, produced: int) -> OracleResult:
    """The oracle's fold of the ``produced`` input records, which must give alerts and no dead letter."""
    records = read_all(rig.bootstrap, rig.input_topic, produced)
    assert len(records) == produced
    oracle = fold_records(records, rig.loaded_config())
    assert oracle.dead_letters == 0 and oracle.alert_ids
    return oracle


def checkpoints_logged(daemon: DaemonProcess) -> list[dict[str, Any]]:
    """The daemon's checkpoint log lines, to tell in which checkpoint it died."""
    return [e for e in daemon.events() if e.get("event") == "checkpoint"]


# -- random kills ---------------------------------------------------------------------------


def crash_plan(rng: random.Random, runs: int) -> list[str]:
    """Every crash kind once (shuffled), then random ones: ``point:n`` specs or EXTERNAL."""
    kinds = ["batch", *CHECKPOINT_STEPS, EXTERNAL]
    rng.shuffle(kinds)
    kinds += [rng.choice(kinds) for _ in range(runs - len(kinds))]
    plan = []
    for kind in kinds[:runs]:
        if kind == EXTERNAL:
            plan.append(EXTERNAL)
        else:
            plan.append(f"{kind}:{rng.randint(1, 5) if kind == 'batch' else rng.randint(1, 3)}")
    return plan


def run_until_killed(
    rig: CrashRig, spec: str, rng: random.Random, produced: dict[tuple[str, int], int]
) -> str:
    """Start a daemon meant to die per ``spec``; returns where it died and how many checkpoints it made."""
    daemon = rig.start(None if spec == EXTERNAL else spec)
    process = daemon.process
    assert process is not None
    outcome = spec
    if spec == EXTERNAL:
        daemon.wait_assigned(60)
        time.sleep(rng.uniform(0.05, 0.8))
        daemon.kill()
        if committed_offsets(rig.bootstrap, rig.group) == produced:
            outcome = f"{EXTERNAL}, input drained"
    else:
        wait_until(
            lambda: process.poll() is not None or committed_offsets(rig.bootstrap, rig.group) == produced,
            60,
            f"the kill at {spec}",
            interval_s=0.5,
        )
        if process.poll() is None:
            outcome = f"idle (before {spec})"
            daemon.kill()
    assert process.returncode == KILLED, (
        f"run with {spec} exited {process.returncode}:\n{daemon.log_text()[-4000:]}"
    )
    return f"{outcome} ({len(checkpoints_logged(daemon))} checkpoints)"


def partition_counts(bootstrap: str, topic: str, count: int) -> dict[tuple[str, int], int]:
    """The next offset of each partition once ``count`` records are in: what a drained checkpoint holds."""
    records = read_all(bootstrap, topic, count)
    assert len(records) == count
    counts: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        counts[key] = max(counts.get(key, 0), record.offset + 1)
    return counts


def test_daemon_random_kills_state_equals_oracle(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    rig_factory: Callable[[Path, str], CrashRig],
    tmp_path: Path,
) -> None:
    """After 10 random SIGKILLs (points and external) and a clean run, state and alerts equal the oracle."""
    rng = random.Random(20261121)
    lines = keyed_lines(seed=11, entities=300)
    rig = rig_factory(tmp_path, topic_factory(partitions=PARTITIONS, prefix="in"))
    # A third up front, the rest in slices before each run, so every run starts with a backlog.
    first = len(lines) // 3
    cuts = [0, first, *(first + (len(lines) - first) * (i + 1) // RANDOM_KILLS for i in range(RANDOM_KILLS))]
    produced = 0
    outcomes: list[str] = []
    for run, spec in enumerate(crash_plan(rng, RANDOM_KILLS)):
        produced += produce_records(kafka_bootstrap, rig.input_topic, lines[cuts[run] : cuts[run + 1]])
        outcomes.append(
            run_until_killed(rig, spec, rng, partition_counts(kafka_bootstrap, rig.input_topic, produced))
        )
    produced += produce_records(kafka_bootstrap, rig.input_topic, lines[cuts[RANDOM_KILLS] :])
    assert produced == len(lines)

    oracle = read_oracle(rig, produced)
    finish_cleanly(rig, oracle)
    print(
        f"\nrandom kills: {outcomes}; records={produced} entities={len(oracle.entities)}"
        f" alerts={len(oracle.alert_ids)}"
    )
    assert not any(outcome.startswith("idle") for outcome in outcomes), (
        f"some kills found the input drained: {outcomes}"
    )
    assert_matches_oracle(rig, oracle)


# -- one kill at each step of the checkpoint order ---------------------------------------------


@dataclass(frozen=True)
class SharedInput:
    """An input topic produced once for all step tests, with its oracle."""

    topic: str
    produced: int
    oracle: OracleResult


@pytest.fixture(scope="module")
def step_input(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    synthetic_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> SharedInput:
    """~1,800 records of 150 entities over three partitions, read back and folded by the oracle."""
    topic = topic_factory(partitions=PARTITIONS, prefix="in")
    produced = produce_records(kafka_bootstrap, topic, keyed_lines(seed=12, entities=150))
    probe = make_rig(
        kafka_bootstrap, topic_factory, tmp_path_factory.mktemp("oracle"), topic, synthetic_model
    )
    return SharedInput(topic, produced, read_oracle(probe, produced))


def stored_total(rig: CrashRig) -> int:
    """The sum of the next offsets in the rig's local checkpoint: how many records it covers."""
    _, offsets = load_checkpoint(rig.state_dir, rig.loaded_config())
    return sum(offsets.values())


@pytest.mark.parametrize("step", CHECKPOINT_STEPS)
def test_daemon_kill_at_checkpoint_step_state_equals_oracle(
    step: str,
    step_input: SharedInput,
    kafka_bootstrap: str,
    rig_factory: Callable[[Path, str], CrashRig],
    tmp_path: Path,
) -> None:
    """A SIGKILL at this step of checkpoint 2 keeps a whole checkpoint; a clean run then equals the oracle."""
    rig = rig_factory(tmp_path, step_input.topic)
    daemon = rig.start(f"{step}:2")
    code = daemon.wait_exit(90)
    assert code == KILLED, f"expected SIGKILL at {step}:2, exit {code}:\n{daemon.log_text()[-4000:]}"
    logged = checkpoints_logged(daemon)
    assert len(logged) == 1, f"expected to die inside the 2nd checkpoint, logged {len(logged)}"
    first_total = logged[0]["events"] + logged[0]["dead_letters"]
    stored = stored_total(rig)
    group = sum(committed_offsets(kafka_bootstrap, rig.group).values())
    assert stored < step_input.produced, "the kill must land mid-stream"
    if step in ("before_flush", "after_flush", "mid_snapshot"):
        assert (stored, group) == (first_total, first_total)
    elif step == "after_snapshot":
        assert stored > first_total and group == first_total
    else:
        assert stored > first_total and group == stored

    finish_cleanly(rig, step_input.oracle)
    assert_matches_oracle(rig, step_input.oracle)


# -- a failure (not a kill) in the middle of a batch ------------------------------------------


class _ScriptedConsumer:
    """Enough of KafkaConsumer for DaemonService.run: polls return ``batches`` in turn, then
    ``then`` forever; ``close`` calls the rebalance listener as kafka-python 3's does."""

    def __init__(self, batches: list[dict[TopicPartition, list[Any]]], then: str = "repeat") -> None:
        self._batches = list(batches)
        self._then = then
        self._listener: Any = None
        self._owned = {tp for batch in batches for tp in batch}

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self._listener = listener

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    def highwater(self, partition: TopicPartition) -> int | None:
        return None  # no fetch response seen

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        if self._then == "repeat":
            return self._batches[0]
        return self._batches.pop(0) if self._batches else {}

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        # kafka-python 3.0: ConsumerCoordinator.close -> _on_close_prepare_async revokes the
        # assignment through the listener before leaving the group.
        if self._listener is not None and self._owned:
            # kafka-python 3 awaits an asynchronous listener on its network thread.
            asyncio.run(self._listener.on_partitions_revoked(set(self._owned)))


class _FailingSink:
    """An OutputSink whose send fails synchronously, as kafka-python's does when topic metadata times out."""

    alerts_topic = "alerts"
    dead_letter_topic = "dead-letters"
    scores_topic = None

    def send_alert(self, entity: str, payload: bytes) -> None:
        raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")

    def flush(self, timeout_seconds: float | None = None) -> None:
        pass

    def give_up_at(self, deadline: float) -> None:
        pass

    def close(self, timeout_seconds: float) -> None:
        pass


class _FlushFailsOnceSink(_FailingSink):
    """Alerts are accepted, but the first flush reports one as not delivered; later flushes pass."""

    def __init__(self) -> None:
        self.flushes = 0

    def send_alert(self, entity: str, payload: bytes) -> None:
        pass

    def flush(self, timeout_seconds: float | None = None) -> None:
        self.flushes += 1
        if self.flushes == 1:
            raise DeliveryError("1 records were not delivered, first: KafkaTimeoutError()")


def _raw_batch(count: int) -> dict[TopicPartition, list[Any]]:
    lines = generate_logs(seed=5, entities=20).lines[:count]
    return {
        TopicPartition("in", 0): [
            ConsumerRecord(
                topic="in",
                partition=0,
                leader_epoch=-1,
                offset=offset,
                timestamp=1_700_000_000_000 + offset,
                timestamp_type=0,
                key=None,
                value=line.encode(),
                headers=[],
                checksum=None,
                serialized_key_size=-1,
                serialized_value_size=len(line),
                serialized_header_size=-1,
            )
            for offset, line in enumerate(lines)
        ]
    }


def test_service_send_fails_mid_batch_batch_not_checkpointed(synthetic_model: Path) -> None:
    """A batch whose alerts could not be sent is not checkpointed on the way out, so a restart replays it.

    Closing the consumer revokes its partitions through the listener; that must not save either.
    """
    threshold = -1.0  # every event alerts, so the first send fails after the batch was applied
    service, table, store = build_in_process_service(
        synthetic_model,
        consumer=_ScriptedConsumer([_raw_batch(64)]),
        sink=_FailingSink(),
        offsets={("in", 0): 0},
        threshold=threshold,
    )
    store.save_checkpoint(table.take_changes(), {("in", 0): 0})
    with pytest.raises(KafkaTimeoutError):
        service.run()
    rows, offsets = store.load()
    assert offsets == {("in", 0): 0}
    assert sum(len(chunk) for chunk in rows) == 0


def test_service_checkpoint_whose_flush_failed_is_not_retried_on_the_way_out(synthetic_model: Path) -> None:
    """After a flush reported a lost alert, the daemon exits without saving: not even the checkpoint
    kafka-python's close() asks for through the listener, whose own flush would pass."""
    sink = _FlushFailsOnceSink()
    service, table, store = build_in_process_service(
        synthetic_model,
        consumer=_ScriptedConsumer([_raw_batch(64)], then="idle"),
        sink=sink,
        offsets={("in", 0): 0},
        threshold=-1.0,
    )
    store.save_checkpoint(table.take_changes(), {("in", 0): 0})
    with pytest.raises(DeliveryError):
        service.run()  # the first quiet poll takes the caught-up checkpoint, whose flush fails
    rows, offsets = store.load()
    assert sink.flushes == 1
    assert offsets == {("in", 0): 0}
    assert sum(len(chunk) for chunk in rows) == 0


def test_crash_plan_seeded_covers_every_kind() -> None:
    """The random plan holds every checkpoint step, a batch kill and an external kill."""
    plan = crash_plan(random.Random(1), RANDOM_KILLS)
    kinds: Sequence[str] = [spec.partition(":")[0] for spec in plan]
    assert len(plan) == RANDOM_KILLS
    assert set(kinds) == {"batch", *CHECKPOINT_STEPS, EXTERNAL}
