from __future__ import annotations

import json
from datetime import datetime

import pytest

from pipeline.errors import TranscriptError
from pipeline.options import IngestOptions
from pipeline.transcripts import is_transcript, read_transcript

UTTERANCES = [
    {"speaker": "Agent", "start_s": 0.5, "end_s": 3.25, "text": "Thank you for calling, how can I help?"},
    {"speaker": "Customer", "start_s": 3.5, "end_s": 7.75, "text": "My  internet\nis down."},
]

VTT = """WEBVTT

00:00:01.000 --> 00:00:03.000
<v Agent>Thank you for calling, how can I help?</v>

00:00:04.000 --> 00:00:06.000
<v Customer>My internet is down.
"""


def _write(folder, name: str, content) -> object:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _read(path):
    return read_transcript(path, IngestOptions())


def test_json_object_gives_roles_times_and_duration(tmp_path):
    call, utterances = _read(_write(tmp_path, "call.json", {"utterances": UTTERANCES}))
    assert [u.role for u in utterances] == ["agent", "customer"]
    assert [(u.start_s, u.end_s) for u in utterances] == [(0.5, 3.25), (3.5, 7.75)]
    assert [u.utterance_idx for u in utterances] == [0, 1]
    assert utterances[1].text == "My internet is down."
    assert utterances[1].n_words == 4
    assert call.diarization_mode == "transcript"
    assert call.source_kind == "transcript"
    assert call.needs_review is False
    assert call.duration_s == 7.75
    assert call.n_utterances == 2
    assert call.n_speakers == 2


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("call.json", json.dumps(UTTERANCES)),
        ("call.jsonl", "\n".join(json.dumps(u) for u in UTTERANCES) + "\n\n"),
    ],
    ids=["json-list", "jsonl"],
)
def test_list_formats_read_like_the_object_form(tmp_path, name, content):
    call, utterances = _read(_write(tmp_path, name, content))
    assert [(u.role, u.start_s, u.end_s) for u in utterances] == [("agent", 0.5, 3.25), ("customer", 3.5, 7.75)]
    assert call.duration_s == 7.75
    assert call.needs_review is False


def test_vtt_voice_tags_give_roles_and_plain_text(tmp_path):
    call, utterances = _read(_write(tmp_path, "call.vtt", VTT))
    assert [(u.speaker, u.role) for u in utterances] == [("Agent", "agent"), ("Customer", "customer")]
    assert [(u.start_s, u.end_s) for u in utterances] == [(1.0, 3.0), (4.0, 6.0)]
    assert [u.text for u in utterances] == ["Thank you for calling, how can I help?", "My internet is down."]
    assert call.duration_s == 6.0
    assert call.needs_review is False


def test_vtt_keeps_millisecond_times(tmp_path):
    vtt = VTT.replace("00:00:03.000", "00:00:03.500").replace("00:00:04.000", "00:00:04.250")
    _, utterances = _read(_write(tmp_path, "call.vtt", vtt))
    assert [(u.start_s, u.end_s) for u in utterances] == [(1.0, 3.5), (4.25, 6.0)]


def test_explicit_role_wins_over_speaker_name(tmp_path):
    rows = [
        {"speaker": "Customer", "role": "agent", "text": "Hello, this is Anna."},
        {"speaker": "Bob", "role": "Customer", "text": "Hi Anna."},
    ]
    call, utterances = _read(_write(tmp_path, "call.json", rows))
    assert [(u.speaker, u.role) for u in utterances] == [("Customer", "agent"), ("Bob", "customer")]
    assert call.needs_review is False


def test_unknown_speakers_get_role_unknown_and_flag_the_call(tmp_path):
    rows = [{"speaker": "spk0", "text": "Hello."}, {"speaker": "spk1", "text": "Hi."}]
    call, utterances = _read(_write(tmp_path, "call.json", rows))
    assert {u.role for u in utterances} == {"unknown"}
    assert call.needs_review is True
    assert call.review_reason
    assert call.duration_s is None


def test_call_id_comes_from_the_file_when_given(tmp_path):
    call, utterances = _read(_write(tmp_path, "call.json", {"call_id": "crm-42", "utterances": UTTERANCES}))
    assert call.call_id == "crm-42"
    assert {u.call_id for u in utterances} == {"crm-42"}


def test_call_id_is_a_content_hash_stable_across_names(tmp_path):
    first, _ = _read(_write(tmp_path, "a.json", UTTERANCES))
    copy, _ = _read(_write(tmp_path, "b.json", UTTERANCES))
    other, _ = _read(_write(tmp_path, "c.json", UTTERANCES[:1]))
    assert first.call_id == copy.call_id
    assert first.call_id != other.call_id


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("call.json", '{"utterances": [', "not valid JSON"),
        ("call.jsonl", '{"text": "hi"}\n{"text": ', "not valid JSON"),
        ("call.json", '{"turns": []}', "utterances"),
        ("call.json", '"just a string"', "utterances"),
        ("call.json", "[]", "no utterances"),
        ("call.json", '[{"speaker": "Agent", "start_s": 1.0}]', "has no text"),
        ("call.json", '[{"speaker": "Agent", "text": "   "}]', "no utterances"),
        ("call.json", '["hello"]', "has no text"),
        ("call.json", '[{"text": "hi", "start_s": "soon"}]', "malformed"),
    ],
    ids=[
        "truncated-json",
        "truncated-jsonl",
        "object-without-utterances",
        "json-string",
        "empty-list",
        "utterance-without-text",
        "blank-text",
        "utterance-not-object",
        "non-numeric-time",
    ],
)
def test_bad_transcripts_raise_transcript_error(tmp_path, name, content, message):
    with pytest.raises(TranscriptError, match=message):
        _read(_write(tmp_path, name, content))


def test_null_text_is_an_error_not_the_word_none(tmp_path):
    rows = [UTTERANCES[0], {"speaker": "Customer", "text": None}]
    with pytest.raises(TranscriptError, match="utterance 2 has no text"):
        _read(_write(tmp_path, "call.json", rows))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("call.json", True), ("call.JSONL", True), ("call.vtt", True), ("call.meta.json", False), ("call.txt", False)],
)
def test_is_transcript_skips_sidecars_and_other_suffixes(tmp_path, name, expected):
    assert is_transcript(tmp_path / name) is expected


def test_sidecar_metadata_is_applied_to_the_call(tmp_path):
    path = _write(tmp_path, "call.json", UTTERANCES)
    _write(tmp_path, "call.meta.json", {"agent_id": "joe", "team": "billing", "call_time": "2026-11-23T09:30:00"})
    call, _ = _read(path)
    assert call.agent_id == "joe"
    assert call.team == "billing"
    assert call.call_time == datetime(2026, 11, 23, 9, 30)


def test_header_metadata_is_applied_to_the_call(tmp_path):
    call, _ = _read(_write(tmp_path, "call.json", {"agent_id": "ann", "direction": "inbound", "utterances": UTTERANCES}))
    assert call.agent_id == "ann"
    assert call.direction == "inbound"


def test_header_call_time_is_applied_to_the_call(tmp_path):
    content = {"call_time": "2026-11-23T09:30:00", "utterances": UTTERANCES}
    call, _ = _read(_write(tmp_path, "call.json", content))
    assert call.call_time == datetime(2026, 11, 23, 9, 30)
