"""TemplateMatcher: translation of Drain3 templates to regexes, priority, and no-match cases."""

from __future__ import annotations

import random

import pytest

from logwarden.events.masking import DEFAULT_MASKING, Masker
from logwarden.events.templates import NO_MATCH, TemplateMatcher

HDFS_TEMPLATES = [
    "PacketResponder <NUM> for block <BLK> terminating",
    "Receiving block <BLK> src: /<IP> dest: /<IP>",
    "<IP> Served block <BLK> to /<IP>",
    "Deleting block <BLK> file <*>",
    "BLOCK* NameSystem.allocateBlock: <*> <BLK>",
]


@pytest.fixture(scope="module")
def matcher() -> TemplateMatcher:
    """A matcher for five HDFS templates under the default masking rules, built once for the module."""
    return TemplateMatcher(HDFS_TEMPLATES, DEFAULT_MASKING)


@pytest.mark.parametrize(
    ("content", "index"),
    [
        ("PacketResponder 1 for block blk_38865049064139660 terminating", 0),
        ("Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010", 1),
        ("10.250.14.224:50010 Served block blk_-3544583377289625738 to /10.251.74.79", 2),
        (
            "Deleting block blk_1781953582842324563 file /mnt/hadoop/dfs/blk_1781953582842324563",
            3,
        ),
        ("BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/part-00001. blk_-3567", 4),
    ],
)
def test_matcher_unmasked_content_matches_its_template(
    matcher: TemplateMatcher, content: str, index: int
) -> None:
    """Raw content fits the template whose <NAME> tokens its masking rules would have produced."""
    assert matcher.match_one(content) == index


@pytest.mark.parametrize(
    "content",
    [
        "PacketResponder x for block blk_1 terminating",
        "PacketResponder 1 for block blk_1",
        "PacketResponder 1 for block blk_1 terminating now",
        "Deleting block blk_1 file /a b",
        "Receiving block blk_1 src: /10.0.0.1 dest: 10.0.0.2",
        "something else entirely",
        "",
    ],
)
def test_matcher_content_of_another_shape_returns_no_match(matcher: TemplateMatcher, content: str) -> None:
    """A wrong token, a missing or extra token, or an unknown message gives -1."""
    assert matcher.match_one(content) == NO_MATCH


def test_matcher_whitespace_is_split_like_drain3(matcher: TemplateMatcher) -> None:
    """Leading, trailing and repeated spaces or tabs separate tokens as str.split() does."""
    assert matcher.match_one("  PacketResponder\t1  for block blk_7 terminating \n") == 0


def test_matcher_wildcard_matches_exactly_one_token() -> None:
    """<*> stands for one whitespace-free token, never several or none."""
    matcher = TemplateMatcher(["user <*> logged in"])
    assert matcher.match_one("user a=b:c logged in") == 0
    assert matcher.match_one("user a b logged in") == NO_MATCH
    assert matcher.match_one("user logged in") == NO_MATCH


def test_matcher_several_fitting_templates_prefers_fewest_wildcards() -> None:
    """The most specific template wins, whatever order the templates were given in."""
    matcher = TemplateMatcher(["disk <*> <*>", "disk <*> full", "disk <NUM> full", "disk sda full"])
    assert matcher.match_one("disk sda full") == 3
    assert matcher.match_one("disk 7 full") == 2
    assert matcher.match_one("disk sdb full") == 1
    assert matcher.match_one("disk sdb empty") == 0


def test_matcher_template_starting_with_variable_is_found_after_any_first_word() -> None:
    """A template starting with <*> or a mask fits lines whose first word also starts other templates."""
    matcher = TemplateMatcher(["login ok", "<*> failed", "<NUM> retries"])
    assert matcher.match_one("login failed") == 1
    assert matcher.match_one("login ok") == 0
    assert matcher.match_one("3 retries") == 2
    assert matcher.match_one("login retries") == NO_MATCH


def test_matcher_templates_starting_with_wildcards_are_told_apart_by_later_words() -> None:
    """'<*> submitted by <*>' fits lines whose second word is 'submitted', whatever the first."""
    matcher = TemplateMatcher(["<*> submitted by <*>", "<*> queued in <*>", "job <*> done"])
    assert matcher.match_one("job_7 submitted by carol") == 0
    assert matcher.match_one("job_8 queued in gpu") == 1
    assert matcher.match_one("job 9 done") == 2
    assert matcher.match_one("job_7 submitted to carol") == NO_MATCH
    assert matcher.match_one("submitted") == NO_MATCH


def test_matcher_line_fitting_templates_that_differ_in_first_word_gets_the_most_specific() -> None:
    """A generic template and a first-word template both fitting a line: fewest wildcards still wins."""
    matcher = TemplateMatcher(["<*> failed <*>", "login <*> <*>", "login failed <NUM>"])
    assert matcher.match_one("login failed 3") == 2
    assert matcher.match_one("login failed twice") == 0  # a tie on wildcards goes to the earlier template
    assert matcher.match_one("login ok twice") == 1
    assert matcher.match_one("sudo failed twice") == 0


def test_matcher_mask_spanning_spaces_matches_as_one_token() -> None:
    """A masking rule may match text with spaces in it; the template still fits, word positions shift."""
    masking = [("DATE", r"[A-Z][a-z]{2} \d{1,2}")]
    matcher = TemplateMatcher(["<DATE> backup started", "<*> backup started"], masking)
    assert matcher.match_one("Nov 21 backup started") == 0
    assert matcher.match_one("nightly backup started") == 1


def test_matcher_unknown_mask_name_is_a_literal() -> None:
    """<NAME> of no masking rule must appear literally."""
    matcher = TemplateMatcher(["got <PATH> at <NUM>"])
    assert matcher.match_one("got <PATH> at 5") == 0
    assert matcher.match_one("got /tmp at 5") == NO_MATCH


def test_matcher_mask_token_written_in_the_line_matches_its_own_slot() -> None:
    """Logs scrubbed upstream carry "<IP>" literally; masking leaves it as it is, so the template
    mined from such a line is "... <IP> ..." and the line must match it, not become UNKNOWN."""
    matcher = TemplateMatcher(["Accepted password for <*> from <IP> port <NUM> ssh2", "<IP> connected"])
    assert matcher.match_one("Accepted password for bob from <IP> port <NUM> ssh2") == 0
    assert matcher.match_one("Accepted password for bob from <IP> port 22 ssh2") == 0
    assert matcher.match_one("<IP> connected") == 1
    assert matcher.match_one("<NUM> connected") == NO_MATCH


def test_matcher_collapsed_mask_matches_a_run_of_any_length() -> None:
    """A template mined with runs collapsed fits the list of any length it stands for, and only that."""
    matcher = TemplateMatcher(["BLOCK* ask <IP> to delete <BLK>", "got <NUM> <NUM>, ok"], collapse_runs=True)
    for blocks in ("blk_1", "blk_1 blk_-2", " ".join(f"blk_{n}" for n in range(100))):
        assert matcher.match_one(f"BLOCK* ask 10.0.0.1:50010 to delete {blocks}") == 0
    assert matcher.match_one("BLOCK* ask 10.0.0.1:50010 to delete") == NO_MATCH
    assert matcher.match_one("BLOCK* ask 10.0.0.1:50010 to delete blk_1 soon") == NO_MATCH
    assert matcher.match_one("got 1 2 3, ok") == 1
    assert TemplateMatcher(["delete <BLK>"]).match_one("delete blk_1 blk_2") == NO_MATCH


def test_matcher_regex_characters_in_templates_are_literal() -> None:
    """Template text such as '*', '$', '(' or '.' is matched literally, not as regex syntax."""
    matcher = TemplateMatcher(["BLOCK* ask (x) a.b $1 <NUM>"])
    assert matcher.match_one("BLOCK* ask (x) a.b $1 5") == 0
    assert matcher.match_one("BLOCKKK ask (x) aXb $1 5") == NO_MATCH


def test_matcher_masking_rule_with_groups_keeps_template_indices() -> None:
    """Groups inside a masking rule do not shift which template index is reported."""
    masking = [("KV", r"(\w+)=(\w+)"), ("NUM", r"\d+")]
    matcher = TemplateMatcher(["set <KV> <KV>", "set <NUM>", "get <KV>"], masking)
    assert matcher.match_one("set a=1 b=2") == 0
    assert matcher.match_one("set 4") == 1
    assert matcher.match_one("get k=v") == 2


def test_matcher_without_templates_matches_nothing() -> None:
    """An empty template list gives -1 for every line."""
    assert TemplateMatcher([]).match_one("anything") == NO_MATCH


def test_matcher_matching_does_not_learn(matcher: TemplateMatcher) -> None:
    """Matching an unknown line changes neither the templates nor later answers."""
    before = matcher.templates
    assert matcher.match_one("new kind of line 42") == NO_MATCH
    assert matcher.match_one("new kind of line 42") == NO_MATCH
    assert matcher.templates == before


def test_matcher_shared_wildcard_then_mask_starting_with_space_keeps_the_most_specific() -> None:
    """A mask that may start with whitespace after a shared <*> still lets its template win over '<*> <*>'."""
    matcher = TemplateMatcher(["<*> <*>", "<*> <SIGNED>"], [("SIGNED", r"\s\+\d+")])
    assert matcher.match_one("job  +5") == 1
    assert matcher.match_one("job +5") == 0


def _template_by_template(templates: list[str], masking: list[tuple[str, str]], content: str) -> int:
    """Reference: each template on its own, most specific first (fewest <*>, then fewest masks)."""
    names = {name for name, _ in masking}

    def specificity(index: int) -> tuple[int, int, int]:
        tokens = templates[index].split()
        masks = sum(token.count(f"<{name}>") for token in tokens for name in names)
        return (tokens.count("<*>"), masks, index)

    for index in sorted(range(len(templates)), key=specificity):
        if TemplateMatcher([templates[index]], masking).match_one(content) == 0:
            return index
    return NO_MATCH


def test_matcher_one_alternation_agrees_with_trying_each_template_alone() -> None:
    """Shared leading wildcards, masks spanning or starting with spaces, odd whitespace: as one by one."""
    rng = random.Random(11)
    masking = [
        ("DATE", r"[A-Z][a-z]{2} \d{1,2}"),
        ("SIGNED", r"\s\+\d+"),  # starts with whitespace: tried at every split of the spaces before it
        ("NUM", r"(?<![\w.-])\d+(?![\w.-])"),
    ]
    vocabulary = ["<*>", "<*>", "<*>", "<NUM>", "<DATE>", "<SIGNED>", "id<NUM>", "ok", "job", "done", "7"]
    fillers = ["ok", "job", "7", "12", "Nov 3", "id4", "idx", "a b", "done", " +5"]
    for _ in range(60):
        templates = [
            " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 6))
        ]
        matcher = TemplateMatcher(templates, masking)
        for _ in range(40):
            tokens = rng.choice(templates).split()
            words = [
                rng.choice(fillers) if token.startswith("<") or "<" in token else token for token in tokens
            ]
            if rng.random() < 0.3:
                words.insert(rng.randrange(len(words) + 1), rng.choice(fillers))
            # No leading whitespace: a header regex leaves none (a mask that starts with whitespace
            # cannot match at the very start of a line's content).
            content = (rng.choice([" ", "  ", "\t"]).join(words) + rng.choice(["", " ", "\n"])).lstrip()
            assert matcher.match_one(content) == _template_by_template(templates, masking, content), (
                templates,
                content,
            )


def test_matcher_adjacent_runs_still_fit_and_a_crafted_run_fits_none() -> None:
    """Two runs whose rules overlap (a HEX run beside a NUM run, NUM runs around a wildcard): the
    lines they were mined from fit, and a long run ending in a token no template ends with fits none
    (it used to be tried split by split, quadratic in its length: benchmarks/crafted_lines.py)."""
    lines = ["softheader 0x1f 7 0x2a 0x3b end", "softheader 0000000c 00000001 00000002 end"]
    masked = [Masker(collapse_runs=True).mask(line) for line in lines]
    assert masked == ["softheader <HEX> <NUM> <HEX> end", "softheader <HEX> end"]
    matcher = TemplateMatcher([masked[0], "type <NUM> <*> <NUM> end", masked[1]], collapse_runs=True)
    assert [matcher.match_one(line) for line in lines] == [0, 2]
    assert matcher.match_one("type 1 foo 2 end") == 1
    assert matcher.match_one("type 1 2 foo 3 4 end") == 1
    assert matcher.match_one("softheader 0x1f " + "00000001 " * 3000 + "x") == NO_MATCH
    assert matcher.match_one("type " + "1 " * 3000 + "x") == NO_MATCH
