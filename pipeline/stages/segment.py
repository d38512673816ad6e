"""Segment speakers: who spoke each word, each speaker's role, and words grouped into utterances.

Utterances are built per speaker and then ordered by start time, so overlapping speech keeps
both parties' sentences whole instead of interleaving their words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import groupby
from typing import Protocol

import numpy as np

from pipeline.options import SegmentOptions
from pipeline.records import Call, Utterance, Word

SENTENCE_END = (".", "?", "!")
MONO_REVIEW_REASON = "mono recording: speakers are not separated yet, so roles are unknown"


class Diarizer(Protocol):
    """Labels each word with a speaker, and each speaker with a role."""

    mode: str

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> tuple[list[Word], dict[str, str]]: ...


class ChannelDiarizer:
    """One speaker per channel; the channel map gives each its role."""

    mode = "channel"

    def __init__(self, channel_roles: tuple[str, ...]):
        self.channel_roles = channel_roles

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> tuple[list[Word], dict[str, str]]:
        roles = {
            f"ch{channel}": self.channel_roles[channel] if channel < len(self.channel_roles) else "unknown"
            for channel in range(len(audio))
        }
        return [dataclasses.replace(w, speaker=f"ch{w.channel}") for w in words], roles


class UnseparatedDiarizer:
    """Mono fallback: every word is one `mono` speaker whose role is unknown, and the call is flagged."""

    mode = "none"

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> tuple[list[Word], dict[str, str]]:
        return [dataclasses.replace(w, speaker="mono") for w in words], {"mono": "unknown"}


def diarizer_for(call: Call, options: SegmentOptions) -> Diarizer:
    """Channel diarization for two-channel recordings, the flagged fallback for the rest."""
    return ChannelDiarizer(options.channel_roles) if call.channels == 2 else UnseparatedDiarizer()


def _split_runs(words: Sequence[Word], max_pause_s: float) -> list[list[Word]]:
    """One speaker's words, cut after a sentence end or before a long pause."""
    runs: list[list[Word]] = []
    for word in words:
        if runs and not runs[-1][-1].text.endswith(SENTENCE_END) and word.start_s - runs[-1][-1].end_s <= max_pause_s:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def group_utterances(
    words: Sequence[Word], roles: dict[str, str], max_pause_s: float
) -> tuple[list[Word], list[Utterance]]:
    """Utterances ordered by start time, and the words with their utterance index set."""
    by_speaker = sorted(words, key=lambda w: (w.speaker, w.start_s, w.word_idx))
    runs = [
        run
        for _, speaker_words in groupby(by_speaker, key=lambda w: w.speaker)
        for run in _split_runs(list(speaker_words), max_pause_s)
    ]
    runs.sort(key=lambda run: (run[0].start_s, run[0].channel))
    utterances = [
        Utterance(
            call_id=run[0].call_id,
            utterance_idx=idx,
            speaker=run[0].speaker,
            role=roles.get(run[0].speaker, "unknown"),
            channel=run[0].channel,
            start_s=run[0].start_s,
            end_s=run[-1].end_s,
            text=" ".join(w.text for w in run),
            n_words=len(run),
        )
        for idx, run in enumerate(runs)
    ]
    utterance_of = {w.word_idx: idx for idx, run in enumerate(runs) for w in run}
    labelled = [dataclasses.replace(w, utterance_idx=utterance_of[w.word_idx]) for w in words]
    return labelled, utterances


def _review_reason(diarizer: Diarizer) -> str:
    return MONO_REVIEW_REASON if diarizer.mode == "none" else "agent or customer role missing from the channel map"


def segment(
    call: Call, words: Sequence[Word], audio: Sequence[np.ndarray], options: SegmentOptions
) -> tuple[Call, list[Word], list[Utterance]]:
    """Speakers, roles and utterances for one transcribed call."""
    diarizer = diarizer_for(call, options)
    words, roles = diarizer.assign(words, audio)
    words, utterances = group_utterances(words, roles, options.max_pause_s)
    roles_known = {"agent", "customer"} <= set(roles.values())
    call = dataclasses.replace(
        call,
        diarization_mode=diarizer.mode,
        n_speakers=len(roles),
        needs_review=not roles_known,
        review_reason=None if roles_known else _review_reason(diarizer),
        n_utterances=len(utterances),
        n_words=len(words),
        status="transcribed",
    )
    return call, words, utterances
