"""Exports of the real sample run: WebVTT parsed by webvtt-py, SRT, RTTM through callqa's reader, JSON."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pytest
import webvtt
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.exports import ExportFormat, call_vtt, export_calls, voice_names
from pipeline.options import IngestOptions
from pipeline.records import Utterance
from pipeline.rttm import parse_rttm, speaker_turns
from pipeline.store import read_table
from pipeline.transcripts import read_transcript


@pytest.fixture(scope="module")
def exported(sample_run, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("exports")
    export_calls(sample_run, dest, [ExportFormat.all])
    return dest


def utterances_of(sample_run: Path) -> dict[str, list[Utterance]]:
    grouped: dict[str, list[Utterance]] = {}
    for u in read_table(sample_run, "utterances"):
        grouped.setdefault(u.call_id, []).append(u)
    return grouped


def test_files_are_named_after_call_ids_only(sample_run, exported):
    ids = {c.call_id for c in read_table(sample_run, "calls")}
    for fmt in ("vtt", "srt", "rttm", "json"):
        assert {p.stem for p in (exported / fmt).iterdir()} == ids, fmt
        assert {p.suffix for p in (exported / fmt).iterdir()} == {f".{fmt}"}


def test_webvtt_parses_with_a_voice_per_speaker_and_every_utterance(sample_run, exported):
    for call_id, utterances in utterances_of(sample_run).items():
        captions = webvtt.read(str(exported / "vtt" / f"{call_id}.vtt"))
        ordered = sorted(utterances, key=lambda u: (u.start_s, u.utterance_idx))
        assert [html.unescape(c.text) for c in captions] == [" ".join(u.text.split()) for u in ordered]
        names = voice_names(utterances)
        assert [c.voice for c in captions] == [names[u.speaker] for u in ordered]
        roles = {u.role for u in utterances}
        if len({u.speaker for u in utterances}) == 2 and roles == {"agent", "customer"}:
            assert {c.voice for c in captions} == {"Agent", "Customer"}


def test_webvtt_reads_back_into_callqa_with_the_same_roles(sample_run, exported):
    """The export is also an input: `callqa score exports/vtt/` reads voices named Agent/Customer."""
    calls = {c.call_id: c for c in read_table(sample_run, "calls")}
    two_party = [cid for cid, c in calls.items() if c.n_speakers == 2]
    for call_id in two_party:
        _, utterances = read_transcript(exported / "vtt" / f"{call_id}.vtt", IngestOptions())
        original = sorted(utterances_of(sample_run)[call_id], key=lambda u: (u.start_s, u.utterance_idx))
        assert [u.role for u in utterances] == [u.role for u in original]


def test_webvtt_escapes_markup_in_the_text():
    text = "a <b>bold</b> & --> claim"
    vtt = call_vtt([Utterance("c", 0, "ch0", "agent", 0, 0.0, 1.0, text, 5)])
    (caption,) = webvtt.from_buffer(io.StringIO(vtt))
    assert "<b>" not in caption.raw_text and html.unescape(caption.text) == text


def test_webvtt_text_with_markup_reads_back_unchanged(tmp_path):
    text = "AT&T and <Metro Cable> quoted 5 > 3"
    path = tmp_path / "call.vtt"
    path.write_text(call_vtt([Utterance("c", 0, "ch0", "agent", 0, 0.0, 1.0, text, 5)]))
    _, (utterance,) = read_transcript(path, IngestOptions())
    assert utterance.text == text


def test_srt_has_a_numbered_cue_per_utterance_with_the_role(sample_run, exported):
    for call_id, utterances in utterances_of(sample_run).items():
        captions = webvtt.from_srt(str(exported / "srt" / f"{call_id}.srt"))
        ordered = sorted(utterances, key=lambda u: (u.start_s, u.utterance_idx))
        names = voice_names(utterances)
        assert [c.text for c in captions] == [f"{names[u.speaker]}: {' '.join(u.text.split())}" for u in ordered]
        assert [c.start_in_seconds for c in captions] == [int(u.start_s) for u in ordered]


def test_rttm_round_trips_through_the_rttm_reader(sample_run, exported):
    for call_id, utterances in utterances_of(sample_run).items():
        text = (exported / "rttm" / f"{call_id}.rttm").read_text()
        assert {line.split()[1] for line in text.splitlines()} == {call_id}
        turns, expected = parse_rttm(text, source=call_id), speaker_turns(utterances)
        assert [t.speaker for t in turns] == [t.speaker for t in expected]
        for got, want in zip(turns, expected, strict=True):
            assert got.start_s == pytest.approx(want.start_s, abs=0.0015) and got.end_s == pytest.approx(want.end_s, abs=0.0015)


def test_json_follows_the_call_analytics_shape(sample_run, exported):
    words = read_table(sample_run, "words")
    findings, scores = read_table(sample_run, "findings"), read_table(sample_run, "scores")
    for call in read_table(sample_run, "calls"):
        doc = json.loads((exported / "json" / f"{call.call_id}.json").read_text())
        utterances = utterances_of(sample_run)[call.call_id]
        assert doc["JobName"] == call.call_id and len(doc["Transcript"]) == len(utterances)
        roles = {"agent": "AGENT", "customer": "CUSTOMER"}
        assert sorted(t["ParticipantRole"] for t in doc["Transcript"]) == sorted(roles.get(u.role, "UNKNOWN") for u in utterances)
        starts = [t["BeginOffsetMillis"] for t in doc["Transcript"]]
        assert starts == sorted(starts)
        spoken = [i["Content"] for t in doc["Transcript"] for i in t["Items"] if i["Type"] == "pronunciation"]
        mine = sorted((w for w in words if w.call_id == call.call_id), key=lambda w: (w.utterance_idx, w.word_idx))
        assert len(spoken) == len([w for w in mine if w.text.strip(" .,?!;:")])
        fired = {f.rule_id for f in findings if f.call_id == call.call_id and f.kind in ("hit", "flag")}
        assert set(doc["Categories"]["MatchedCategories"]) == fired
        assert {s["criterion"] for s in doc["CallQA"]["scores"]} == {s.criterion for s in scores if s.call_id == call.call_id}
        talk = doc["ConversationCharacteristics"]["TalkTime"]
        assert sum(p["TotalTimeMillis"] for p in talk["DetailsByParticipant"].values()) >= talk["TotalTimeMillis"] > 0


def test_export_command_writes_only_the_formats_asked(sample_run, tmp_path):
    result = CliRunner().invoke(app, ["export", str(sample_run), "--out", str(tmp_path), "--format", "vtt", "--format", "rttm"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rttm", "vtt"]
    bad = CliRunner().invoke(app, ["export", str(sample_run), "--out", str(tmp_path), "--format", "docx"])
    assert bad.exit_code == 2


def test_export_help_names_the_formats():
    result = CliRunner().invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and all(fmt in result.output for fmt in ("vtt", "srt", "rttm", "json"))
