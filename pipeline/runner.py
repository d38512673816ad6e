"""The runner: owns the loop over calls, model loading, failure isolation and persistence.

Stages are functions over records; only this module loads models, catches per-call errors
(each becomes a `failures` row and the batch goes on) and writes Parquet.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from pipeline.diarization import EmbeddingDiarizer
from pipeline.errors import CallqaError, ConfigError, ModelError
from pipeline.options import Options, parse_speakers
from pipeline.records import Call, Failure, Finding, Score, Utterance, Word
from pipeline.roles import RoleClassifier, load_role_cues
from pipeline.rttm import find_rttm, format_rttm, parse_rttm, speaker_turns
from pipeline.rubric import Rubric, load_rubric
from pipeline.stages.ingest import AUDIO_SUFFIXES, content_id, discover, ingest_audio, read_manifest
from pipeline.stages.redact import Redactor
from pipeline.stages.score import Annotator, score_call
from pipeline.stages.segment import ChannelDiarizer, Diarizer, TimelineDiarizer, apply_roles, segment
from pipeline.stages.transcribe import FasterWhisperTranscriber, Transcriber, resolve_device, resolve_model, transcribe
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
    stage_s: Counter = field(default_factory=Counter)  # wall seconds per stage

    def extend(self, other: Results) -> None:
        for table in ("calls", "utterances", "words", "findings", "scores", "failures"):
            getattr(self, table).extend(getattr(other, table))
        self.n_skipped += other.n_skipped
        self.stage_s.update(other.stage_s)


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
    stage_s: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        total = sum(self.stage_s.values()) or 1.0
        shares = ", ".join(f"{stage} {100 * s / total:.0f}%" for stage, s in self.stage_s.items())
        return (
            f"{self.n_seen} calls seen, {self.n_skipped} skipped, {self.n_done} done, {self.n_failed} failed; "
            f"{self.audio_s / 60:.1f} min of audio in {self.wall_s:.1f} s" + (f" ({shares})" if shares else "")
            + f"; results in {self.out_dir}"
        )


class CallFailed(Exception):
    """A per-call error, tagged with the stage it happened in and the call's id once known."""

    def __init__(self, stage: str, error: BaseException, call_id: str | None):
        super().__init__(str(error))
        self.stage, self.error, self.call_id = stage, error, call_id


def _stage(results: Results, name: str, fn: Callable, *args, call_id: str | None = None):
    started = time.perf_counter()
    try:
        return fn(*args)
    except (CallqaError, OSError, ValueError, RuntimeError) as exc:
        raise CallFailed(name, exc, call_id) from exc
    finally:
        results.stage_s[name] += time.perf_counter() - started


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


class AudioProcessor:
    """Ingest, transcribe, segment and (unless `score` is False) score one recording.
    Models load once, when the processor is made: once per run, or once per worker process."""

    def __init__(self, options: Options, out_dir: Path, score: bool, transcriber: Transcriber | None = None):
        self.options, self.out_dir = options, out_dir
        self.manifest = read_manifest(options.ingest.manifest)
        self.scorer = Scorer(options) if score else None  # rubric and model errors surface before any decoding
        self.transcriber = transcriber or FasterWhisperTranscriber(options.transcribe)
        self.segmenter = Segmenter(options)
        self.redactor = Redactor(options.redact)  # customer data out before scoring and writing

    def __call__(self, path: Path, results: Results) -> None:
        call, audio = _stage(results, "ingest", ingest_audio, path, self.options.ingest, self.manifest)
        call = dataclasses.replace(call, model=self.transcriber.identity)
        words = _stage(results, "transcribe", transcribe, call, audio, self.transcriber, call_id=call.call_id)
        call, words, utterances = _stage(results, "segment", self.segmenter, call, words, audio, path, call_id=call.call_id)
        call, utterances, words = _stage(results, "redact", self.redactor, call, utterances, words, call_id=call.call_id)
        rttm = format_rttm(call.call_id, speaker_turns(utterances))
        _stage(results, "write", write_text, self.out_dir / "rttm", f"{call.call_id}.rttm", rttm, call_id=call.call_id)
        if self.scorer is None:
            results.calls.append(call)
            results.utterances += utterances
        else:
            _stage(results, "score", self.scorer, call, utterances, words, results, call_id=call.call_id)
        results.words += words


_WORKER: AudioProcessor | None = None  # per worker process; here, not in __main__, so it is built once per worker


def _start_worker(options: Options, out_dir: Path, score: bool, threads: int) -> None:
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = AudioProcessor(options, out_dir, score)


def _in_worker(path: Path, results: Results) -> None:
    _WORKER(path, results)


def _one(handle: Callable, fail_fast: bool, item) -> Results:
    """One item's results; a per-call error becomes a failure row (or stops the run)."""
    results = Results()
    try:
        handle(item, results)
    except CallFailed as failure:
        if fail_fast:
            raise failure.error from failure
        log.warning("%s failed at %s: %s", getattr(item, "call_id", item), failure.stage, failure)
        results.failures.append(Failure(
            call_id=failure.call_id,
            source_path=str(getattr(item, "source_path", item)),
            stage=failure.stage,
            error_type=type(failure.error).__name__,
            message=str(failure.error),
        ))
    return results


def _process(items: Sequence, step: str, handle: Callable, results: Results, progress: ProgressHook, fail_fast: bool,
             pool: ProcessPoolExecutor | None = None) -> None:
    """Each item through `handle`, in order; in a process pool when one is given. Results are
    merged in input order, so they are the same whatever the number of workers."""
    one = functools.partial(_one, handle, fail_fast)
    outcomes = pool.map(one, items) if pool is not None else map(one, items)
    for done, (item, outcome) in enumerate(zip(items, outcomes, strict=True), start=1):
        results.extend(outcome)
        progress(step, str(getattr(item, "call_id", item)), done, len(items))


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
        stage_s={stage: round(seconds, 2) for stage, seconds in results.stage_s.items()},
    )


def _unique_recordings(paths: Sequence[Path]) -> tuple[list[Path], int]:
    """The recordings with distinct content (a copy under another name is processed once)."""
    seen: dict[str, Path] = {}
    unique = []
    for path in paths:
        try:
            call_id = content_id(path)
        except OSError:
            unique.append(path)  # unreadable: ingest records the failure
            continue
        if call_id in seen:
            log.info("%s has the same content as %s: processed once", path, seen[call_id])
            continue
        seen[call_id] = path
        unique.append(path)
    return unique, len(paths) - len(unique)


def run_audio(
    inputs: Sequence[Path],
    out_dir: Path,
    options: Options,
    *,
    score: bool = True,
    workers: int = 1,
    transcriber: Transcriber | None = None,
    progress: ProgressHook = no_progress,
    fail_fast: bool = False,
) -> Summary:
    """Ingest, transcribe and segment recordings (and score them unless `score` is False),
    in `workers` processes."""
    started = time.perf_counter()
    paths = discover(inputs, AUDIO_SUFFIXES)
    if not paths:
        raise ConfigError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found in {', '.join(map(str, inputs))}.")
    paths, n_duplicates = _unique_recordings(paths)
    results = Results(n_skipped=n_duplicates)
    step = "run" if score else "transcribe"
    if workers <= 1:
        processor = AudioProcessor(options, out_dir, score, transcriber)
        results.stage_s["load"] = time.perf_counter() - started
        _process(paths, step, processor, results, progress, fail_fast)
        model = processor.transcriber.identity
        rubric_version = processor.scorer.rubric.version if processor.scorer else None
    else:
        options, threads = _options_for_workers(options, workers)
        model, rubric_version = _check_before_workers(options, score)
        context = multiprocessing.get_context("spawn")  # no fork of a process holding model threads
        initargs = (options, out_dir, score, threads)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=initargs) as pool:
            try:
                _process(paths, step, _in_worker, results, progress, fail_fast, pool)
            except BrokenProcessPool:
                raise ModelError("a worker process could not start or died; run with --workers 1 to see why.") from None
    tables = ["calls", "utterances", "words", "failures"] + (["findings", "scores"] if score else [])
    write_started = time.perf_counter()
    _write(out_dir, results, options, tables, model=model, rubric_version=rubric_version)
    results.stage_s["write"] += time.perf_counter() - write_started
    return _summary(out_dir, len(paths) + n_duplicates, results, started)


def _options_for_workers(options: Options, workers: int) -> tuple[Options, int]:
    """Split the cores between the workers (two 1-thread processes beat one 2-thread one)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    if options.transcribe.cpu_threads == 0:
        options = dataclasses.replace(options, transcribe=dataclasses.replace(options.transcribe, cpu_threads=threads))
    return options, threads


def _check_before_workers(options: Options, score: bool) -> tuple[str, str | None]:
    """Config, rubric and model-path errors before any worker starts; the model identity and
    the rubric version."""
    read_manifest(options.ingest.manifest)
    rubric_version = load_rubric(options.rubric).version if score else None
    load_role_cues(options.segment.role_cues)
    resolve_model(options.transcribe.model)
    device, compute_type = resolve_device(options.transcribe.device, options.transcribe.compute_type)
    return f"{options.transcribe.model} ({device}, {compute_type})", rubric_version


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
    redactor = Redactor(options.redact)
    results = Results()

    def handle(path: Path, results: Results) -> None:
        call, utterances = _stage(results, "ingest", read_transcript, path, options.ingest)
        named = {u.speaker: u.role for u in utterances}
        given = (named, "transcript") if "unknown" not in named.values() else None
        call, utterances = _stage(results, "segment", apply_roles, call, utterances, given, classifier, call_id=call.call_id)
        call, utterances, _ = _stage(results, "redact", redactor, call, utterances, [], call_id=call.call_id)
        _stage(results, "score", scorer, call, utterances, [], results, call_id=call.call_id)

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
        _stage(results, "score", scorer, call, utterances_of.get(call.call_id, []), words_of.get(call.call_id, []), results,
               call_id=call.call_id)

    _process(calls, "score", handle, results, progress, fail_fast)
    summary = _summary(out_dir, len(calls), results, started)
    kept = [c for c in calls if c.call_id not in {s.call_id for s in results.calls}]  # failed: keep old rows
    results.calls += kept
    results.utterances += [u for c in kept for u in utterances_of.get(c.call_id, [])]
    results.failures = read_table(out_dir, "failures") + results.failures
    _write(out_dir, results, options, ["calls", "utterances", "findings", "scores", "failures"],
           rubric_version=scorer.rubric.version)
    return summary
