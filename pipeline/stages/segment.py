"""Segment speakers: who spoke each word, each speaker's role, and words grouped into utterances.

A diarizer labels each word with a speaker: one per channel on stereo recordings, voice
embeddings on mono ones, or a given RTTM timeline. Roles come from a channel map or a
sidecar when there is one (they always win), else from what each speaker says, with a
confidence; below the threshold a role stays `unknown` and the call is flagged.
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
from pipeline.roles import RoleClassifier
from pipeline.rttm import Turn
from pipeline.stages.transcribe import transcript_doubt

SENTENCE_END = (".", "?", "!")
ROLE_LABELS = ("agent", "customer")


class Diarizer(Protocol):
    """Labels each word with a speaker."""

    mode: str

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> list[Word]: ...


class ChannelDiarizer:
    """One speaker per channel: `ch0`, `ch1`."""

    mode = "channel"

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> list[Word]:
        return [dataclasses.replace(w, speaker=f"ch{w.channel}") for w in words]


class TimelineDiarizer:
    """Speakers from a given timeline (an RTTM file): each word takes the turn it overlaps most."""

    mode = "rttm"

    def __init__(self, turns: Sequence[Turn]):
        self.turns = sorted(turns)

    def _speaker(self, word: Word) -> str:
        def overlap(t: Turn) -> float:
            return min(t.end_s, word.end_s) - max(t.start_s, word.start_s)

        middle = (word.start_s + word.end_s) / 2
        return max(self.turns, key=lambda t: (overlap(t), -abs((t.start_s + t.end_s) / 2 - middle))).speaker

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> list[Word]:
        return [dataclasses.replace(w, speaker=self._speaker(w)) for w in words]


def _split_runs(words: Sequence[Word], max_pause_s: float) -> list[list[Word]]:
    """One speaker's words, cut after a sentence end or before a long pause."""
    runs: list[list[Word]] = []
    for word in words:
        if runs and not runs[-1][-1].text.endswith(SENTENCE_END) and word.start_s - runs[-1][-1].end_s <= max_pause_s:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def group_utterances(words: Sequence[Word], max_pause_s: float) -> tuple[list[Word], list[Utterance]]:
    """Utterances (roles still unknown) ordered by start time, and the words with their utterance index."""
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
            role="unknown",
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


def given_roles(call: Call, speakers: Sequence[str], diarizer: Diarizer, options: SegmentOptions) -> tuple[dict[str, str], str] | None:
    """Roles that need no inference: a sidecar or channel map on channels, role labels in a timeline."""
    if diarizer.mode == "channel":
        channel_map = tuple(call.channel_roles.split(",")) if call.channel_roles else options.channel_roles
        if channel_map:
            source = "sidecar" if call.channel_roles else "channel_map"
            return {s: channel_map[int(s[2:])] if int(s[2:]) < len(channel_map) else "unknown" for s in speakers}, source
    if diarizer.mode == "rttm" and set(speakers) <= set(ROLE_LABELS):
        return {s: s for s in speakers}, "rttm"
    return None


def segment(
    call: Call,
    words: Sequence[Word],
    audio: Sequence[np.ndarray],
    options: SegmentOptions,
    diarizer: Diarizer,
    classifier: RoleClassifier,
) -> tuple[Call, list[Word], list[Utterance]]:
    """Speakers, roles and utterances for one transcribed call."""
    words, utterances = group_utterances(diarizer.assign(words, audio), options.max_pause_s)
    speakers = list(dict.fromkeys(u.speaker for u in utterances))
    call, utterances = apply_roles(call, utterances, given_roles(call, speakers, diarizer, options), classifier)
    doubt = transcript_doubt(words)
    call = dataclasses.replace(
        call,
        needs_review=call.needs_review or doubt is not None,
        review_reason="; ".join(r for r in (call.review_reason, doubt) if r) or None,
        diarization_mode=diarizer.mode,
        n_speakers=len(speakers),
        n_utterances=len(utterances),
        n_words=len(words),
        status="transcribed",
    )
    return call, list(words), utterances


def apply_roles(
    call: Call, utterances: Sequence[Utterance], given: tuple[dict[str, str], str] | None, classifier: RoleClassifier
) -> tuple[Call, list[Utterance]]:
    """Given roles as they are, else inferred ones with their confidence; flag what stays unknown."""
    if given is not None:
        roles, source, confidence = *given, None
        complete = {"agent", "customer"} <= set(roles.values())
        reason = None if complete else f"the {source.replace('_', ' ')} does not name both an agent and a customer"
    else:
        decision = classifier.decide(utterances)
        roles, source, confidence, complete = decision.roles, "inferred", decision.confidence, decision.complete
        reason = None if complete else f"roles uncertain (confidence {decision.confidence:.2f}): check who is the agent"
    utterances = [dataclasses.replace(u, role=roles[u.speaker]) for u in utterances]
    call = dataclasses.replace(
        call, role_source=source, role_confidence=confidence, needs_review=not complete, review_reason=reason
    )
    return call, utterances
