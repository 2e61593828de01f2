"""Mine templates from raw log lines or JSON events with Drain3 and group them into per-entity sessions.

Drain3 only proposes the templates.  Every line is then assigned by ``TemplateMatcher``, the
function the daemon runs, so an event's id at training time is the id it gets when scored.
Drain3 runs in memory with its configuration built in code: no ini file, no persistence
handler, no pickled snapshot.  Masking is ours, applied before Drain3 sees a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from logwarden.events.entity import RegexEntityExtractor, entity_as_wildcard, entity_refusal
from logwarden.events.header import HeaderStripper
from logwarden.events.json_events import JsonEventReader, JsonFields, read_json_lines
from logwarden.events.line_tally import LineTally
from logwarden.events.log_files import not_utf8
from logwarden.events.masking import Masker, mask_token
from logwarden.events.templates import NO_MATCH, WILDCARD, TemplateMatcher
from logwarden.model.contract import ParserSettings

from .progress import Progress


@dataclass
class MinedLogs:
    """Templates and the sessions they form.

    ``keys[i]`` is the event key of ``templates[i]``; ``sessions`` maps each entity, in order
    of first appearance, to its template indices in line order; ``template_counts[i]`` is how
    many lines template i got.  Lines without an entity and lines no template fits are
    counted, not silently dropped.  Blank lines are counted apart, in ``blank_lines``, and not
    in ``lines_total``, as the scorer counts them.
    """

    templates: list[str]
    keys: list[str]
    sessions: dict[str, list[int]]
    lines_total: int
    lines_without_entity: int
    unmatched_lines: int
    template_counts: list[int] = field(default_factory=list)
    blank_lines: int = 0
    invalid_lines: int = 0
    """Lines that are no JSON object with a message, or whose entity the daemon refuses (reasons in
    ``invalid_reasons``)."""
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    first_invalid: str | None = None
    lines_without_header: int = 0
    """Mined lines the header regex did not match, so mined whole: timestamps, host and all (raw logs)."""


@dataclass
class DrainMining:
    """Drain3's own result: distinct templates and, per mined content, the index of its final template."""

    templates: list[str]
    assigned: list[int]


DEFAULT_SIMILARITY = 0.4
"""Drain3's similarity threshold (``sim_th``): the share of a line's non-wildcard tokens that must
equal a template's for the line to join it (Drain3's own default).  Lower merges more: on messages of
two or three words one differing word already falls below 0.4 (``<*> delete cache`` and ``<*> delete
spool`` stay two templates at 0.4 and become ``<*> delete <*>`` at 0.3)."""


PROGRESS_CHECK_LINES = 4096
"""Mining looks at the clock once per this many lines: a line costs 26 µs to milliseconds."""


def template_key(index: int) -> str:
    """Event key of template ``index`` (vocabulary entry of raw-log models)."""
    return f"T{index}"


def drain_config(*, sim_th: float, depth: int) -> TemplateMinerConfig:
    """Drain3 configuration built in code, so no drain3.ini is looked for (and none warned about)."""
    config = TemplateMinerConfig()
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.drain_extra_delimiters = []
    config.masking_instructions = []
    config.profiling_enabled = False
    return config


def mine_templates(
    masked_contents: Iterable[str], *, sim_th: float = DEFAULT_SIMILARITY, depth: int = 4
) -> DrainMining:
    """Run Drain3 over already-masked contents, in order; deterministic for the same input.

    Templates are listed by first appearance (Drain3 cluster id); clusters that ended with the
    same template text are merged.
    """
    miner = TemplateMiner(persistence_handler=None, config=drain_config(sim_th=sim_th, depth=depth))
    progress = Progress("mining_progress")
    cluster_ids: list[int] = []
    for content in masked_contents:
        cluster_ids.append(miner.add_log_message(content)["cluster_id"])
        if not len(cluster_ids) % PROGRESS_CHECK_LINES:
            progress.tick(lines=len(cluster_ids), templates=len(miner.drain.clusters))
    templates: list[str] = []
    index_of_template: dict[str, int] = {}
    index_of_cluster: dict[int, int] = {}
    for cluster in sorted(miner.drain.clusters, key=lambda c: c.cluster_id):
        template = cluster.get_template()
        index = index_of_template.setdefault(template, len(templates))
        if index == len(templates):
            templates.append(template)
        index_of_cluster[cluster.cluster_id] = index
    return DrainMining(templates=templates, assigned=[index_of_cluster[c] for c in cluster_ids])


def mine_log_lines(
    lines: Iterable[str], settings: ParserSettings, *, sim_th: float = DEFAULT_SIMILARITY, depth: int = 4
) -> MinedLogs:
    """Mine templates from the lines that name an entity, then assign every such line by matching.

    Lines without an entity are left out of mining too: a template seen only outside sessions
    would be an event the model never learns.  So are lines whose entity the daemon would send to
    its dead-letter topic (longer than ``MAX_ENTITY_CHARS``), counted in ``invalid_lines``.
    """
    header = HeaderStripper(settings.header_regex)
    if settings.entity_regex is None:
        raise ValueError("raw log lines need an entity regex")
    entity_extractor = RegexEntityExtractor(settings.entity_regex)

    lines_total = 0
    lines_without_entity = 0
    blank_lines = 0
    lines_without_header = 0
    refused = LineTally()  # lines whose entity the daemon would refuse (entity_refusal), by reason
    entities: list[str] = []
    contents: list[str] = []
    for line_number, raw_line in enumerate(lines, 1):
        line = raw_line.rstrip("\r\n")
        if not line.strip():  # counted apart, as the scorer does: a blank line names no entity
            blank_lines += 1
            continue
        lines_total += 1
        undecodable = not_utf8(line)  # the daemon's dead letter: no session holds this line
        if undecodable is not None:
            refused.count_invalid(line_number, undecodable)
            continue
        entity = entity_extractor.entity_of(line)
        if entity is None:
            lines_without_entity += 1
            continue
        refusal = entity_refusal(entity, "entity regex")
        if refusal is not None:
            refused.count_invalid(line_number, refusal)
            continue
        entities.append(entity)
        content = header.content_or_none(line)
        if content is None:
            lines_without_header += 1
            content = line
        contents.append(content)

    mined = _mine_and_assign(
        entities, contents, settings, lines_total, lines_without_entity, sim_th=sim_th, depth=depth
    )
    mined.blank_lines = blank_lines
    mined.lines_without_header = lines_without_header
    mined.invalid_lines = refused.invalid_lines
    mined.invalid_reasons = refused.invalid_reasons
    mined.first_invalid = refused.first_invalid
    return mined


def mine_json_lines(
    lines: Iterable[str],
    settings: ParserSettings,
    fields: JsonFields,
    *,
    sim_th: float = DEFAULT_SIMILARITY,
    depth: int = 4,
) -> MinedLogs:
    """``mine_log_lines`` for JSON events, one object per line, read as the daemon reads JSON records.

    The message field plays the part of a raw line (its header stripped by ``settings.header_regex``,
    as the daemon does); the entity is the entity field's value, or with no entity field the first
    match of ``settings.entity_regex`` in the message.  Lines that are no JSON object with a message
    are counted by reason in ``invalid_lines``.
    """
    header = HeaderStripper(settings.header_regex)
    tally = LineTally()
    entities: list[str] = []
    contents: list[str] = []
    for entity, event in read_json_lines(lines, JsonEventReader(fields, settings.entity_regex), tally):
        entities.append(entity)
        contents.append(header.content_of(event.text))
    mined = _mine_and_assign(
        entities, contents, settings, tally.lines, tally.lines_without_entity, sim_th=sim_th, depth=depth
    )
    mined.blank_lines = tally.blank_lines
    mined.invalid_lines = tally.invalid_lines
    mined.invalid_reasons = tally.invalid_reasons
    mined.first_invalid = tally.first_invalid
    return mined


def _mine_and_assign(
    entities: Sequence[str],
    contents: Sequence[str],
    settings: ParserSettings,
    lines_total: int,
    lines_without_entity: int,
    *,
    sim_th: float,
    depth: int,
) -> MinedLogs:
    """Templates mined from ``contents``, then every content assigned by the daemon's matcher.

    Where a mined line fits none of the templates (a list Drain3 merged with a word, see
    ``templates_for_unfitted_lines``), the templates that fit it are added and every line assigned again.
    The masked lines are made as Drain3 reads them and not kept: a large training file is in memory
    once, as ``contents``.
    """
    masked = masked_for_mining(entities, contents, settings)
    mining = mine_templates(masked, sim_th=sim_th, depth=depth)
    mined = assign_sessions(
        mining.templates,
        entities,
        contents,
        settings,
        lines_total=lines_total,
        lines_without_entity=lines_without_entity,
    )
    if not mined.unmatched_lines:
        return mined
    added = templates_for_unfitted_lines(mining, entities, contents, settings)
    if not added:
        return mined
    return assign_sessions(
        mining.templates + added,
        entities,
        contents,
        settings,
        lines_total=lines_total,
        lines_without_entity=lines_without_entity,
    )


def masked_for_mining(
    entities: Sequence[str], contents: Sequence[str], settings: ParserSettings
) -> Iterator[str]:
    """Each content as Drain3 mines it: masked, and its entity's token a wildcard."""
    masker = Masker(settings.masking, settings.collapse_repeated_masks)
    for content, entity in zip(contents, entities, strict=True):
        yield entity_as_wildcard(masker.mask(content), entity)


def templates_for_unfitted_lines(
    mining: DrainMining, entities: Sequence[str], contents: Sequence[str], settings: ParserSettings
) -> list[str]:
    """Templates for the mined lines that fit none of Drain3's: each its template with the masks put back.

    Drain3 sees masked text, where one token may stand for several: a list (``0 1 2 3``) collapsed to
    ``<NUM>`` so that lists of any length make one template, or a rule whose match spans a space
    (``user bob`` as ``<USER>``).  When Drain3 merges such a line with one holding a plain word at
    that place (``released cpus all``) it writes ``<*>``, which the matcher reads as exactly one
    token: the line it was mined from no longer fits, and every such line would be UNKNOWN, in
    training and in scoring.  Its template with each ``<*>`` where the line's token holds a mask
    given that token back (``released cpus <NUM>``, which fits a list) fits it.  Added after
    Drain3's templates, in the order the lines came, once each.
    """
    matcher = TemplateMatcher(mining.templates, settings.masking, settings.collapse_repeated_masks)
    masker = Masker(settings.masking, settings.collapse_repeated_masks)  # as masked_for_mining
    masks = re.compile("|".join(re.escape(mask_token(name)) for name, _ in settings.masking) or r"(?!)")
    known = set(mining.templates)
    added: dict[str, None] = {}
    for index, content in enumerate(contents):
        if matcher.match_one(content) != NO_MATCH:
            continue
        template = mining.templates[mining.assigned[index]].split()
        tokens = entity_as_wildcard(masker.mask(content), entities[index]).split()
        if len(tokens) != len(template):
            continue
        fitted = " ".join(
            token if mined == WILDCARD and masks.search(token) else mined
            for mined, token in zip(template, tokens, strict=True)
        )
        if fitted not in known:
            added.setdefault(fitted)
    return list(added)


def assign_sessions(
    templates: Sequence[str],
    entities: Sequence[str],
    contents: Sequence[str],
    settings: ParserSettings,
    *,
    lines_total: int,
    lines_without_entity: int,
) -> MinedLogs:
    """Group contents into sessions by entity, each assigned with the daemon's TemplateMatcher."""
    matcher = TemplateMatcher(templates, settings.masking, settings.collapse_repeated_masks)
    sessions: dict[str, list[int]] = {}
    counts = [0] * len(templates)
    unmatched = 0
    for entity, content in zip(entities, contents, strict=True):
        index = matcher.match_one(content)
        if index == NO_MATCH:
            unmatched += 1
            continue
        counts[index] += 1
        sessions.setdefault(entity, []).append(index)
    return MinedLogs(
        templates=list(templates),
        keys=[template_key(i) for i in range(len(templates))],
        sessions=sessions,
        lines_total=lines_total,
        lines_without_entity=lines_without_entity,
        unmatched_lines=unmatched,
        template_counts=counts,
    )
