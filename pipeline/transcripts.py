"""Existing transcripts as input: JSON, JSONL and WebVTT with <v Speaker> voice tags.

JSON: {"call_id": optional, "agent_id"/"team"/"call_time"/"direction": optional,
       "utterances": [{"speaker": "...", "role": optional, "start_s": optional,
                       "end_s": optional, "text": "..."}]}
      or just the list of utterances. JSONL: one utterance object per line.
A speaker named agent/rep/representative or customer/caller/client gets that role when the
utterance has no explicit role; any other speaker is `unknown` here, and the runner infers
the roles from what each says (as for audio).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import webvtt

from pipeline.errors import TranscriptError
from pipeline.names import safe_name
from pipeline.options import IngestOptions
from pipeline.records import Call, Utterance
from pipeline.stages.ingest import SIDECAR_SUFFIX, call_metadata, content_id, parse_call_time

TRANSCRIPT_SUFFIXES = frozenset({".json", ".jsonl", ".vtt"})
SPEAKER_ROLES = {
    "agent": "agent", "rep": "agent", "representative": "agent", "advisor": "agent",
    "customer": "customer", "caller": "customer", "client": "customer",
}


def is_transcript(path: Path) -> bool:
    return path.suffix.lower() in TRANSCRIPT_SUFFIXES and not path.name.endswith(SIDECAR_SUFFIX)


def _role(raw: dict) -> str:
    role = str(raw.get("role") or SPEAKER_ROLES.get(str(raw.get("speaker", "")).strip().lower(), "unknown")).lower()
    return role if role in ("agent", "customer") else "unknown"


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)


def _rows_from_json(path: Path) -> tuple[dict, list[dict]]:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".jsonl":
            return {}, [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if isinstance(data, list):
        return {}, data
    if not isinstance(data, dict) or not isinstance(data.get("utterances"), list):
        raise TranscriptError('expected a list of utterances or an object with an "utterances" list.')
    return data, data["utterances"]


def _rows_from_vtt(path: Path) -> list[dict]:
    try:
        captions = webvtt.read(str(path))
    except webvtt.errors.MalformedFileError as exc:
        raise TranscriptError(f"not valid WebVTT ({exc}).") from None
    return [
        {"speaker": c.voice or "unknown", "start_s": _seconds(c.start_time), "end_s": _seconds(c.end_time), "text": html.unescape(c.text)}
        for c in captions
    ]


def _seconds(timestamp) -> float:
    """webvtt-py's own `in_seconds` truncates to whole seconds."""
    hours, minutes, seconds, milliseconds = timestamp.to_tuple()
    return hours * 3600 + minutes * 60 + seconds + milliseconds / 1000


def read_transcript(path: Path, options: IngestOptions) -> tuple[Call, list[Utterance]]:
    """A Call and its utterances from one transcript file."""
    if path.suffix.lower() == ".vtt":
        header, rows = {}, _rows_from_vtt(path)
    else:
        header, rows = _rows_from_json(path)
    call_id = safe_name(str(header.get("call_id") or content_id(path)))  # output files are named after it
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise TranscriptError(f"utterance {number} has no text; each utterance needs a \"text\" string.")
    try:
        utterances = [
            Utterance(
                call_id=call_id,
                utterance_idx=idx,
                speaker=str(row.get("speaker") or row.get("role") or "unknown"),
                role=_role(row),
                channel=None,
                start_s=_float_or_none(row.get("start_s")),
                end_s=_float_or_none(row.get("end_s")),
                text=" ".join(row["text"].split()),
                n_words=len(row["text"].split()),
            )
            for idx, row in enumerate(r for r in rows if r["text"].strip())
        ]
    except (TypeError, ValueError) as exc:
        raise TranscriptError(f"an utterance has a malformed time ({exc}); start_s and end_s must be numbers.") from None
    if not utterances:
        raise TranscriptError("the transcript has no utterances with text.")
    roles = {u.role for u in utterances}
    roles_known = {"agent", "customer"} <= roles
    metadata = call_metadata(path, options, {})
    metadata.update({k: str(header[k]) for k in ("agent_id", "team", "direction") if header.get(k)})
    if header.get("call_time"):
        metadata["call_time"] = parse_call_time(str(header["call_time"]))
    call = Call(
        call_id=call_id,
        source_path=str(path),
        source_kind="transcript",
        duration_s=max((u.end_s for u in utterances if u.end_s is not None), default=None),
        channels=None,
        sample_rate=None,
        diarization_mode="transcript",
        n_speakers=len({u.speaker for u in utterances}),
        needs_review=not roles_known,
        review_reason=None if roles_known else "transcript does not name both an agent and a customer",
        n_utterances=len(utterances),
        status="transcribed",
        **metadata,
    )
    return call, utterances
