"""Seeded raw-log generation: determinism, ground truth, line shape and maskable variable parts."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from logwarden.events.header import HeaderStripper
from logwarden.events.masking import Masker
from logwarden.synthetic import ALL_KINDS, ENTITY_REGEX, generate_logs, is_normal_lifecycle, write_lines
from logwarden.synthetic.lifecycle import UNKNOWN_STEPS
from logwarden.synthetic.logs import SyntheticLog

_ISO_HEADER = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) host-\d+ scheduler\[\d+\]: ")


@pytest.fixture(scope="module")
def mixed_log() -> SyntheticLog:
    """400 jobs, 10% anomalous: 8 of each kind."""
    return generate_logs(seed=11, entities=400, anomaly_fraction=0.1)


def test_generate_logs_same_seed_identical_output(mixed_log: SyntheticLog) -> None:
    """The same seed and arguments give the same lines and the same ground truth."""
    again = generate_logs(seed=11, entities=400, anomaly_fraction=0.1)
    assert again.lines == mixed_log.lines
    assert again.entity_of_line == mixed_log.entity_of_line
    assert again.anomalies == mixed_log.anomalies


def test_generate_logs_other_seed_different_lines(mixed_log: SyntheticLog) -> None:
    """Another seed gives another log."""
    assert generate_logs(seed=12, entities=400, anomaly_fraction=0.1).lines != mixed_log.lines


def test_generate_logs_anomaly_fraction_leaves_normal_jobs_unchanged(mixed_log: SyntheticLog) -> None:
    """A normal job's lines are the same with or without anomalies elsewhere in the set."""
    clean = generate_logs(seed=11, entities=400, anomaly_fraction=0)
    assert clean.anomalies == {}
    clean_lines = defaultdict(list)
    for entity, line in zip(clean.entity_of_line, clean.lines, strict=True):
        clean_lines[entity].append(line)
    mixed_lines = defaultdict(list)
    for entity, line in zip(mixed_log.entity_of_line, mixed_log.lines, strict=True):
        mixed_lines[entity].append(line)
    for entity in mixed_log.normal_entities:
        assert mixed_lines[entity] == clean_lines[entity]


def test_generate_logs_every_kind_recorded_equally(mixed_log: SyntheticLog) -> None:
    """Each anomaly kind is present in the ground truth, dealt evenly."""
    kinds = sorted(mixed_log.anomalies.values())
    assert kinds == sorted(ALL_KINDS * 8)


def test_generate_logs_normal_entities_follow_grammar(mixed_log: SyntheticLog) -> None:
    """Every entity without an anomaly logged a valid normal lifecycle."""
    assert len(mixed_log.normal_entities) == 360
    for entity in mixed_log.normal_entities:
        assert is_normal_lifecycle(mixed_log.steps_of(entity)), entity


def test_generate_logs_anomalous_entities_show_their_kind(mixed_log: SyntheticLog) -> None:
    """Each anomalous entity's steps break the grammar in the way its recorded kind says."""
    for entity, kind in mixed_log.anomalies.items():
        steps = mixed_log.steps_of(entity)
        assert not is_normal_lifecycle(steps), (entity, kind, steps)
        has_unknown = any(step in UNKNOWN_STEPS for step in steps)
        assert has_unknown == (kind == "unknown_template"), (entity, kind)
        if kind == "truncated":
            assert "complete" not in steps and "cleanup" not in steps
        elif kind == "repeated_event":
            longest = max(len(m.group(0)) for m in re.finditer(r"(\w)\1*", "".join(s[0] for s in steps)))
            assert longest >= 8
        elif kind == "missing_step":
            assert not {"queue", "schedule", "start", "complete"} <= set(steps)
        elif kind == "out_of_order":
            pairs = [("submit", "queue"), ("queue", "schedule"), ("schedule", "start")]
            pairs.append(("complete", "cleanup"))
            assert any(steps.index(b) < steps.index(a) for a, b in pairs), steps


def test_generate_logs_lines_in_time_order_and_interleaved(mixed_log: SyntheticLog) -> None:
    """Lines are sorted by timestamp and jobs overlap in time, as a real stream would interleave them."""
    stamps = [_ISO_HEADER.match(line).group(1) for line in mixed_log.lines]  # type: ignore[union-attr]
    assert stamps == sorted(stamps)
    owners = mixed_log.entity_of_line
    switches = sum(a != b for a, b in zip(owners[:-1], owners[1:], strict=True))
    assert switches > len(mixed_log.entities) * 5


def test_generate_logs_line_sizes_in_range(mixed_log: SyntheticLog) -> None:
    """Every line, anomalous ones included, is 150-220 bytes of UTF-8 without a newline."""
    sizes = [len(line.encode()) for line in mixed_log.lines]
    assert min(sizes) >= 150 and max(sizes) <= 220
    assert not any("\n" in line for line in mixed_log.lines)


def test_generate_logs_entity_regex_names_the_owner(mixed_log: SyntheticLog) -> None:
    """ENTITY_REGEX finds, in each line, exactly the job the ground truth says logged it."""
    pattern = re.compile(ENTITY_REGEX)
    for line, entity in zip(mixed_log.lines, mixed_log.entity_of_line, strict=True):
        assert pattern.findall(line) == [entity]


def test_generate_logs_default_header_regex_strips_header(mixed_log: SyntheticLog) -> None:
    """The project's default header regex separates the ISO header from the message."""
    stripper = HeaderStripper()
    for line in mixed_log.lines[:500]:
        content = stripper.content_of(line)
        assert content != line and content.startswith(("job_", "kernel: "))


def test_generate_logs_masked_steps_vary_only_in_few_words() -> None:
    """After default masking, every unmasked token that varies within a step takes few values.

    An unmasked number or id would vary per line and split one step into many templates.
    """
    log = generate_logs(seed=5, entities=1500, anomaly_fraction=0)
    stripper, masker = HeaderStripper(), Masker()
    values: dict[tuple[str, int], set[str]] = defaultdict(set)
    lengths: dict[str, set[int]] = defaultdict(set)
    for line, step in zip(log.lines, log.step_of_line, strict=True):
        tokens = masker.mask(stripper.content_of(line)).split()
        lengths[step].add(len(tokens))
        for position, token in enumerate(tokens[1:], start=1):
            values[(step, position)].add(token)
    assert all(len(counts) == 1 for counts in lengths.values()), dict(lengths)
    wide = {key: len(tokens) for key, tokens in values.items() if len(tokens) > 12}
    assert wide == {}


def test_generate_logs_negative_entities_raises() -> None:
    """A negative entity count is refused."""
    with pytest.raises(ValueError, match="entities"):
        generate_logs(seed=0, entities=-1)


def test_write_lines_file_round_trips(tmp_path: Path) -> None:
    """write_lines writes one newline-terminated line per element, readable back unchanged."""
    log = generate_logs(seed=2, entities=20, anomaly_fraction=0)
    path = tmp_path / "logs.txt"
    write_lines(path, log.lines)
    assert path.read_text(encoding="utf-8").splitlines() == log.lines
