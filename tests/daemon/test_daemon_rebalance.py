"""Several instances in one consumer group: a rebalance while input flows hands partitions over
exactly where the daemon stopped, without stopping it (kafka-python 3 runs the rebalance listener on
its network thread, where the checkpoint's blocking group commit used to raise and end the daemon)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from daemon_harness import DaemonProcess, ThrottledProducer, keyed_records, live_config
from kafka import KafkaConsumer
from kafka_broker import FAST_CONSUMER_SETTINGS

from logwarden.synthetic import generate_logs

JOIN_DEADLINE_S = 90.0


def join_group(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    """A second member of the daemon's group, polled until the group gave it partitions."""
    member = KafkaConsumer(topic, bootstrap_servers=[bootstrap], group_id=group, **FAST_CONSUMER_SETTINGS)
    deadline = time.monotonic() + JOIN_DEADLINE_S
    while not member.assignment():
        assert time.monotonic() < deadline, "the second member never got partitions"
        member.poll(timeout_ms=200, max_records=1)
    return member


def test_daemon_rebalance_while_input_flows_hands_partitions_over_exactly_and_keeps_running(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """A member joins the group mid-stream and leaves again: the daemon checkpoints and commits before
    giving partitions up, takes them back from that commit, and applies every record exactly once."""
    log = generate_logs(seed=11, entities=2_000, anomaly_fraction=0.0, first_job_id=70_000)
    records = keyed_records(log)
    held_back = len(records) // 4  # sent only once the daemon owns every partition again
    input_topic = topic_factory(partitions=4, prefix="in")
    config = live_config(
        kafka_bootstrap,
        topic_factory,
        consumer_group,
        synthetic_model,
        tmp_path,
        input_topic,
        # No periodic checkpoint: at the rebalance there is work only the revocation saves.
        state={"checkpoint_interval_seconds": 3600.0, "checkpoint_every_events": 10_000_000},
    )
    daemon = DaemonProcess.start(tmp_path, config)
    producer = ThrottledProducer(kafka_bootstrap, input_topic, records, held_back=held_back)
    try:
        daemon.wait_assigned()
        producer.start()
        deadline = time.monotonic() + 60
        while producer.sent < 2_000:  # input flowing: the join and its rebalance happen mid-stream
            assert time.monotonic() < deadline and producer.error is None, producer.error
            time.sleep(0.05)
        member = join_group(kafka_bootstrap, consumer_group, input_topic)
        moved = member.assignment()
        committed = {tp: member.committed(tp) for tp in moved}
        member.close()  # leaves the group: the daemon gets every partition back
        daemon.wait_for(
            lambda events: (
                [e.get("partitions") for e in events if e.get("event") == "partitions_assigned"][-1]
                == sorted(f"{input_topic}/{p}" for p in range(4))
            ),
            JOIN_DEADLINE_S,
            "every partition assigned again",
        )
        assert producer.sent < len(records) - held_back + 1 or producer.sent == len(records)
        producer.release.set()
        producer.join(timeout=120)
        assert producer.error is None, producer.error
        daemon.wait_processed(len(records), timeout_s=120)
        assert daemon.process is not None and daemon.process.poll() is None, daemon.log_text()[-4000:]
        assert daemon.terminate() == 0, daemon.log_text()[-4000:]
    finally:
        daemon.kill()
    events = daemon.events()
    revoked = [e for e in events if e.get("event") == "partitions_revoked" and e.get("partitions")]
    assert revoked and all(e.get("level") == "info" for e in revoked), daemon.log_text()[-4000:]
    rebalance_checkpoints = [
        e for e in events if e.get("event") == "checkpoint" and e.get("reason") == "rebalance"
    ]
    assert rebalance_checkpoints and rebalance_checkpoints[0]["events"] < len(records) - held_back
    assert all(offset for offset in committed.values()), committed  # the daemon's progress, committed
    final = daemon.last_checkpoint()
    assert final is not None and final["events"] == len(records), final  # nothing skipped or re-applied
