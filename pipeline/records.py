"""The data model: one frozen dataclass per Parquet table.

The Arrow schema of each table is derived from its dataclass (never inferred by pandas), so
an all-null column keeps its type and an empty table keeps its columns.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

ROLES = ("agent", "customer", "unknown")


@dataclass(frozen=True)
class Call:
    """One recording (or transcript file): metadata, metrics and overall score."""

    call_id: str
    source_path: str
    source_kind: str  # "audio" or "transcript"
    duration_s: float | None
    channels: int | None
    sample_rate: int | None
    agent_id: str | None = None
    team: str | None = None
    call_time: datetime | None = None
    direction: str | None = None
    channel_roles: str | None = None  # per-call channel map from a sidecar, e.g. "customer,agent"
    expected_speakers: str | None = None  # per-call speaker count for mono diarization from a sidecar, e.g. "2-3"
    diarization_mode: str = "none"  # "channel", "embedding" (mono), "rttm", "transcript"
    n_speakers: int = 0
    role_source: str | None = None  # "channel_map", "sidecar", "rttm", "transcript", "inferred"
    role_confidence: float | None = None  # inferred roles only: the least certain speaker's certainty
    needs_review: bool = False
    review_reason: str | None = None
    n_utterances: int = 0
    n_words: int = 0
    agent_talk_share: float | None = None
    n_questions_before_pitch: int | None = None
    pitch_first: bool | None = None
    n_agent_interruptions: int | None = None
    n_customer_interruptions: int | None = None
    # rubric metrics (issue 4): conversation dynamics, question mix, customer sentiment, competitors
    longest_agent_monologue_s: float | None = None  # words instead of seconds for untimed transcripts
    longest_customer_story_s: float | None = None
    switches_per_min: float | None = None
    agent_patience_s: float | None = None  # median pause before the agent answers the customer
    n_open_questions: int | None = None
    n_closed_questions: int | None = None
    customer_sentiment_start: float | None = None  # VADER compound, first third of the customer's talk
    customer_sentiment_end: float | None = None  # ... last third
    competitor_raised_by: str | None = None  # role that first mentioned a listed competitor
    score: float | None = None  # 0-100, weighted mean of the criterion scores
    status: str = "ingested"  # "ingested", "transcribed", "scored"
    model: str | None = None
    rubric_version: str | None = None
    settings_key: str | None = None  # hash of the settings that made the transcript (model, diarization, roles)
    rubric_key: str | None = None  # hash of the rubric that made the scores (and callqa's version)
    redactions: int = 0  # customer-data spans replaced by their entity type, e.g. [CARD_NUMBER]


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing, on the call's single timeline."""

    call_id: str
    word_idx: int
    channel: int
    speaker: str
    start_s: float
    end_s: float
    text: str
    probability: float
    utterance_idx: int | None = None


@dataclass(frozen=True)
class Utterance:
    """A run of one speaker's words, split at sentence ends and long pauses."""

    call_id: str
    utterance_idx: int
    speaker: str
    role: str
    channel: int | None
    start_s: float | None
    end_s: float | None
    text: str
    n_words: int
    is_question: bool | None = None
    question_type: str | None = None  # "open" or "closed"
    is_pitch: bool | None = None


@dataclass(frozen=True)
class Finding:
    """One piece of evidence for (or against) a rubric criterion."""

    call_id: str
    criterion: str
    rule_id: str
    kind: str  # "hit" (rule fired), "miss" (required element absent), "flag", "metric"
    role: str | None
    utterance_idx: int | None
    start_s: float | None
    end_s: float | None
    text: str | None
    detail: str | None = None


@dataclass(frozen=True)
class Score:
    """One criterion's score for one call."""

    call_id: str
    criterion: str
    score: float | None  # 0-1; None when the criterion cannot be judged (e.g. roles unknown)
    weight: float
    passed: bool | None
    detail: str | None = None


@dataclass(frozen=True)
class Failure:
    """A call (or input path) that could not be processed, and why."""

    call_id: str | None
    source_path: str
    stage: str
    error_type: str
    message: str


TABLES: dict[str, type] = {
    "calls": Call,
    "utterances": Utterance,
    "words": Word,
    "findings": Finding,
    "scores": Score,
    "failures": Failure,
}

_ARROW_TYPES = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    datetime: pa.timestamp("us"),
}


def _arrow_field(name: str, hint: object) -> pa.Field:
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return pa.field(name, _ARROW_TYPES[inner], nullable=True)
    return pa.field(name, _ARROW_TYPES[hint], nullable=False)


def arrow_schema(record_type: type) -> pa.Schema:
    """The Arrow schema of a record dataclass, field for field."""
    hints = typing.get_type_hints(record_type)
    return pa.schema(_arrow_field(f.name, hints[f.name]) for f in dataclasses.fields(record_type))


def to_arrow(records: typing.Sequence[object], record_type: type) -> pa.Table:
    """Records to a table with the record type's exact schema."""
    schema = arrow_schema(record_type)
    columns = {name: [getattr(r, name) for r in records] for name in schema.names}
    return pa.table(columns, schema=schema)


def from_arrow(table: pa.Table, record_type: type) -> list:
    """A table written by `to_arrow` back to records."""
    fields = dataclasses.fields(record_type)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    names = [f.name for f in fields]

    def value(row: dict, name: str) -> object:  # a column an older part lacks reads as its default
        got = row.get(name)
        return defaults.get(name) if got is None else got

    return [record_type(**{n: value(row, n) for n in names}) for row in table.to_pylist()]
