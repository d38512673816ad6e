from __future__ import annotations

import numpy as np
import pytest

from pipeline.options import SegmentOptions
from pipeline.records import Call, Word
from pipeline.roles import RoleClassifier, load_role_cues
from pipeline.rttm import Turn
from pipeline.stages.segment import ChannelDiarizer, TimelineDiarizer, group_utterances, segment

CLASSIFIER = RoleClassifier(load_role_cues())
STEREO = [np.zeros(1), np.zeros(1)]


def word(idx: int, channel: int, start: float, text: str, speaker: str = "") -> Word:
    return Word("c1", idx, channel, speaker or f"ch{channel}", start, start + 0.3, text, 0.9)


def call(channels: int, **fields) -> Call:
    return Call("c1", "x.wav", "audio", 10.0, channels, 16000, **fields)


def dialogue() -> list[Word]:
    agent = "Thank you for calling Contoso. How can I help you?".split()
    customer = "I'm calling about my bill.".split()
    words = [word(i, 0, 0.4 * i, w) for i, w in enumerate(agent)]
    return words + [word(len(agent) + i, 1, 5.0 + 0.4 * i, w) for i, w in enumerate(customer)]


def test_group_utterances_splits_at_sentence_end_and_long_pause():
    words = [word(0, 0, 0.0, "Hello."), word(1, 0, 0.4, "How"), word(2, 0, 0.8, "are"), word(3, 0, 3.0, "you")]
    _, utterances = group_utterances(words, max_pause_s=1.0)
    assert [u.text for u in utterances] == ["Hello.", "How are", "you"]


def test_group_utterances_keeps_overlapping_sentences_whole():
    words = [
        word(0, 0, 0.0, "I"), word(1, 1, 0.2, "Sorry"), word(2, 0, 0.4, "was"),
        word(3, 1, 0.6, "to"), word(4, 0, 0.8, "saying."), word(5, 1, 1.0, "interrupt."),
    ]
    labelled, utterances = group_utterances(words, max_pause_s=1.0)
    assert [(u.speaker, u.text) for u in utterances] == [("ch0", "I was saying."), ("ch1", "Sorry to interrupt.")]
    assert [w.utterance_idx for w in labelled] == [0, 1, 0, 1, 0, 1]


def test_group_utterances_orders_by_start_time_across_speakers():
    words = [word(0, 1, 0.0, "Hi."), word(1, 0, 1.0, "Hello."), word(2, 1, 2.0, "Bye.")]
    _, utterances = group_utterances(words, max_pause_s=1.0)
    assert [u.text for u in utterances] == ["Hi.", "Hello.", "Bye."]
    assert [u.utterance_idx for u in utterances] == [0, 1, 2]


def test_timeline_diarizer_gives_each_word_the_turn_it_overlaps_most():
    words = [word(0, 0, 0.0, "a", "?"), word(1, 0, 0.9, "b", "?"), word(2, 0, 2.5, "c", "?")]
    labelled = TimelineDiarizer([Turn(0.0, 1.0, "agent"), Turn(1.0, 3.0, "customer")]).assign(words, [np.zeros(1)])
    assert [w.speaker for w in labelled] == ["agent", "customer", "customer"]


def test_segment_infers_stereo_roles_from_what_each_channel_says():
    result, _, utterances = segment(call(2), dialogue(), STEREO, SegmentOptions(), ChannelDiarizer(), CLASSIFIER)
    assert {u.speaker: u.role for u in utterances} == {"ch0": "agent", "ch1": "customer"}
    assert (result.diarization_mode, result.role_source, result.needs_review) == ("channel", "inferred", False)
    assert result.role_confidence > 0.8


@pytest.mark.parametrize("channel_map, sidecar, source, expected", [
    (("customer", "agent"), None, "channel_map", {"ch0": "customer", "ch1": "agent"}),
    (("agent", "customer"), "customer,agent", "sidecar", {"ch0": "customer", "ch1": "agent"}),
])
def test_segment_channel_map_or_sidecar_wins_over_inference(channel_map, sidecar, source, expected):
    result, _, utterances = segment(
        call(2, channel_roles=sidecar), dialogue(), STEREO, SegmentOptions(channel_roles=channel_map), ChannelDiarizer(), CLASSIFIER
    )
    assert {u.speaker: u.role for u in utterances} == expected
    assert result.role_source == source and result.role_confidence is None


def test_segment_flags_a_call_whose_roles_cannot_be_told_apart():
    words = [word(0, 0, 0.0, "Okay."), word(1, 1, 1.0, "Sure.")]
    result, _, utterances = segment(call(2), words, STEREO, SegmentOptions(), ChannelDiarizer(), CLASSIFIER)
    assert result.needs_review and "roles uncertain" in result.review_reason
    assert {u.role for u in utterances} == {"unknown"}


def test_segment_flags_a_channel_map_without_a_customer():
    result, _, _ = segment(call(2), dialogue(), STEREO, SegmentOptions(channel_roles=("agent", "agent")), ChannelDiarizer(), CLASSIFIER)
    assert result.needs_review and "channel map" in result.review_reason
