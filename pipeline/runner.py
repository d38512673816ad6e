"""The runner: plans the work, runs it (in this process, a process pool or a Dask cluster) and
streams results into the output dataset.

Stages are functions over records; only this module loads models, catches per-call errors
(each becomes a `failures` row and the batch goes on) and hands results to pipeline.store,
which stages each finished call durably and commits them in batches. A call already in the
dataset with the same settings is skipped; one whose rubric changed is re-scored from its
stored transcript; `force` redoes everything.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.diarization import EmbeddingDiarizer
from pipeline.errors import CallqaError, ConfigError, ModelError
from pipeline.options import Options, parse_speakers
from pipeline.records import TABLES, Call, Failure, Finding, Score, Utterance, Word, from_arrow
from pipeline.roles import DEFAULT_ROLE_CUES, RoleClassifier, load_role_cues
from pipeline.rttm import find_rttm, format_rttm, parse_rttm, speaker_turns
from pipeline.rubric import DEFAULT_RUBRIC, Rubric, load_rubric
from pipeline.rubric.classifier import trained
from pipeline.stages.ingest import AUDIO_SUFFIXES, content_id, discover, ingest_audio, read_manifest
from pipeline.stages.redact import Redactor
from pipeline.stages.score import Annotator, score_call
from pipeline.stages.segment import ChannelDiarizer, Diarizer, TimelineDiarizer, apply_roles, segment
from pipeline.stages.transcribe import FasterWhisperTranscriber, Transcriber, resolve_device, resolve_model, transcribe
from pipeline.store import Dataset, Stored, metadata_json, require_transcribed, table_dir, write_text
from pipeline.transcripts import TRANSCRIPT_SUFFIXES, is_transcript, read_transcript

log = logging.getLogger(__name__)

ProgressHook = Callable[[str, str, int, int], None]
"""Called as (step, call_id or path, completed, total) after each call."""


def no_progress(step: str, item: str, completed: int, total: int) -> None:
    """The default progress hook: does nothing."""


@dataclass(frozen=True)
class Keys:
    """What identifies a run's settings: a call done with the same keys is not done again."""

    model: str
    settings: str
    rubric_version: str | None = None
    rubric: str | None = None


@dataclass(frozen=True)
class Task:
    """One unit of work: a recording, a transcript file, or a stored call to score again."""

    kind: str  # "audio", "transcript" or "rescore"
    path: Path
    call_id: str | None
    part: str | None = None  # rescore: the part file that holds the call
    stored: tuple[Call, list[Utterance], list[Word]] | None = None  # rescore: its rows, read just in time


@dataclass
class Results:
    """Everything one task produced, table by table."""

    kind: str = ""
    calls: list[Call] = field(default_factory=list)
    utterances: list[Utterance] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    rttm: dict[str, str] = field(default_factory=dict)  # call id -> RTTM text
    stage_s: Counter = field(default_factory=Counter)  # wall seconds per stage

    def rows(self) -> dict[str, list]:
        return {table: getattr(self, table) for table in TABLES}


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
    n_rescored: int = 0

    def line(self) -> str:
        total = sum(self.stage_s.values()) or 1.0
        shares = ", ".join(f"{stage} {100 * s / total:.0f}%" for stage, s in self.stage_s.items())
        rescored = f" ({self.n_rescored} re-scored from stored transcripts)" if self.n_rescored else ""
        return (
            f"{self.n_seen} calls seen, {self.n_skipped} skipped, {self.n_done} done{rescored}, {self.n_failed} failed; "
            f"{self.audio_s / 60:.1f} min of audio in {self.wall_s:.1f} s" + (f" ({shares})" if shares else "")
            + f"; results in {self.out_dir}"
        )

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "out_dir": str(self.out_dir)}


@dataclass
class Totals:
    """Running counts of a run (the rows themselves go straight to the dataset)."""

    n_seen: int
    n_skipped: int
    n_done: int = 0
    n_rescored: int = 0
    n_failed: int = 0
    audio_s: float = 0.0
    stage_s: Counter = field(default_factory=Counter)

    def add(self, results: Results) -> None:
        self.n_done += len(results.calls)
        self.n_rescored += len(results.calls) if results.kind == "rescore" else 0
        self.n_failed += len(results.failures)
        self.audio_s += sum(c.duration_s or 0.0 for c in results.calls if results.kind == "audio")
        self.stage_s.update(results.stage_s)

    def summary(self, out_dir: Path, started: float) -> Summary:
        return Summary(
            out_dir=out_dir, n_seen=self.n_seen, n_skipped=self.n_skipped, n_done=self.n_done, n_failed=self.n_failed,
            audio_s=self.audio_s, wall_s=time.perf_counter() - started,
            stage_s={stage: round(seconds, 2) for stage, seconds in self.stage_s.items()}, n_rescored=self.n_rescored,
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

    def __init__(self, options: Options, keys: Keys):
        self.rubric: Rubric = load_rubric(options.rubric)
        self.annotator = Annotator(self.rubric)
        self.rubric_key = keys.rubric

    def __call__(self, call: Call, utterances: Sequence[Utterance], words: Sequence[Word], results: Results) -> None:
        call, utterances, findings, scores = score_call(call, utterances, words, self.rubric, self.annotator)
        results.calls.append(dataclasses.replace(call, rubric_key=self.rubric_key))
        results.utterances += utterances
        results.findings += findings
        results.scores += scores


class Segmenter:
    """The diarizers and the role classifier, loaded once."""

    def __init__(self, options: Options):
        self.options = options.segment
        self.classifier = RoleClassifier(load_role_cues(options.segment.role_cues))
        self.diarize = options.diarize

    @functools.cached_property
    def embedding(self) -> EmbeddingDiarizer:
        return EmbeddingDiarizer(self.diarize)

    def diarizer_for(self, call: Call, path: Path) -> Diarizer:
        if self.options.rttm_dir is not None:
            rttm = find_rttm(self.options.rttm_dir, path, call.call_id)
            return TimelineDiarizer(parse_rttm(rttm.read_text(), source=rttm.name))
        if call.channels == 2:
            return ChannelDiarizer()
        return self.embedding.for_speakers(parse_speakers(call.expected_speakers) if call.expected_speakers else None)

    def __call__(self, call: Call, words: Sequence[Word], audio: Sequence, path: Path):
        return segment(call, words, audio, self.options, self.diarizer_for(call, path), self.classifier)


class Worker:
    """Handles tasks: ingest, transcribe, segment and score a recording, read and score a transcript
    file, or score a stored transcript again. Models load on first use, once per process."""

    def __init__(self, options: Options, keys: Keys, score: bool, transcriber: Transcriber | None = None):
        self.options, self.keys, self.score = options, keys, score
        self.ahead_s = 0.0  # seconds spent annotating re-scored calls ahead, not yet counted in a task's results
        if transcriber is not None:
            self.transcriber = transcriber

    @functools.cached_property
    def manifest(self):
        return read_manifest(self.options.ingest.manifest)

    @functools.cached_property
    def scorer(self) -> Scorer:
        return Scorer(self.options, self.keys)

    @functools.cached_property
    def transcriber(self) -> Transcriber:
        return FasterWhisperTranscriber(self.options.transcribe)

    @functools.cached_property
    def segmenter(self) -> Segmenter:
        return Segmenter(self.options)

    @functools.cached_property
    def redactor(self) -> Redactor:
        return Redactor(self.options.redact)  # customer data out before scoring and writing

    def __call__(self, task: Task, fail_fast: bool = False) -> Results:
        """One task's results; a per-call error becomes a failure row (or, with fail_fast, stops the run)."""
        results = Results(kind=task.kind)
        handle = {"audio": self._audio, "transcript": self._transcript, "rescore": self._rescore}[task.kind]
        try:
            handle(task, results)
        except CallFailed as failure:
            if fail_fast:
                raise failure.error from failure
            log.warning("%s failed at %s: %s", task.call_id or task.path, failure.stage, failure)
            results = Results(kind=task.kind, stage_s=results.stage_s)
            results.failures.append(Failure(
                call_id=failure.call_id or task.call_id,
                source_path=str(task.path),
                stage=failure.stage,
                error_type=type(failure.error).__name__,
                message=str(failure.error),
            ))
        return results

    def _audio(self, task: Task, results: Results) -> None:
        call, audio = _stage(results, "ingest", ingest_audio, task.path, self.options.ingest, self.manifest, call_id=task.call_id)
        call = dataclasses.replace(call, model=self.transcriber.identity, settings_key=self.keys.settings)
        words = _stage(results, "transcribe", transcribe, call, audio, self.transcriber, call_id=call.call_id)
        call, words, utterances = _stage(results, "segment", self.segmenter, call, words, audio, task.path, call_id=call.call_id)
        call, utterances, words = _stage(results, "redact", self.redactor, call, utterances, words, call_id=call.call_id)
        results.rttm[call.call_id] = format_rttm(call.call_id, speaker_turns(utterances))
        if self.score:
            _stage(results, "score", self.scorer, call, utterances, words, results, call_id=call.call_id)
        else:
            results.calls.append(call)
            results.utterances += utterances
        results.words += words

    def _transcript(self, task: Task, results: Results) -> None:
        call, utterances = _stage(results, "ingest", read_transcript, task.path, self.options.ingest, call_id=task.call_id)
        call = dataclasses.replace(call, settings_key=self.keys.settings)
        named = {u.speaker: u.role for u in utterances}
        given = (named, "transcript") if "unknown" not in named.values() else None
        call, utterances = _stage(results, "segment", apply_roles, call, utterances, given, self.segmenter.classifier, call_id=call.call_id)
        call, utterances, _ = _stage(results, "redact", self.redactor, call, utterances, [], call_id=call.call_id)
        _stage(results, "score", self.scorer, call, utterances, [], results, call_id=call.call_id)

    def ahead(self, tasks: Iterable[Task]) -> Iterator[Task]:
        """The tasks as they come; re-scoring ones in chunks whose utterances are annotated in one batch first."""
        stream = iter(tasks)
        while chunk := list(itertools.islice(stream, RESCORE_BATCH)):
            utterances = [u for task in chunk if task.kind == "rescore" for u in task.stored[1]]
            if utterances:
                annotator = self.scorer.annotator  # loaded outside the timing, as for a single call
                started = time.perf_counter()
                try:
                    annotator.prepare([u.text for u in utterances], [u.role for u in utterances])
                except (CallqaError, OSError, ValueError, RuntimeError):
                    pass  # each call is then annotated on its own, and fails on its own
                self.ahead_s += time.perf_counter() - started
            yield from chunk

    def _rescore(self, task: Task, results: Results) -> None:
        results.stage_s["score"] += self.ahead_s  # the batch annotated ahead is scoring time, counted once
        self.ahead_s = 0.0
        call, utterances, words = task.stored
        _stage(results, "score", self.scorer, call, utterances, words, results, call_id=call.call_id)
        results.words += words  # re-emitted, so every row of the call moves to the new part together


RESCORE_BATCH = 64  # calls annotated together when re-scoring: most of the batching gain, bounded memory

_WORKER: Worker | None = None  # per pool process; here, not in __main__, so it is built once per worker
_DASK_WORKERS: dict[tuple, Worker] = {}  # per Dask worker process, by settings
_DASK_LOCK = threading.Lock()


def _start_worker(options: Options, keys: Keys, score: bool, threads: int) -> None:
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = Worker(options, keys, score)


def _in_worker(task: Task, fail_fast: bool) -> Results:
    return _WORKER(task, fail_fast)


def _on_dask_worker(options: Options, keys: Keys, score: bool, task: Task, fail_fast: bool) -> Results:
    """Runs on a Dask worker: one Worker per process and settings, tasks one at a time (the models
    use every thread they are given)."""
    with _DASK_LOCK:
        worker = _DASK_WORKERS.setdefault((options, keys, score), Worker(options, keys, score))
        return worker(task, fail_fast)


# Planning: what to do with each input, given what the dataset holds


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def settings_key(options: Options, model: str) -> str:
    """The settings that shape a transcript: model, decoding, diarization, segmentation, role cues.
    Threads, metadata sources and the rubric do not."""
    relevant = dataclasses.asdict(options)
    for name in ("rubric", "ingest"):
        relevant.pop(name)
    relevant["transcribe"].pop("cpu_threads")
    relevant["transcribe"]["model"] = model
    cues = options.segment.role_cues or DEFAULT_ROLE_CUES
    return _digest(json.dumps(relevant, default=str, sort_keys=True), cues.read_bytes())


def rubric_key(rubric: Rubric) -> str:
    """The rubric's files (and the bundled ones it may extend), its classifier's training data and callqa's version:
    an upgrade re-scores."""
    folders = {rubric.path.parent, DEFAULT_RUBRIC.parent}
    files = sorted(p for folder in folders for p in folder.rglob("*") if p.suffix in {".toml", ".jsonl"})
    if rubric.classifier is not None:
        files.append(rubric.classifier.data)
    return _digest(version("callqa"), rubric.version, rubric.path.read_bytes(), *(p.read_bytes() for p in files))


def _preflight(options: Options, score: bool, transcribe_audio: bool) -> Keys:
    """Config, rubric and model errors before any work starts; the run's keys."""
    read_manifest(options.ingest.manifest)
    load_role_cues(options.segment.role_cues)
    model = "transcript"
    if transcribe_audio:
        resolve_model(options.transcribe.model)
        device, compute_type = resolve_device(options.transcribe.device, options.transcribe.compute_type)
        model = f"{options.transcribe.model} ({device}, {compute_type})"
    rubric = load_rubric(options.rubric) if score else None
    if rubric is not None and rubric.classifier is not None:
        trained(rubric.classifier)  # here, once, not in every worker process at the same time (the encoder: minutes, the first time)
    return Keys(
        model=model,
        settings=settings_key(options, model),
        rubric_version=rubric.version if rubric else None,
        rubric=rubric_key(rubric) if rubric else None,
    )


def _unique_recordings(paths: Sequence[Path]) -> tuple[list[tuple[Path, str | None]], int]:
    """The recordings with distinct content and their ids (a copy under another name is processed once)."""
    seen: dict[str, Path] = {}
    unique = []
    for path in paths:
        try:
            call_id = content_id(path)
        except OSError:
            unique.append((path, None))  # unreadable: ingest records the failure
            continue
        if call_id in seen:
            log.warning("%s has the same content as %s: processed once, counted as skipped", path, seen[call_id])
            continue
        seen[call_id] = path
        unique.append((path, call_id))
    return unique, len(paths) - len(unique)


def _plan(items: Iterable[tuple[Path, str | None]], kind: str, stored: Mapping[str, Stored], keys: Keys, score: bool, force: bool
          ) -> list[Task]:
    """What to do with each input: redo it, score its stored transcript again, or skip it (left out)."""
    tasks = []
    for path, call_id in items:
        done = stored.get(call_id) if call_id else None
        if force or done is None or done.settings_key != keys.settings:
            tasks.append(Task(kind, path, call_id))
        elif score and (done.status != "scored" or done.rubric_key != keys.rubric):
            tasks.append(Task("rescore", path, call_id, part=done.part))
    return tasks


def _with_stored(tasks: Iterable[Task], out_dir: Path) -> Iterator[Task]:
    """Re-scoring tasks with their stored rows, read one part file at a time (tasks come grouped by part)."""
    cache: tuple[str, dict] | None = None
    for task in tasks:
        if task.kind != "rescore":
            yield task
            continue
        if cache is None or cache[0] != task.part:
            cache = (task.part, _read_part(out_dir, task.part))
        rows = cache[1]
        yield dataclasses.replace(task, stored=(
            rows["calls"][task.call_id], rows["utterances"].get(task.call_id, []), rows["words"].get(task.call_id, [])
        ))


def _read_part(out_dir: Path, part: str) -> dict[str, dict]:
    def by_call(table: str) -> dict[str, list]:
        path = table_dir(out_dir, table) / part
        grouped: dict[str, list] = {}
        if path.is_file():
            for record in from_arrow(pq.read_table(path), TABLES[table]):
                grouped.setdefault(record.call_id, []).append(record)
        return grouped

    return {"calls": {cid: calls[0] for cid, calls in by_call("calls").items()}, "utterances": by_call("utterances"),
            "words": by_call("words")}


# Execution: in this process, a process pool or a Dask cluster; results stream back as calls finish


def _bounded(submit: Callable[[Task], object], wait_any: Callable, tasks: Iterable[Task], in_flight: int) -> Iterator[Results]:
    """Keep at most `in_flight` tasks submitted, so memory stays flat however many calls there are."""
    pending: set = set()
    for task in itertools.chain(tasks, [None]):  # lazily: None means no more tasks, drain what is in flight
        if task is not None:
            pending.add(submit(task))
        while pending and (task is None or len(pending) >= in_flight):
            done, not_done = wait_any(pending)
            pending = set(not_done)
            yield from (future.result() for future in done)


def _execute(tasks: Iterable[Task], options: Options, keys: Keys, score: bool, workers: int, scheduler: str | None, fail_fast: bool,
             transcriber: Transcriber | None) -> Iterator[Results]:
    if scheduler:
        yield from _on_dask(tasks, options, keys, score, scheduler, fail_fast)
    elif workers <= 1:
        worker = Worker(options, keys, score, transcriber)
        yield from (worker(task, fail_fast) for task in worker.ahead(tasks))
    else:
        options, threads = _options_for_workers(options, workers)
        context = multiprocessing.get_context("spawn")  # no fork of a process holding model threads
        initargs = (options, keys, score, threads)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=initargs) as pool:
            try:
                yield from _bounded(lambda task: pool.submit(_in_worker, task, fail_fast),
                                    lambda pending: wait(pending, return_when=FIRST_COMPLETED), tasks, 2 * workers)
            except BrokenProcessPool:
                raise ModelError("a worker process could not start or died; run with --workers 1 to see why.") from None


def _on_dask(tasks: Iterable[Task], options: Options, keys: Keys, score: bool, scheduler: str, fail_fast: bool) -> Iterator[Results]:
    """The same tasks on an existing Dask cluster. Its workers must see the input files at the same paths."""
    from distributed import Client
    from distributed import wait as dask_wait

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}. Check the address (tcp://HOST:PORT).") from None
    with client:
        n_threads = sum(client.nthreads().values()) or 1
        yield from _bounded(lambda task: client.submit(_on_dask_worker, options, keys, score, task, fail_fast, pure=False),
                            lambda pending: dask_wait(list(pending), return_when="FIRST_COMPLETED"), tasks, 2 * n_threads)


def _options_for_workers(options: Options, workers: int) -> tuple[Options, int]:
    """Split the cores between the workers (two 1-thread processes beat one 2-thread one)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    if options.transcribe.cpu_threads == 0:
        options = dataclasses.replace(options, transcribe=dataclasses.replace(options.transcribe, cpu_threads=threads))
    return options, threads


# The run: plan, execute, stage and commit


@dataclass(frozen=True)
class RunSettings:
    """How a run executes, as opposed to what it computes (Options)."""

    workers: int = 1
    scheduler: str | None = None  # a Dask scheduler address, e.g. tcp://10.0.0.5:8786
    force: bool = False
    fail_fast: bool = False
    wait_for_lock: bool = False
    commit_every: int = 50  # calls per committed part file
    progress: ProgressHook = no_progress


def _run(out_dir: Path, options: Options, keys: Keys, score: bool, plan: Callable[[Dataset], tuple[list[Task], int]],
         settings: RunSettings, transcriber: Transcriber | None, started: float) -> Summary:
    dataset = Dataset(out_dir)
    with dataset.locked(wait=settings.wait_for_lock):
        meta = metadata_json(callqa_version=version("callqa"), options=options.as_json(), run_id=dataset.run_id, model=keys.model,
                             rubric_version=keys.rubric_version, written_at=datetime.now(UTC).isoformat(timespec="seconds"))
        recovered = dataset.recover(meta)
        if recovered:
            log.warning("committed %d call(s) finished by an earlier run that was stopped", recovered)
        tasks, n_seen = plan(dataset)  # under the lock: what the dataset holds cannot change meanwhile
        totals = Totals(n_seen=n_seen, n_skipped=n_seen - len(tasks))
        stream = _execute(_with_stored(tasks, out_dir), options, keys, score, settings.workers, settings.scheduler, settings.fail_fast,
                          transcriber)
        try:
            for done, results in enumerate(stream, start=1):
                _keep(dataset, out_dir, results)
                totals.add(results)
                if dataset.n_staged >= settings.commit_every:
                    _timed(totals, "write", dataset.commit, meta)
                settings.progress("run" if score else "transcribe", _label(results), done, len(tasks))
        except (KeyboardInterrupt, CallqaError, BrokenProcessPool):
            dataset.commit(meta)  # interrupted or stopped (--fail-fast): what finished is kept
            raise
        _timed(totals, "write", dataset.commit, meta)
        if totals.n_done:
            _timed(totals, "write", _write_scorecards, out_dir)
    return totals.summary(out_dir, started)


def _write_scorecards(out_dir: Path) -> None:
    """agents.parquet: the weekly agent and team scorecards over the whole dataset, rebuilt after
    each run that changed it (a derived table, so a run killed before it leaves the last one)."""
    from pipeline.agents import agents_table, write_table

    table = agents_table(out_dir)
    if not table.empty:
        write_table(table, out_dir / "agents.parquet")


def _keep(dataset: Dataset, out_dir: Path, results: Results) -> None:
    """A finished call: its RTTM file, then its rows staged durably."""
    for call_id, rttm in results.rttm.items():
        write_text(out_dir / "rttm", f"{call_id}.rttm", rttm)
    dataset.stage(results.rows())


def _timed(totals: Totals, stage: str, fn: Callable, *args) -> None:
    started = time.perf_counter()
    fn(*args)
    totals.stage_s[stage] += time.perf_counter() - started


def _label(results: Results) -> str:
    first = (results.calls or results.failures or [None])[0]
    return str(getattr(first, "call_id", None) or getattr(first, "source_path", ""))


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
    settings: RunSettings | None = None,
) -> Summary:
    """Ingest, transcribe and segment recordings (and score them unless `score` is False) into the
    dataset in `out_dir`, skipping calls it already holds with the same settings."""
    started = time.perf_counter()
    settings = settings or RunSettings(workers=workers, progress=progress, fail_fast=fail_fast)
    paths = discover(inputs, AUDIO_SUFFIXES)
    if not paths:
        raise ConfigError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found in {', '.join(map(str, inputs))}.")
    keys = _preflight(options, score, transcribe_audio=True)
    if transcriber is not None:
        keys = dataclasses.replace(keys, model=transcriber.identity, settings=settings_key(options, transcriber.identity))
    unique, n_duplicates = _unique_recordings(paths)

    def plan(dataset: Dataset) -> tuple[list[Task], int]:
        tasks = _plan(unique, "audio", dataset.index(), keys, score, settings.force)
        return _grouped(tasks), len(paths)

    return _run(out_dir, options, keys, score, plan, settings, transcriber, started)


def score_transcripts(
    inputs: Sequence[Path], out_dir: Path, options: Options, *, progress: ProgressHook = no_progress, fail_fast: bool = False,
    settings: RunSettings | None = None,
) -> Summary:
    """Score existing transcript files (JSON, JSONL, WebVTT) without audio."""
    started = time.perf_counter()
    settings = settings or RunSettings(progress=progress, fail_fast=fail_fast)
    paths = [p for p in discover(inputs, TRANSCRIPT_SUFFIXES) if is_transcript(p)]
    if not paths:
        raise ConfigError(f"no transcripts (.json, .jsonl, .vtt) found in {', '.join(map(str, inputs))}.")
    keys = _preflight(options, score=True, transcribe_audio=False)
    items = [(path, _transcript_id(path, options)) for path in paths]

    def plan(dataset: Dataset) -> tuple[list[Task], int]:
        tasks = [dataclasses.replace(t, kind="transcript", part=None) if t.kind == "rescore" else t
                 for t in _plan(items, "transcript", dataset.index(), keys, True, settings.force)]
        return tasks, len(paths)

    return _run(out_dir, options, keys, True, plan, dataclasses.replace(settings, workers=1), None, started)


def _transcript_id(path: Path, options: Options) -> str | None:
    try:
        return read_transcript(path, options.ingest)[0].call_id
    except (CallqaError, OSError, ValueError):
        return None  # the task reads it again and records why it failed


def rescore(out_dir: Path, options: Options, *, progress: ProgressHook = no_progress, fail_fast: bool = False,
            settings: RunSettings | None = None) -> Summary:
    """Score again the calls transcribed in `out_dir` whose rubric differs (all of them with `force`):
    a changed rubric needs no new transcription."""
    started = time.perf_counter()
    settings = settings or RunSettings(progress=progress, fail_fast=fail_fast)
    require_transcribed(out_dir)
    keys = _preflight(options, score=True, transcribe_audio=False)

    def plan(dataset: Dataset) -> tuple[list[Task], int]:
        stored = dataset.index()
        tasks = [Task("rescore", Path(s.source_path), s.call_id, part=s.part) for s in stored.values()
                 if settings.force or s.status != "scored" or s.rubric_key != keys.rubric]
        return _grouped(tasks), len(stored)

    return _run(out_dir, options, keys, True, plan, dataclasses.replace(settings, workers=1), None, started)


def _grouped(tasks: list[Task]) -> list[Task]:
    """New work in input order, then re-scoring grouped by the part that holds each call."""
    return [t for t in tasks if t.kind != "rescore"] + sorted((t for t in tasks if t.kind == "rescore"), key=lambda t: (t.part, str(t.path)))
