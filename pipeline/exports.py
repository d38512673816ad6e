"""Exports in formats other tools read, one file per call, named after the call id only.

- WebVTT with `<v Agent>` / `<v Customer>` voice tags (players, caption editors, callqa's own reader);
- SRT (the speaker's role before each cue's text);
- RTTM (the speaker timeline diarization tools read; the same turns as the run's `rttm/` folder);
- JSON shaped like the output of Amazon Transcribe Call Analytics (post-call), with callqa's
  scores and findings in a `CallQA` block; README "Exports" documents the field mapping.

Untimed utterances (from transcripts without times) cannot be cues or turns: they are left out
of WebVTT, SRT and RTTM and kept in the JSON.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from pathlib import Path

from pipeline.names import path_inside, safe_name
from pipeline.records import Call, Finding, Score, Utterance, Word
from pipeline.rttm import format_rttm, speaker_turns
from pipeline.store import atomic_file, read_table

BATCH_CALLS = 200  # calls read per batch: memory stays flat on a large dataset
NON_TALK_MIN_S = 3.0  # a silence at least this long is a NonTalkTime instance (Amazon's threshold is 3 s too)
PARTICIPANT_ROLES = {"agent": "AGENT", "customer": "CUSTOMER"}  # anything else: "UNKNOWN"


class ExportFormat(StrEnum):
    vtt = "vtt"
    srt = "srt"
    rttm = "rttm"
    json = "json"
    all = "all"


def _timed(utterances: Iterable[Utterance]) -> list[Utterance]:
    return sorted((u for u in utterances if u.start_s is not None and u.end_s is not None), key=lambda u: (u.start_s, u.utterance_idx))


def voice_names(utterances: Sequence[Utterance]) -> dict[str, str]:
    """A display name per speaker label: its role ("Agent"), numbered by first appearance when one
    role has several speakers in the call ("Agent 1", "Agent 2": a transfer)."""
    order: dict[str, str] = {}
    for u in sorted(utterances, key=lambda u: u.utterance_idx):
        order.setdefault(u.speaker, u.role)
    by_role: dict[str, list[str]] = defaultdict(list)
    for speaker, role in order.items():
        by_role[role].append(speaker)
    names = {}
    for role, speakers in by_role.items():
        for i, speaker in enumerate(speakers, start=1):
            names[speaker] = role.capitalize() if len(speakers) == 1 else f"{role.capitalize()} {i}"
    return names


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    """WebVTT cue text: `&`, `<` and `>` escaped, no blank line (which would end the cue)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(escaped.split())


def call_vtt(utterances: Sequence[Utterance]) -> str:
    """WebVTT, one cue per utterance, the speaker as a voice tag: `<v Agent>text</v>`."""
    names = voice_names(utterances)
    cues = [
        f"{_clock(u.start_s, '.')} --> {_clock(u.end_s, '.')}\n<v {names[u.speaker]}>{_cue_text(u.text)}</v>\n"
        for u in _timed(utterances)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def call_srt(utterances: Sequence[Utterance]) -> str:
    """SRT, one numbered cue per utterance; SRT has no voice tags, so the text starts `Agent: `."""
    names = voice_names(utterances)
    cues = [
        f"{n}\n{_clock(u.start_s, ',')} --> {_clock(u.end_s, ',')}\n{names[u.speaker]}: {' '.join(u.text.split())}\n"
        for n, u in enumerate(_timed(utterances), start=1)
    ]
    return "\n".join(cues)


def call_rttm(call_id: str, utterances: Sequence[Utterance]) -> str:
    """RTTM speaker turns, as the run writes them to `rttm/<call_id>.rttm`."""
    return format_rttm(call_id, speaker_turns(utterances))


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _items(words: Sequence[Word]) -> list[dict]:
    """Amazon's Items: each word a `pronunciation`, its trailing punctuation a `punctuation` item."""
    items = []
    for w in words:
        text = w.text.strip()
        match = re.fullmatch(r"(.*?)([.,?!;:]*)", text)
        core, punctuation = match.group(1), match.group(2)
        if core:
            items.append({"Type": "pronunciation", "Content": core, "BeginOffsetMillis": _millis(w.start_s),
                          "EndOffsetMillis": _millis(w.end_s), "Confidence": round(w.probability, 4)})
        if punctuation:
            items.append({"Type": "punctuation", "Content": punctuation})
    return items


def _merged(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _talk_time(utterances: Sequence[Utterance]) -> dict:
    timed = _timed(utterances)
    by_role: dict[str, dict] = {}
    for role in sorted({u.role for u in timed}):
        spans = _merged((u.start_s, u.end_s) for u in timed if u.role == role)
        seconds = sum(e - s for s, e in spans)
        words = sum(u.n_words for u in timed if u.role == role)
        by_role[PARTICIPANT_ROLES.get(role, "UNKNOWN")] = (seconds, words)
    total = sum(e - s for s, e in _merged((u.start_s, u.end_s) for u in timed))
    return {
        "TalkTime": {"TotalTimeMillis": _millis(total),
                     "DetailsByParticipant": {r: {"TotalTimeMillis": _millis(s)} for r, (s, _) in by_role.items()}},
        "TalkSpeed": {"DetailsByParticipant": {r: {"AverageWordsPerMinute": round(w / s * 60) if s else 0} for r, (s, w) in by_role.items()}},
    }


def _non_talk(utterances: Sequence[Utterance], duration_s: float | None) -> dict:
    spans = _merged((u.start_s, u.end_s) for u in _timed(utterances))
    edges = [0.0, *(t for span in spans for t in span), duration_s if duration_s is not None else (spans[-1][1] if spans else 0.0)]
    gaps = [(edges[i], edges[i + 1]) for i in range(0, len(edges) - 1, 2) if edges[i + 1] - edges[i] >= NON_TALK_MIN_S]
    instances = [{"BeginOffsetMillis": _millis(s), "EndOffsetMillis": _millis(e), "DurationMillis": _millis(e - s)} for s, e in gaps]
    return {"Instances": instances, "TotalTimeMillis": sum(i["DurationMillis"] for i in instances)}


def _categories(findings: Sequence[Finding]) -> dict:
    """Amazon's rule-based categories: each callqa rule that fired (hit or flag) is a matched category."""
    matched: dict[str, list[dict]] = defaultdict(list)
    for f in findings:
        if f.kind in ("hit", "flag"):
            points = matched[f.rule_id]
            if f.start_s is not None:
                points.append({"BeginOffsetMillis": _millis(f.start_s), "EndOffsetMillis": _millis(f.end_s)})
    return {"MatchedCategories": sorted(matched), "MatchedDetails": {k: {"PointsOfInterest": v} for k, v in sorted(matched.items())}}


def call_json(call: Call, utterances: Sequence[Utterance], words: Sequence[Word], findings: Sequence[Finding], scores: Sequence[Score]) -> dict:
    """One call shaped like Amazon Transcribe Call Analytics' post-call output, plus a `CallQA` block."""
    words_of: dict[int | None, list[Word]] = defaultdict(list)
    for w in sorted(words, key=lambda w: w.word_idx):
        words_of[w.utterance_idx].append(w)
    ordered = sorted(utterances, key=lambda u: (u.start_s is None, u.start_s or 0.0, u.utterance_idx))
    roles = sorted({PARTICIPANT_ROLES.get(u.role, "UNKNOWN") for u in ordered})
    return {
        "JobName": call.call_id,
        "JobStatus": "COMPLETED",
        "LanguageCode": "en-US",
        "Channel": "VOICE",
        "ContentMetadata": {"Output": "Redacted" if call.redactions else "Raw"},
        "Participants": [{"ParticipantRole": r} for r in roles],
        "Transcript": [
            {
                "Id": f"{call.call_id}-{u.utterance_idx}",
                "ParticipantRole": PARTICIPANT_ROLES.get(u.role, "UNKNOWN"),
                "Content": u.text,
                "BeginOffsetMillis": _millis(u.start_s),
                "EndOffsetMillis": _millis(u.end_s),
                "Items": _items(words_of.get(u.utterance_idx, [])),
            }
            for u in ordered
        ],
        "ConversationCharacteristics": {
            "TotalConversationDurationMillis": _millis(call.duration_s),
            **_talk_time(utterances),
            "NonTalkTime": _non_talk(utterances, call.duration_s),
            "Interruptions": {"TotalCount": (call.n_agent_interruptions or 0) + (call.n_customer_interruptions or 0)},
        },
        "Categories": _categories(findings),
        "CallQA": {
            "call": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in _call_fields(call).items()},
            "scores": [{"criterion": s.criterion, "score": s.score, "weight": s.weight, "passed": s.passed, "detail": s.detail} for s in scores],
            "findings": [
                {"criterion": f.criterion, "rule_id": f.rule_id, "kind": f.kind, "role": f.role, "utterance_id": (
                    None if f.utterance_idx is None else f"{call.call_id}-{f.utterance_idx}"),
                 "BeginOffsetMillis": _millis(f.start_s), "EndOffsetMillis": _millis(f.end_s), "text": f.text, "detail": f.detail}
                for f in findings
            ],
        },
    }


CALL_FIELDS = ("call_id", "source_kind", "duration_s", "agent_id", "team", "call_time", "direction", "diarization_mode", "n_speakers",
               "role_source", "role_confidence", "needs_review", "review_reason", "agent_talk_share", "n_questions_before_pitch",
               "pitch_first", "n_agent_interruptions", "n_customer_interruptions", "score", "rubric_version", "redactions")


def _call_fields(call: Call) -> dict:
    return {name: getattr(call, name, None) for name in CALL_FIELDS}


SUFFIXES = {ExportFormat.vtt: ".vtt", ExportFormat.srt: ".srt", ExportFormat.rttm: ".rttm", ExportFormat.json: ".json"}


def export_calls(
    out_dir: Path,
    dest: Path,
    formats: Sequence[ExportFormat],
    progress: Callable[[str, str, int, int], None] = lambda *_: None,
) -> dict[str, int]:
    """Write each call of `out_dir` in every format to `dest/<format>/<call_id>.<ext>`; returns files
    written per format. Calls without utterances (not transcribed) are skipped."""
    wanted = list(SUFFIXES) if ExportFormat.all in formats else [f for f in SUFFIXES if f in formats]
    calls = [c for c in read_table(out_dir, "calls") if c.n_utterances]
    written = {f.value: 0 for f in wanted}
    for start in range(0, len(calls), BATCH_CALLS):
        batch = calls[start : start + BATCH_CALLS]
        ids = [c.call_id for c in batch]
        tables = {t: _by_call(read_table(out_dir, t, call_ids=ids)) for t in ("utterances", "findings", "scores")}
        tables["words"] = _by_call(read_table(out_dir, "words", call_ids=ids)) if ExportFormat.json in wanted else {}
        for i, call in enumerate(batch, start=start + 1):
            utterances = tables["utterances"].get(call.call_id, [])
            for fmt in wanted:
                if fmt != ExportFormat.json and not _timed(utterances):
                    continue
                text = _render(fmt, call, utterances, tables)
                folder = dest / fmt.value
                folder.mkdir(parents=True, exist_ok=True)
                with atomic_file(path_inside(folder, safe_name(call.call_id) + SUFFIXES[fmt]), "w") as f:
                    f.write(text)
                written[fmt.value] += 1
            progress("export", call.call_id, i, len(calls))
    return written


def _render(fmt: ExportFormat, call: Call, utterances: list[Utterance], tables: dict[str, dict[str, list]]) -> str:
    if fmt == ExportFormat.vtt:
        return call_vtt(utterances)
    if fmt == ExportFormat.srt:
        return call_srt(utterances)
    if fmt == ExportFormat.rttm:
        return call_rttm(call.call_id, utterances)
    document = call_json(call, utterances, tables["words"].get(call.call_id, []), tables["findings"].get(call.call_id, []),
                         tables["scores"].get(call.call_id, []))
    return json.dumps(document, ensure_ascii=False, default=str) + "\n"  # compact: indent would switch off the C encoder (4x slower)


def _by_call(records: Iterable) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for r in records:
        grouped[r.call_id].append(r)
    return grouped
