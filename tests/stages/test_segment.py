from __future__ import annotations

import numpy as np
import pytest

from pipeline.options import SegmentOptions
from pipeline.records import Call, Word
from pipeline.stages.segment import MONO_REVIEW_REASON, ChannelDiarizer, group_utterances, segment


def word(idx: int, channel: int, start: float, text: str, speaker: str = "") -> Word:
    return Word("c1", idx, channel, speaker or f"ch{channel}", start, start + 0.3, text, 0.9)


def call(channels: int) -> Call:
    return Call("c1", "x.wav", "audio", 10.0, channels, 16000)


def test_group_utterances_splits_at_sentence_end_and_long_pause():
    words = [word(0, 0, 0.0, "Hello."), word(1, 0, 0.4, "How"), word(2, 0, 0.8, "are"), word(3, 0, 3.0, "you")]
    _, utterances = group_utterances(words, {"ch0": "agent"}, max_pause_s=1.0)
    assert [u.text for u in utterances] == ["Hello.", "How are", "you"]


def test_group_utterances_keeps_overlapping_sentences_whole():
    words = [
        word(0, 0, 0.0, "I"), word(1, 1, 0.2, "Sorry"), word(2, 0, 0.4, "was"),
        word(3, 1, 0.6, "to"), word(4, 0, 0.8, "saying."), word(5, 1, 1.0, "interrupt."),
    ]
    labelled, utterances = group_utterances(words, {"ch0": "agent", "ch1": "customer"}, max_pause_s=1.0)
    assert [(u.role, u.text) for u in utterances] == [("agent", "I was saying."), ("customer", "Sorry to interrupt.")]
    assert [w.utterance_idx for w in labelled] == [0, 1, 0, 1, 0, 1]


def test_group_utterances_orders_by_start_time_across_speakers():
    words = [word(0, 1, 0.0, "Hi."), word(1, 0, 1.0, "Hello."), word(2, 1, 2.0, "Bye.")]
    _, utterances = group_utterances(words, {"ch0": "agent", "ch1": "customer"}, max_pause_s=1.0)
    assert [u.utterance_idx for u in utterances] == [0, 1, 2]
    assert [u.text for u in utterances] == ["Hi.", "Hello.", "Bye."]
    assert [u.start_s for u in utterances] == sorted(u.start_s for u in utterances)


@pytest.mark.parametrize("channel_roles, expected", [
    (("agent", "customer"), {"ch0": "agent", "ch1": "customer"}),
    (("customer", "agent"), {"ch0": "customer", "ch1": "agent"}),
    (("agent",), {"ch0": "agent", "ch1": "unknown"}),
])
def test_channel_diarizer_maps_channels_to_roles(channel_roles, expected):
    words = [word(0, 0, 0.0, "Hi", speaker="?"), word(1, 1, 1.0, "Hello", speaker="?")]
    labelled, roles = ChannelDiarizer(channel_roles).assign(words, [np.zeros(1), np.zeros(1)])
    assert roles == expected
    assert [w.speaker for w in labelled] == ["ch0", "ch1"]


def test_segment_stereo_call_is_channel_mode_and_not_flagged():
    words = [word(0, 0, 0.0, "Hi."), word(1, 1, 1.0, "Hello.")]
    result, _, utterances = segment(call(2), words, [np.zeros(1), np.zeros(1)], SegmentOptions())
    assert (result.diarization_mode, result.n_speakers, result.needs_review) == ("channel", 2, False)
    assert (result.n_utterances, result.n_words, result.status) == (2, 2, "transcribed")
    assert [u.role for u in utterances] == ["agent", "customer"]


def test_segment_mono_call_has_unknown_roles_and_is_flagged():
    words = [word(0, 0, 0.0, "Hi."), word(1, 0, 1.0, "Hello.")]
    result, _, utterances = segment(call(1), words, [np.zeros(1)], SegmentOptions())
    assert result.diarization_mode == "none"
    assert result.needs_review and result.review_reason == MONO_REVIEW_REASON
    assert {u.role for u in utterances} == {"unknown"}


def test_segment_flags_a_channel_map_without_a_customer():
    words = [word(0, 0, 0.0, "Hi."), word(1, 1, 1.0, "Hello.")]
    result, _, _ = segment(call(2), words, [np.zeros(1), np.zeros(1)], SegmentOptions(channel_roles=("agent", "agent")))
    assert result.needs_review and "channel map" in result.review_reason
