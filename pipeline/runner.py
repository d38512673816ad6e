"""The runner: owns the loop over calls, model loading, failure isolation and persistence.

Stages are functions over records; only this module loads models, catches per-call errors
(each becomes a `failures` row and the batch goes on) and writes Parquet.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from pipeline.diarization import EmbeddingDiarizer
from pipeline.errors import CallqaError, ConfigError
from pipeline.options import Options, parse_speakers
from pipeline.records import Call, Failure, Finding, Score, Utterance, Word
from pipeline.roles import RoleClassifier, load_role_cues
from pipeline.rttm import find_rttm, format_rttm, parse_rttm, speaker_turns
from pipeline.rubric import Rubric, load_rubric
from pipeline.stages.ingest import AUDIO_SUFFIXES, discover, ingest_audio, read_manifest
from pipeline.stages.score import Annotator, score_call
from pipeline.stages.segment import ChannelDiarizer, Diarizer, TimelineDiarizer, apply_roles, segment
from pipeline.stages.transcribe import FasterWhisperTranscriber, Transcriber, transcribe
from pipeline.store import metadata_json, read_table, require_transcribed, write_table, write_text
from pipeline.transcripts import TRANSCRIPT_SUFFIXES, is_transcript, read_transcript

log = logging.getLogger(__name__)

ProgressHook = Callable[[str, str, int, int], None]
"""Called as (step, call_id or path, completed, total) after each call."""


def no_progress(step: str, item: str, completed: int, total: int) -> None:
    """The default progress hook: does nothing."""


@dataclass
class Results:
    """Everything one run produced, table by table."""

    calls: list[Call] = field(default_factory=list)
    utterances: list[Utterance] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    n_skipped: int = 0


@dataclass(frozen=True)
class Summary:
    """What a run did, for the closing line and the exit code."""

    out_dir: Path
    n_seen: int
    n_skipped: int
    n_done: int
    n_failed: int
    audio_s: float
    wall_s: float

    def line(self) -> str:
        return (
            f"{self.n_seen} calls seen, {self.n_skipped} skipped, {self.n_done} done, {self.n_failed} failed; "
            f"{self.audio_s / 60:.1f} min of audio in {self.wall_s:.1f} s; results in {self.out_dir}"
        )


class CallFailed(Exception):
    """A per-call error, tagged with the stage it happened in and the call's id once known."""

    def __init__(self, stage: str, error: BaseException, call_id: str | None):
        super().__init__(str(error))
        self.stage, self.error, self.call_id = stage, error, call_id


def _stage(name: str, fn: Callable, *args, call_id: str | None = None):
    try:
        return fn(*args)
    except (CallqaError, OSError, ValueError, RuntimeError) as exc:
        raise CallFailed(name, exc, call_id) from exc


class Scorer:
    """The rubric and its spaCy annotator, loaded once."""

    def __init__(self, options: Options):
        self.rubric: Rubric = load_rubric(options.rubric)
        self.annotator = Annotator(self.rubric)

    def __call__(self, call: Call, utterances: Sequence[Utterance], words: Sequence[Word], results: Results) -> None:
        call, utterances, findings, scores = score_call(call, utterances, words, self.rubric, self.annotator)
        results.calls.append(call)
        results.utterances += utterances
        results.findings += findings
        results.scores += scores


class Segmenter:
    """The diarizers and the role classifier, loaded once."""

    def __init__(self, options: Options):
        self.options = options.segment
        self.classifier = RoleClassifier(load_role_cues(options.segment.role_cues))
        self.embedding = EmbeddingDiarizer(options.diarize)

    def diarizer_for(self, call: Call, path: Path) -> Diarizer:
        if self.options.rttm_dir is not None:
            rttm = find_rttm(self.options.rttm_dir, path, call.call_id)
            return TimelineDiarizer(parse_rttm(rttm.read_text(), source=rttm.name))
        if call.channels == 2:
            return ChannelDiarizer()
        return self.embedding.for_speakers(parse_speakers(call.expected_speakers) if call.expected_speakers else None)

    def __call__(self, call: Call, words: Sequence[Word], audio: Sequence, path: Path):
        return segment(call, words, audio, self.options, self.diarizer_for(call, path), self.classifier)


def _process(items: Sequence, step: str, handle: Callable, results: Results, progress: ProgressHook, fail_fast: bool) -> None:
    for done, item in enumerate(items, start=1):
        label = str(getattr(item, "call_id", item))
        try:
            handle(item, results)
        except CallFailed as failure:
            if fail_fast:
                raise failure.error from failure
            log.warning("%s failed at %s: %s", label, failure.stage, failure)
            results.failures.append(Failure(
                call_id=failure.call_id,
                source_path=str(getattr(item, "source_path", item)),
                stage=failure.stage,
                error_type=type(failure.error).__name__,
                message=str(failure.error),
            ))
        progress(step, label, done, len(items))


def _write(out_dir: Path, results: Results, options: Options, tables: Iterable[str], **metadata: object) -> None:
    meta = metadata_json(
        callqa_version=version("callqa"),
        options=options.as_json(),
        written_at=datetime.now(UTC).isoformat(timespec="seconds"),
        **metadata,
    )
    for table in tables:
        write_table(out_dir, table, getattr(results, table), meta)


def _summary(out_dir: Path, n_seen: int, results: Results, started: float) -> Summary:
    return Summary(
        out_dir=out_dir,
        n_seen=n_seen,
        n_skipped=results.n_skipped,
        n_done=len(results.calls),
        n_failed=len(results.failures),
        audio_s=sum(c.duration_s or 0.0 for c in results.calls if c.source_kind == "audio"),
        wall_s=time.perf_counter() - started,
    )


def run_audio(
    inputs: Sequence[Path],
    out_dir: Path,
    options: Options,
    *,
    score: bool = True,
    transcriber: Transcriber | None = None,
    progress: ProgressHook = no_progress,
    fail_fast: bool = False,
) -> Summary:
    """Ingest, transcribe and segment recordings (and score them unless `score` is False)."""
    started = time.perf_counter()
    paths = discover(inputs, AUDIO_SUFFIXES)
    if not paths:
        raise ConfigError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found in {', '.join(map(str, inputs))}.")
    manifest = read_manifest(options.ingest.manifest)
    scorer = Scorer(options) if score else None  # rubric and model errors surface before any decoding
    transcriber = transcriber or FasterWhisperTranscriber(options.transcribe)
    segmenter = Segmenter(options)
    results, seen_ids = Results(), {}

    def handle(path: Path, results: Results) -> None:
        call, audio = _stage("ingest", ingest_audio, path, options.ingest, manifest)
        if call.call_id in seen_ids:
            log.info("%s has the same content as %s: processed once", path, seen_ids[call.call_id])
            results.n_skipped += 1
            return
        seen_ids[call.call_id] = path
        call = dataclasses.replace(call, model=transcriber.identity)
        words = _stage("transcribe", transcribe, call, audio, transcriber, call_id=call.call_id)
        call, words, utterances = _stage("segment", segmenter, call, words, audio, path, call_id=call.call_id)
        write_text(out_dir / "rttm", f"{call.call_id}.rttm", format_rttm(call.call_id, speaker_turns(utterances)))
        if scorer is None:
            results.calls.append(call)
            results.utterances += utterances
        else:
            _stage("score", scorer, call, utterances, words, results, call_id=call.call_id)
        results.words += words

    _process(paths, "transcribe" if scorer is None else "run", handle, results, progress, fail_fast)
    tables = ["calls", "utterances", "words", "failures"] + (["findings", "scores"] if scorer else [])
    rubric_version = scorer.rubric.version if scorer else None
    _write(out_dir, results, options, tables, model=transcriber.identity, rubric_version=rubric_version)
    return _summary(out_dir, len(paths), results, started)


def score_transcripts(
    inputs: Sequence[Path], out_dir: Path, options: Options, *, progress: ProgressHook = no_progress, fail_fast: bool = False
) -> Summary:
    """Score existing transcript files (JSON, JSONL, WebVTT) without audio."""
    started = time.perf_counter()
    paths = [p for p in discover(inputs, TRANSCRIPT_SUFFIXES) if is_transcript(p)]
    if not paths:
        raise ConfigError(f"no transcripts (.json, .jsonl, .vtt) found in {', '.join(map(str, inputs))}.")
    scorer = Scorer(options)
    classifier = RoleClassifier(load_role_cues(options.segment.role_cues))
    results = Results()

    def handle(path: Path, results: Results) -> None:
        call, utterances = _stage("ingest", read_transcript, path, options.ingest)
        named = {u.speaker: u.role for u in utterances}
        given = (named, "transcript") if "unknown" not in named.values() else None
        call, utterances = _stage("segment", apply_roles, call, utterances, given, classifier, call_id=call.call_id)
        _stage("score", scorer, call, utterances, [], results, call_id=call.call_id)

    _process(paths, "score", handle, results, progress, fail_fast)
    _write(out_dir, results, options, ["calls", "utterances", "words", "findings", "scores", "failures"],
           rubric_version=scorer.rubric.version)
    return _summary(out_dir, len(paths), results, started)


def rescore(out_dir: Path, options: Options, *, progress: ProgressHook = no_progress, fail_fast: bool = False) -> Summary:
    """Score again the calls already transcribed in `out_dir` (a changed rubric needs no new transcription)."""
    started = time.perf_counter()
    require_transcribed(out_dir)
    scorer = Scorer(options)
    calls = read_table(out_dir, "calls")
    utterances_of: dict[str, list[Utterance]] = {}
    for u in read_table(out_dir, "utterances"):
        utterances_of.setdefault(u.call_id, []).append(u)
    words_of: dict[str, list[Word]] = {}
    for w in read_table(out_dir, "words"):
        words_of.setdefault(w.call_id, []).append(w)
    results = Results()

    def handle(call: Call, results: Results) -> None:
        _stage("score", scorer, call, utterances_of.get(call.call_id, []), words_of.get(call.call_id, []), results, call_id=call.call_id)

    _process(calls, "score", handle, results, progress, fail_fast)
    summary = _summary(out_dir, len(calls), results, started)
    kept = [c for c in calls if c.call_id not in {s.call_id for s in results.calls}]  # failed: keep old rows
    results.calls += kept
    results.utterances += [u for c in kept for u in utterances_of.get(c.call_id, [])]
    results.failures = read_table(out_dir, "failures") + results.failures
    _write(out_dir, results, options, ["calls", "utterances", "findings", "scores", "failures"],
           rubric_version=scorer.rubric.version)
    return summary
