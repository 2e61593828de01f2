"""Template mining on loghub samples: template count, agreement with the daemon's matcher, counters."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from logwarden.events.header import HeaderStripper
from logwarden.events.json_events import JsonFields
from logwarden.events.masking import Masker
from logwarden.events.raw import RawLineParser, parser_settings
from logwarden.events.templates import NO_MATCH, WILDCARD, TemplateMatcher
from logwarden.train.mining import (
    MinedLogs,
    assign_sessions,
    mine_json_lines,
    mine_log_lines,
    mine_templates,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HDFS_ENTITY = r"blk_-?\d+"


def loghub_path(name: str) -> Path:
    """Path of a loghub sample file; fails the test with a clear message when the data is absent."""
    data = Path(os.environ.get("LOGWARDEN_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    path = data / "loghub" / name
    if not path.is_file():
        pytest.fail(
            f"{path} not found: set LOGWARDEN_DATA to the shared data folder (default ../shared/data)"
        )
    return path


def loghub_lines(name: str) -> list[str]:
    """The lines of loghub's ``<name>_2k.log`` sample, without line endings, as the miner reads them."""
    return loghub_path(f"{name}_2k.log").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def hdfs_mined() -> MinedLogs:
    """HDFS_2k mined once for the module, sessions keyed by block id; several tests compare against it."""
    return mine_log_lines(loghub_lines("HDFS"), parser_settings(HDFS_ENTITY))


def fits(template: str, masked_tokens: list[str]) -> bool:
    """Drain3's own notion of fit: same token count, each token equal or a wildcard."""
    tokens = template.split()
    return len(tokens) == len(masked_tokens) and all(
        t in (WILDCARD, m) for t, m in zip(tokens, masked_tokens, strict=False)
    )


def test_mine_hdfs_finds_small_template_set_close_to_loghub(hdfs_mined: MinedLogs) -> None:
    """HDFS_2k gives about loghub's 14 templates, and none mixes two loghub events."""
    with loghub_path("HDFS_2k.log_templates.csv").open(encoding="utf-8") as handle:
        loghub_count = sum(1 for _ in csv.DictReader(handle))
    assert loghub_count == 14
    assert loghub_count <= len(hdfs_mined.templates) <= loghub_count + 4
    with loghub_path("HDFS_2k.log_structured.csv").open(encoding="utf-8") as handle:
        event_ids = [row["EventId"] for row in csv.DictReader(handle)]
    parser = RawLineParser(parser_settings(HDFS_ENTITY), hdfs_mined.templates)
    events_of_template: dict[int, set[str]] = defaultdict(set)
    for line, event_id in zip(loghub_lines("HDFS"), event_ids, strict=True):
        events_of_template[parser.parse_one(line).template_index].add(event_id)
    assert NO_MATCH not in events_of_template
    assert all(len(events) == 1 for events in events_of_template.values())


def test_mine_hdfs_every_line_has_a_block_entity_and_a_template(hdfs_mined: MinedLogs) -> None:
    """All 2,000 HDFS lines name a block and land in that block's session."""
    assert hdfs_mined.lines_total == 2000
    assert hdfs_mined.lines_without_entity == 0
    assert hdfs_mined.unmatched_lines == 0
    assert sum(len(s) for s in hdfs_mined.sessions.values()) == 2000
    assert all(re.fullmatch(HDFS_ENTITY, entity) for entity in hdfs_mined.sessions)
    assert sum(hdfs_mined.template_counts) == 2000


def test_mine_keys_are_unique_and_follow_template_order(hdfs_mined: MinedLogs) -> None:
    """Template i has key T<i>, the vocabulary entry raw-log models use."""
    assert hdfs_mined.keys == [f"T{i}" for i in range(len(hdfs_mined.templates))]
    assert len(set(hdfs_mined.templates)) == len(hdfs_mined.templates)


def test_mine_same_input_gives_identical_result(hdfs_mined: MinedLogs) -> None:
    """Mining is deterministic: the same lines give the same templates, keys and sessions."""
    assert mine_log_lines(loghub_lines("HDFS"), parser_settings(HDFS_ENTITY)) == hdfs_mined


def test_mine_sessions_equal_what_the_daemon_parser_gives(hdfs_mined: MinedLogs) -> None:
    """Re-parsing the training lines with RawLineParser rebuilds exactly the mined sessions."""
    parser = RawLineParser(parser_settings(HDFS_ENTITY), hdfs_mined.templates)
    sessions: dict[str, list[int]] = {}
    for line in loghub_lines("HDFS"):
        parsed = parser.parse_one(line)
        assert parsed.entity is not None
        sessions.setdefault(parsed.entity, []).append(parsed.template_index)
    assert sessions == hdfs_mined.sessions


@pytest.mark.parametrize("name", ["HDFS", "OpenSSH", "Linux", "BGL"])
def test_matcher_agrees_with_drain3_on_every_training_line(name: str) -> None:
    """Each line's matched template is Drain3's final one, or an equally fitting, no less specific one."""
    header, masker = HeaderStripper(), Masker()
    contents = [header.content_of(line) for line in loghub_lines(name)]
    masked = [masker.mask(content) for content in contents]
    drain = mine_templates(masked)
    matcher = TemplateMatcher(drain.templates)
    for content, masked_content, assigned in zip(contents, masked, drain.assigned, strict=True):
        matched = matcher.match_one(content)
        tokens = masked_content.split()
        assert matched != NO_MATCH, content
        assert fits(drain.templates[matched], tokens), content
        if matched != assigned:
            assert fits(drain.templates[assigned], tokens), content
            assert drain.templates[matched].count(WILDCARD) <= drain.templates[assigned].count(WILDCARD)


def test_mined_templates_reject_unknown_line(hdfs_mined: MinedLogs) -> None:
    """A line of a kind never seen in training gets -1 from the parser built on mined templates."""
    parser = RawLineParser(parser_settings(HDFS_ENTITY), hdfs_mined.templates)
    parsed = parser.parse_one("081109 203615 148 WARN dfs.DataNode: Disk failure on blk_42 volume /data/3")
    assert parsed.entity == "blk_42"
    assert parsed.template_index == NO_MATCH


def test_mine_lines_without_entity_are_counted_not_mined() -> None:
    """Lines naming no entity are counted and stay out of sessions and templates."""
    lines = [
        "2026-11-21T10:00:00Z h svc: job 1 started",
        "2026-11-21T10:00:01Z h svc: cache warmed",
        "2026-11-21T10:00:02Z h svc: job 2 started",
        "2026-11-21T10:00:03Z h svc: job 1 done in 3 s",
    ]
    mined = mine_log_lines(lines, parser_settings(r"job (\d+)"))
    assert mined.lines_total == 4
    assert mined.lines_without_entity == 1
    assert mined.templates == ["job <NUM> started", "job <NUM> done in <NUM> s"]
    assert mined.sessions == {"1": [0, 1], "2": [0]}


def test_mine_blank_lines_are_counted_apart_not_as_lines_without_entity() -> None:
    """A blank line is not a log line naming no entity: the trainer counts it apart, as the scorer does,
    so the too-narrow-entity-regex warning is not raised by blank lines."""
    lines = [
        "2026-11-21T10:00:00Z h svc: job 1 started\n",
        "\n",
        "  \r\n",
        "2026-11-21T10:00:03Z h svc: job 1 ok",
    ]
    mined = mine_log_lines(lines, parser_settings(r"job (\d+)"))
    assert (mined.lines_total, mined.blank_lines, mined.lines_without_entity) == (2, 2, 0)


def test_mine_list_lengths_never_seen_in_training_still_match_the_template() -> None:
    """Lines listing 1 or 2 blocks give one template, which a later line listing 5 blocks fits, in the
    trainer and in the daemon's parser alike (a new list length used to be an UNKNOWN event)."""
    lines = [
        f"081109 203615 148 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.{n}:50010 to delete {blocks}"
        for n, blocks in ((1, "blk_1"), (2, "blk_2 blk_3"), (3, "blk_4"))
    ]
    settings = parser_settings(HDFS_ENTITY)
    mined = mine_log_lines(lines, settings)
    assert mined.templates == ["BLOCK* ask <IP> to delete <BLK>"]
    assert mined.unmatched_lines == 0
    five = "081109 203616 148 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.9:50010 to delete " + " ".join(
        f"blk_{n}" for n in range(5, 10)
    )
    assert RawLineParser(settings, mined.templates).parse_one(five).template_index == 0


def test_mine_a_mask_spanning_a_space_merged_with_a_word_gets_a_template_that_fits_it() -> None:
    """Drain3 merges ``login <USER> ok`` (``user bob``, two raw tokens) with ``login guest ok`` into
    ``login <*> ok``, which fits one token only; the lines it was mined from get ``login <USER> ok``."""
    settings = parser_settings(r"id=(\d+)", masking=[("USER", r"user \w+")])
    lines = ["id=1 login user bob ok", "id=2 login guest ok", "id=3 login user eve ok"]
    mined = mine_log_lines(lines, settings)
    assert mined.templates == ["<*> login <*> ok", "<*> login <USER> ok"]
    assert mined.unmatched_lines == 0
    assert mined.sessions == {"1": [1], "2": [0], "3": [1]}
    assert mined.lines_total == 3


def test_mine_a_list_merged_with_a_word_gets_a_template_that_fits_every_list() -> None:
    """Lists of cpus collapse to one ``<NUM>`` for Drain3, which merges them with ``all`` into
    ``released cpus <*>``; every list line, in training and in the daemon's parser, fits the added
    ``released cpus <NUM>`` (every list of two or more used to be UNKNOWN), and ``all`` keeps
    Drain3's template."""
    lines = [
        f"job_{n} released cpus " + ("all" if n % 3 == 0 else " ".join(str(c) for c in range(n % 5 + 1)))
        for n in range(60)
    ]
    settings = parser_settings(r"job_\d+")
    mined = mine_log_lines(lines, settings)
    assert mined.templates == ["<*> released cpus <*>", "<*> released cpus <NUM>"]
    assert mined.unmatched_lines == 0
    assert mined.template_counts == [20, 40]
    parser = RawLineParser(settings, mined.templates)
    assert [parser.parse_one(line).template_index for line in lines[:4]] == [0, 1, 1, 0]
    assert parser.parse_one("job_99 released cpus 3 4 5 6 7 8 9").template_index == 1


def test_assigned_lines_no_template_fits_are_counted_as_unmatched() -> None:
    """A line that fits none of the templates is counted, and left out of its session."""
    settings = parser_settings(r"id=(\d+)")
    contents = ["id=1 login ok", "id=2 logout", "id=1 login ok"]
    mined = assign_sessions(
        ["<*> login ok"], ["1", "2", "1"], contents, settings, lines_total=3, lines_without_entity=0
    )
    assert mined.unmatched_lines == 1
    assert mined.sessions == {"1": [0, 0]}
    assert mined.template_counts == [2]


def test_mine_uses_no_drain3_ini_and_logs_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Drain3 is configured in code: no ini lookup, so no 'config file not found' warning."""
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="drain3"):
        mine_log_lines(["blk_1 a b", "blk_2 a c"], parser_settings(HDFS_ENTITY))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any("drain3.ini" in r.getMessage() for r in caplog.records)


def test_mine_json_events_with_the_entity_regex_over_the_message_equal_raw_lines(
    hdfs_mined: MinedLogs,
) -> None:
    """HDFS lines sent as ``{"message": line}`` and mined with the regex over the message give the
    templates and sessions of the raw lines: one parse for both inputs, as in the daemon."""
    events = [json.dumps({"message": line, "level": "INFO"}) for line in loghub_lines("HDFS")]
    mined = mine_json_lines(events, parser_settings(HDFS_ENTITY), JsonFields())
    assert mined.templates == hdfs_mined.templates
    assert mined.sessions == hdfs_mined.sessions
    assert (mined.lines_total, mined.invalid_lines, mined.lines_without_entity) == (2000, 0, 0)


def test_mine_json_events_count_bad_lines_and_lines_without_the_entity_field() -> None:
    """Bad JSON and a missing message count by reason, no ``host`` apart; host ``a`` is the only session."""
    events = [
        '{"host": "a", "message": "session opened for user root"}',
        '{"host": "a", "message": "session closed for user root"}',
        '{"message": "session opened for user bob"}',
        '{"host": "b", "msg": "wrong field"}',
        "not json",
        "",
    ]
    mined = mine_json_lines(events, parser_settings(None), JsonFields(entity="host"))
    assert mined.templates == ["session <*> for user root"] and mined.sessions == {"a": [0, 0]}
    assert (mined.lines_total, mined.blank_lines) == (5, 1)
    assert (mined.invalid_lines, mined.lines_without_entity) == (2, 1)
    assert mined.invalid_reasons == {"missing_message": 1, "invalid_json": 1}
    assert mined.first_invalid is not None and mined.first_invalid.startswith("line 4: missing_message:")


def test_mine_short_messages_give_one_template_per_event_not_one_per_entity() -> None:
    """``job_12 start`` / ``job_12 done``: the entity's word (no number to the masking rules) used to
    reach Drain3, which merged one job's events into ``job_12 <*>``, one template per job, and every
    line of a new job was UNKNOWN."""
    stamp = "2026-11-21T10:00:00Z host sched[1]:"
    steps = ("start", "delete cache", "done")
    lines = [f"{stamp} job_{job} {step}" for job in range(300) for step in steps]
    settings = parser_settings(r"job_\d+")
    mined = mine_log_lines(lines, settings)
    assert mined.templates == ["<*> start", "<*> delete cache", "<*> done"]
    assert mined.sessions["job_7"] == [0, 1, 2]
    parser = RawLineParser(settings, mined.templates)
    new_job = [parser.parse_one(f"{stamp} job_1000 {step}") for step in steps]
    assert [(p.entity, p.template_index) for p in new_job] == [
        ("job_1000", 0),
        ("job_1000", 1),
        ("job_1000", 2),
    ]


def test_mine_a_lower_similarity_merges_short_messages_differing_in_one_word() -> None:
    """``--similarity``: at Drain3's 0.4 one differing word of three keeps two templates; at 0.3 one."""
    lines = [f"2026-11-21T10:00:00Z h s[1]: job_{n} delete {('cache', 'spool')[n % 2]}" for n in range(20)]
    settings = parser_settings(r"job_\d+")
    assert mine_log_lines(lines, settings).templates == ["<*> delete cache", "<*> delete spool"]
    assert mine_log_lines(lines, settings, sim_th=0.3).templates == ["<*> delete <*>"]


def test_lines_the_header_regex_misses_are_counted() -> None:
    """A header format the regex does not know is mined whole, timestamp and all: the count says so,
    so training can warn that tomorrow's lines would fit no template."""
    lines = [
        "[2015-12-10 06:55:46] LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n",
        "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user test from 173.234.31.186\n",
    ]
    mined = mine_log_lines(lines, parser_settings(r"sshd\[(\d+)\]"))
    assert (mined.lines_total, mined.lines_without_header) == (2, 1)
