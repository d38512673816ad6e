"""Example pulls for trainers and QA leads: the calls that did worst (or best) on one criterion,
with the evidence around the moment that decided it.

An example is one call and one criterion: its score, every finding of that criterion (the rules
that fired, and the required elements that were absent, "miss"), the moment (the first finding
that counts against the call for --worst, for it for --best) and the utterances around that
moment with their speaker roles and times. An absence has no time of its own: it is shown where
the criterion looked, beside the findings of the same criterion that have a time (the greeting
found in an opening without an offer to help), else at the start of the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import pandas as pd

from pipeline.errors import ConfigError
from pipeline.records import Finding, Utterance
from pipeline.store import read_frame, read_table

AGAINST_KINDS = ("miss", "flag")  # evidence that counts against a call: the moment of a bad example
FOR_KINDS = ("hit",)  # evidence that counts for it: the moment of a good example
CALL_COLUMNS = ["call_id", "source_path", "source_kind", "duration_s", "agent_id", "team", "call_time", "role_confidence", "score"]


class Direction(StrEnum):
    worst = "worst"
    best = "best"


@dataclass(frozen=True)
class ExampleQuery:
    """Which examples to pull. `min_confidence` drops calls whose inferred roles are less certain
    (roles from a channel map, sidecar or RTTM count as certain); `since` drops calls before that
    time and calls without a call_time."""

    criterion: str
    n: int = 10
    direction: Direction = Direction.worst
    agent_id: str | None = None
    since: datetime | None = None
    min_confidence: float | None = None
    context_utterances: int = 2


@dataclass(frozen=True)
class Line:
    """An utterance shown with an example; `in_moment` marks the ones the moment covers."""

    utterance_idx: int
    speaker: str
    role: str
    start_s: float | None
    end_s: float | None
    text: str
    in_moment: bool


@dataclass(frozen=True)
class Example:
    rank: int
    call_id: str
    source_path: str
    source_kind: str
    duration_s: float | None
    agent_id: str | None
    call_time: datetime | None
    criterion: str
    criterion_score: float  # 0-1
    passed: bool | None
    score_detail: str | None
    call_score: float | None  # 0-100
    findings: tuple[Finding, ...]  # the criterion's findings, the ones that decided the example first
    moment_start_s: float | None
    moment_end_s: float | None
    lines: tuple[Line, ...]

    @property
    def deciding(self) -> tuple[Finding, ...]:
        """The findings of the kind the example was pulled for (misses and flags for a bad one)."""
        return tuple(f for f in self.findings if f.kind in focus_kinds(self.passed))


def focus_kinds(passed: bool | None) -> tuple[str, ...]:
    """A call that did not pass is shown by what counts against it; one that passed, by what counts for it."""
    return FOR_KINDS if passed else AGAINST_KINDS


def pull_examples(out_dir: Path, query: ExampleQuery) -> list[Example]:
    """The `query.n` worst (or best) calls on `query.criterion`, with their evidence."""
    scores = read_frame(out_dir, "scores", ["call_id", "criterion", "score", "passed", "detail"])
    known = sorted(set(scores["criterion"]))
    if query.criterion not in known:
        raise ConfigError(f"criterion {query.criterion!r} is not in the scores of {out_dir}; "
                          f"choose one of: {', '.join(known) or '(none: score the calls first)'}.")
    calls = read_frame(out_dir, "calls", CALL_COLUMNS)
    chosen = _select(scores[scores["criterion"] == query.criterion].merge(calls, on="call_id", suffixes=("", "_call")), query)
    ids = list(chosen["call_id"])
    findings = _by_call(read_table(out_dir, "findings", call_ids=ids))
    utterances = _by_call(read_table(out_dir, "utterances", call_ids=ids))
    return [
        _example(rank, row, [f for f in findings.get(row.call_id, []) if f.criterion == query.criterion],
                 utterances.get(row.call_id, []), query.context_utterances)
        for rank, row in enumerate(chosen.itertuples(index=False), start=1)
    ]


def _select(rows: pd.DataFrame, query: ExampleQuery) -> pd.DataFrame:
    rows = rows[rows["score"].notna()]
    if query.agent_id is not None:
        rows = rows[rows["agent_id"] == query.agent_id]
    if query.since is not None:
        rows = rows[rows["call_time"].notna() & (rows["call_time"] >= pd.Timestamp(query.since))]
    if query.min_confidence is not None:
        rows = rows[rows["role_confidence"].isna() | (rows["role_confidence"] >= query.min_confidence)]
    ascending = query.direction == Direction.worst
    # ties on the criterion broken by the whole call's score, then by id, so a pull is repeatable
    return rows.sort_values(["score", "score_call", "call_id"], ascending=[ascending, ascending, True], na_position="last").head(query.n)


def _example(rank: int, row, findings: list[Finding], utterances: list[Utterance], context: int) -> Example:
    kinds = focus_kinds(_none_if_na(row.passed))
    ordered = sorted(findings, key=lambda f: (f.kind not in kinds, f.start_s is None, f.start_s or 0.0, f.rule_id))
    moment = _moment(ordered, kinds, utterances)
    return Example(
        rank=rank,
        call_id=row.call_id,
        source_path=row.source_path,
        source_kind=row.source_kind,
        duration_s=_none_if_na(row.duration_s),
        agent_id=_none_if_na(row.agent_id),
        call_time=None if pd.isna(row.call_time) else row.call_time.to_pydatetime(),
        criterion=row.criterion,
        criterion_score=float(row.score),
        passed=_none_if_na(row.passed),
        score_detail=_none_if_na(row.detail),
        call_score=_none_if_na(row.score_call),
        findings=tuple(ordered),
        moment_start_s=moment[0],
        moment_end_s=moment[1],
        lines=_lines(utterances, moment, context),
    )


def _none_if_na(value):
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _located(findings: Sequence[Finding], utterances: Sequence[Utterance]) -> list[tuple[float, float]]:
    """Time spans of the findings that have one (their own times, else their utterance's)."""
    by_idx = {u.utterance_idx: u for u in utterances}
    spans = []
    for f in findings:
        if f.start_s is not None and f.end_s is not None:
            spans.append((f.start_s, f.end_s))
        elif f.utterance_idx in by_idx and by_idx[f.utterance_idx].start_s is not None:
            u = by_idx[f.utterance_idx]
            spans.append((u.start_s, u.end_s))
    return spans


def _moment(findings: Sequence[Finding], kinds: Sequence[str], utterances: Sequence[Utterance]) -> tuple[float | None, float | None]:
    """The first deciding finding with a time; an absence: the span of the criterion's located
    findings; nothing located: the first utterance of the call."""
    focus = _located([f for f in findings if f.kind in kinds], utterances)
    if focus:
        return min(focus)
    others = _located(findings, utterances)
    if others:
        return min(s for s, _ in others), max(e for _, e in others)
    timed = sorted((u for u in utterances if u.start_s is not None), key=lambda u: u.start_s)
    return (timed[0].start_s, timed[0].end_s) if timed else (None, None)


def _lines(utterances: Sequence[Utterance], moment: tuple[float | None, float | None], context: int) -> tuple[Line, ...]:
    ordered = sorted(utterances, key=lambda u: u.utterance_idx)
    start, end = moment
    if start is None:
        inside = list(range(min(len(ordered), context + 1)))
    else:
        inside = [i for i, u in enumerate(ordered) if u.start_s is not None and u.start_s < end and u.end_s > start]
        if not inside:  # a moment between utterances: the one starting nearest
            inside = [min(range(len(ordered)), key=lambda i: abs((ordered[i].start_s or 0.0) - start))] if ordered else []
    if not inside:
        return ()
    first, last = max(0, inside[0] - context), min(len(ordered), inside[-1] + context + 1)
    return tuple(
        Line(u.utterance_idx, u.speaker, u.role, u.start_s, u.end_s, u.text, i in inside) for i, u in enumerate(ordered[first:last], start=first)
    )


def _by_call(records: Sequence) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for r in records:
        grouped.setdefault(r.call_id, []).append(r)
    return grouped


def format_example(example: Example) -> str:
    """Plain text for a terminal or a log: the call, the score, the evidence, the utterances."""
    when = example.call_time.strftime("%Y-%m-%d %H:%M") if example.call_time else "-"
    head = (f"#{example.rank} {example.call_id}  {Path(example.source_path).name}  agent {example.agent_id or '-'}  {when}\n"
            f"   {example.criterion}: {example.criterion_score:.2f} ({'passed' if example.passed else 'not passed'})"
            f" {example.score_detail or ''}; call score {_number(example.call_score)}")
    evidence = [
        f"   {f.kind:<6} {f.rule_id:<34} {_span(f.start_s, f.end_s):>15}  {_quote(f.text)}{' - ' + f.detail if f.detail else ''}"
        for f in example.findings
    ]
    lines = [
        f"   {'>' if line.in_moment else ' '} {_span(line.start_s, line.end_s):>15} {line.role:<8} {line.text}" for line in example.lines
    ]
    return "\n".join([head, "   evidence:", *evidence, "   around the moment:", *lines])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _span(start: float | None, end: float | None) -> str:
    return "" if start is None else f"{_clock(start)}-{_clock(end if end is not None else start)}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}"


def _quote(text: str | None) -> str:
    return f'"{text}"' if text else ""
