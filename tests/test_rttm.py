from __future__ import annotations

import pytest

from pipeline.errors import AudioError
from pipeline.records import Utterance
from pipeline.rttm import Turn, format_rttm, parse_rttm, speaker_turns


def test_rttm_round_trips():
    turns = [Turn(0.25, 1.5, "spk0"), Turn(1.75, 4.0, "spk1")]
    assert parse_rttm(format_rttm("call1", turns)) == turns


def test_parse_rttm_reads_reference_files(sample_dir):
    turns = parse_rttm((sample_dir / "good_call.rttm").read_text())
    assert {t.speaker for t in turns} == {"agent", "customer"}
    assert all(t.end_s > t.start_s for t in turns)


@pytest.mark.parametrize("text", ["", "SPEAKER x 1 zero 1.0 <NA> <NA> a <NA> <NA>", "SPEAKER x 1 0.0"])
def test_parse_rttm_rejects_what_is_not_a_timeline(text):
    with pytest.raises(AudioError):
        parse_rttm(text)


def utterance(idx: int, speaker: str, start: float, end: float) -> Utterance:
    return Utterance("c1", idx, speaker, "unknown", None, start, end, "text", 1)


def test_speaker_turns_merge_a_speakers_sentences_across_short_pauses():
    turns = speaker_turns([utterance(0, "a", 0.0, 2.0), utterance(1, "a", 2.3, 4.0), utterance(2, "b", 5.5, 6.0)])
    assert turns == [Turn(0.0, 4.0, "a"), Turn(5.5, 6.0, "b")]


def test_speaker_turns_do_not_merge_across_another_speaker():
    turns = speaker_turns([utterance(0, "a", 0.0, 1.0), utterance(1, "b", 1.2, 1.5), utterance(2, "a", 1.7, 3.0)])
    assert [t.speaker for t in turns] == ["a", "b", "a"]
