"""Masking rules: what each default rule replaces, rule priority, and rejected rules."""

from __future__ import annotations

import pytest

from logwarden.errors import ConfigError
from logwarden.events.masking import DEFAULT_MASKING, Masker


@pytest.fixture(scope="module")
def masker() -> Masker:
    """A masker with the default rules, compiled once for the module's many sample texts."""
    return Masker(DEFAULT_MASKING)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Verification succeeded for blk_-1608999687919862906", "Verification succeeded for <BLK>"),
        ("Received block blk_38865049064139660 of size 67108864", "Received block <BLK> of size <NUM>"),
        ("src: /10.250.19.102:54106 dest: /10.250.19.102:50010", "src: /<IP> dest: /<IP>"),
        ("Invalid user admin from 173.234.31.186", "Invalid user admin from <IP>"),
        ("DSDT @ 0x00000000000fd6b0 MSFT 0x0100000e", "DSDT @ <HEX> MSFT <HEX>"),
        ("session 3f9a2b7c11d04e55 closed", "session <HEX> closed"),
        ("uid=0 euid=0 port 22 took 1.5", "uid=<NUM> euid=<NUM> port <NUM> took <NUM>"),
        ("sshd[24200]: x", "sshd[<NUM>]: x"),
    ],
)
def test_masker_default_rules_replace_variables_with_named_tokens(
    masker: Masker, text: str, masked: str
) -> None:
    """Block ids, IPv4 with port, hex and numbers become <BLK>, <IP>, <HEX>, <NUM>."""
    assert masker.mask(text) == masked


@pytest.mark.parametrize(
    "text",
    ["ssh2 tty2 pam_unix", "part-00123.", "version 2.6.5-1.358", "accepted", "deadbeef"],
)
def test_masker_digits_inside_words_are_kept(masker: Masker, text: str) -> None:
    """Digits glued to letters, dots or dashes are part of a word, not a number to mask."""
    assert "<NUM>" not in masker.mask(text)
    assert "<HEX>" not in masker.mask(text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("unknown lease 10.100.4.251.", "unknown lease <IP>."),
        ("connection closed after 5.", "connection closed after <NUM>."),
        ("took 1.5. Retrying", "took <NUM>. Retrying"),
    ],
)
def test_masker_masks_a_value_that_ends_a_sentence(masker: Masker, text: str, masked: str) -> None:
    """A full stop after an address or number ends the sentence: the value is still masked, so the
    line has the same template as the one with the value in mid-sentence."""
    assert masker.mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("DHCPDISCOVER from 00:11:43:e3:ba:c3 via eth1", "DHCPDISCOVER from <MAC> via eth1"),
        ("mLp(FF:F2:9F:16:CF:0F:00:0D:60:E9:30:F0)", "mLp(<MAC>)"),
        ("at 12:34:56 ok", "at <NUM>:<NUM>:<NUM> ok"),
    ],
)
def test_masker_masks_hardware_addresses_whole(masker: Masker, text: str, masked: str) -> None:
    """Six or more colon-separated hex bytes are one <MAC>, not numbers with letter bytes left in
    the template (where any other address would be a new template); a time of day is not one."""
    assert masker.mask(text) == masked


def test_masker_gives_a_zero_padded_hex_field_one_token_with_or_without_letters(masker: Masker) -> None:
    """A zero-padded register printed without 0x holds no letter now and then; it is still <HEX>."""
    assert masker.mask("iar 00106570 dear 0245a8b0") == masker.mask("iar 0010a570 dear 0245a8b0")
    assert masker.mask("iar 00106570") == "iar <HEX>"


def test_masker_collapsing_runs_makes_a_list_of_any_length_one_token() -> None:
    """HDFS lists the blocks to delete on one line: with runs collapsed every length has one template."""
    collapsing = Masker(DEFAULT_MASKING, collapse_runs=True)
    one = collapsing.mask("BLOCK* ask 10.0.0.1:50010 to delete blk_1")
    assert one == "BLOCK* ask <IP> to delete <BLK>"
    assert collapsing.mask("BLOCK* ask 10.0.0.1:50010 to delete blk_1 blk_-2  blk_3") == one
    assert collapsing.mask("sizes 1 2 3, then 4") == "sizes <NUM> <NUM>, then <NUM>"  # whole tokens only
    assert Masker(DEFAULT_MASKING).mask("delete blk_1 blk_2") == "delete <BLK> <BLK>"


def test_masker_earlier_rule_wins_over_later_rule(masker: Masker) -> None:
    """An IP is masked whole, not as four numbers, because IP comes before NUM."""
    assert masker.mask("to 10.0.0.1 now") == "to <IP> now"


def test_masker_rule_with_groups_replaces_whole_match() -> None:
    """A rule whose regex has groups still replaces its whole match with its token."""
    assert Masker([("USER", r"user=(\w+)"), ("NUM", r"\d+")]).mask("user=bob id 7") == "<USER> id <NUM>"


def test_masker_without_rules_returns_text_unchanged() -> None:
    """No rules means no masking."""
    assert Masker([]).mask("blk_1 10.0.0.1") == "blk_1 10.0.0.1"


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ([("NUM", r"(\d+")], "NUM"),
        ([("bad name", r"\d+")], "bad name"),
        ([("NUM", r"\d+"), ("NUM", r"\w+")], "twice"),
        ([("NUM", r"(?P<n>\d+)")], "named groups"),
        ([("ANY", r"\d*")], "empty string"),
        ([("PAIR", r"(\d)\1")], "backreferences"),
        ([("PAIR", r"(\d)?(?(1)x|y)")], "backreferences"),
        ([("WORD", r"(?i)error")], r"\(\?i:\.\.\.\)"),
        ([("HUGE", r"a{4294967296}")], "HUGE.*OverflowError"),
        ([("DEEP", "(" * 5000 + "a" + ")" * 5000)], "DEEP.*RecursionError"),
    ],
)
def test_masker_invalid_rule_raises_config_error_naming_it(
    rules: list[tuple[str, str]], fragment: str
) -> None:
    """A bad rule name or regex is a ConfigError whose message names the problem: also a regex that
    compiles alone but not inside the masker's or a template's regex, or that the compiler refuses
    with another exception than re.error."""
    with pytest.raises(ConfigError, match=fragment):
        Masker(rules)


def test_masker_rule_with_a_scoped_flag_or_a_class_escape_is_accepted() -> None:
    """What looks like a flag or a backreference but nests fine is kept: ``(?i:...)``, and ``[\\1]``,
    an octal escape inside a class, not a reference."""
    masker = Masker([("WORD", r"(?i:error)"), ("ONE", r"[\1]x")])
    assert masker.mask("ERROR at \x01x") == "<WORD> at <ONE>"
