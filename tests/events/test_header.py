"""Header stripping for the loghub formats, ISO lines, lines that match no header, bad regexes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from logwarden.errors import ConfigError
from logwarden.events.header import DEFAULT_HEADER_REGEX, HeaderStripper


@pytest.fixture(scope="module")
def stripper() -> HeaderStripper:
    """The stripper for the default header regex, compiled once for the module's many sample lines."""
    return HeaderStripper(DEFAULT_HEADER_REGEX)


@pytest.mark.parametrize(
    ("line", "content"),
    [
        (
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: "
            "PacketResponder 1 for block blk_38 terminating",
            "PacketResponder 1 for block blk_38 terminating",
        ),
        (
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
            "Invalid user webmaster from 173.234.31.186",
        ),
        ("Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown", "check pass; user unknown"),
        ("Jul  3 04:08:03 combo syslogd 1.4.1: restart.", "restart."),
        (
            "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 "
            "RAS KERNEL INFO instruction cache parity error corrected",
            "instruction cache parity error corrected",
        ),
        (
            "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: "
            "session closed for user root",
            "session closed for user root",
        ),
        ("2026-11-21T10:00:00Z host svc: user alice logged in", "user alice logged in"),
        ("2026-11-21 10:00:00.123+01:00 web-1 nginx[77]: GET /", "GET /"),
    ],
)
def test_header_stripper_known_formats_keep_only_content(
    stripper: HeaderStripper, line: str, content: str
) -> None:
    """HDFS, syslog (OpenSSH, Linux), BGL, Thunderbird and ISO headers are removed."""
    assert stripper.content_of(line) == content


@pytest.mark.parametrize(("name", "prefix"), [("OpenSSH", "Dec "), ("Linux", "Jun "), ("HDFS", "0811")])
def test_header_stripper_loghub_lines_lose_their_timestamp(
    stripper: HeaderStripper, loghub_lines: Callable[[str], list[str]], name: str, prefix: str
) -> None:
    """Every loghub line of the sample loses its header, so no timestamp reaches the miner."""
    lines = loghub_lines(name)
    assert lines[0].startswith(prefix)
    contents = [stripper.content_of(line) for line in lines]
    assert all(
        content != line and len(content) < len(line) for content, line in zip(contents, lines, strict=True)
    )
    assert not any(content.startswith(prefix) for content in contents)


def test_header_stripper_openssh_matches_loghub_content(
    stripper: HeaderStripper, loghub_lines: Callable[[str], list[str]]
) -> None:
    """OpenSSH contents equal the Content column loghub published for the same lines."""
    lines = loghub_lines("OpenSSH")
    assert stripper.content_of(lines[0]) == (
        "reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] "
        "failed - POSSIBLE BREAK-IN ATTEMPT!"
    )
    assert stripper.content_of(lines[2]) == "input_userauth_request: invalid user webmaster [preauth]"


def test_header_stripper_unmatched_line_keeps_whole_line(stripper: HeaderStripper) -> None:
    """A line in no known format is its own content."""
    assert stripper.content_of("free text: no header here") == "free text: no header here"


def test_header_stripper_custom_regex_uses_content_group() -> None:
    """A configured regex's content group is what is kept."""
    assert HeaderStripper(r"\[\w+\] (?P<content>.*)").content_of("[app] started") == "started"


@pytest.mark.parametrize(
    "regex",
    [
        r"(?P<content>.*",
        r"^\S+ (.*)",
        r"(?P<content>.{4294967296})",
        "(" * 5000 + "(?P<content>.*)" + ")" * 5000,
    ],
)
def test_header_stripper_bad_regex_raises_config_error_naming_it(regex: str) -> None:
    """An invalid regex, one the compiler refuses with OverflowError or RecursionError, or one without a
    content group is a ConfigError quoting the regex (its start when long)."""
    with pytest.raises(ConfigError) as caught:
        HeaderStripper(regex)
    assert repr(regex)[:40] in str(caught.value)
