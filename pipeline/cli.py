"""callqa's command line: a thin Typer layer over pipeline.runner.

Exit codes: 0 every call done, 1 some calls failed (the rest are written), 2 nothing could
run (bad arguments, config, rubric or model).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import pipeline.offline  # noqa: F401  # first: sets the offline switches before huggingface_hub and the rest are imported
from pipeline import runner
from pipeline.agents import Period
from pipeline.clips import ClipFormat
from pipeline.errors import CallqaError, ConfigError
from pipeline.exports import ExportFormat
from pipeline.options import REDACT_ENTITIES, Options, load_options, parse_speakers, validate_entities, validate_roles
from pipeline.store import has_table, read_frame, read_table

app = typer.Typer(
    help="Turn recorded customer calls into scored, searchable Parquet tables.\n\n"
    "Typical use: callqa run recordings/ --out results/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("callqa")
err = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 130)  # cron logs: no 80-column wrapping


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Inputs = Annotated[list[Path], typer.Argument(help="Audio files or folders (searched recursively).", show_default=False)]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet tables.")]
Config = Annotated[Path | None, typer.Option(
    help="TOML file with \\[ingest], \\[transcribe], \\[segment], \\[redact] sections and `rubric` (example in the README).")]
Model = Annotated[str | None, typer.Option(help="faster-whisper model name, local model folder, or bundled:tiny.en (default).")]
DeviceOpt = Annotated[Device | None, typer.Option(help="auto uses CUDA (float16) when a GPU is present, else CPU (int8).")]
BatchSize = Annotated[int | None, typer.Option(help="Batched inference size; 0 decodes sequentially. Default 8.")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for the speech model; 0 uses every core.")]
ChannelRoles = Annotated[
    str | None,
    typer.Option(help="Role of each channel of stereo calls, comma-separated, e.g. agent,customer. Default: inferred from what each says."),
]
Speakers = Annotated[
    str | None, typer.Option(help="Speakers to find in mono calls: a number, or a range such as 2-3 (transfers, third parties). Default 2.")
]
Rttm = Annotated[
    Path | None, typer.Option(help="Folder of RTTM speaker timelines (<audio stem>.rttm or <call_id>.rttm) to use instead of diarizing.")
]
Manifest = Annotated[Path | None, typer.Option(help="CSV with a path column and agent_id, team, call_time, direction.")]
FilenamePattern = Annotated[str | None, typer.Option(help=r"Regex with named groups for metadata in file names, e.g. '(?P<agent_id>\w+)_'.")]
RubricOpt = Annotated[Path | None, typer.Option(help="Rubric TOML file (default: the bundled rubric).")]
Workers = Annotated[
    int, typer.Option(min=1, help="Calls processed in parallel processes, each loading the models once; the cores are split between them.")
]
FailFast = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failing call instead of recording it and going on.")]
Transcripts = Annotated[
    list[Path] | None,
    typer.Argument(help="Transcript files or folders (.json, .jsonl, .vtt). Omit to re-score the calls already in --out.", show_default=False),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")]
Force = Annotated[bool, typer.Option("--force", help="Redo calls the output already holds with the same settings.")]
Wait = Annotated[bool, typer.Option("--wait", help="If another run is writing --out, wait for it instead of stopping.")]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--dask-scheduler", envvar="CALLQA_DASK_SCHEDULER",
        help="Send the calls to this Dask cluster (tcp://HOST:PORT); its workers must see the input paths. Default: this machine.",
    ),
]
CommitEvery = Annotated[int, typer.Option(min=1, help="Calls per committed part file (finished calls are kept safe before that).")]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


LogFormatOpt = Annotated[LogFormat, typer.Option(help="json: one JSON object per log line, for log collectors.")]
Redact = Annotated[
    bool | None,
    typer.Option("--redact/--no-redact", help="Replace customer data (card, account, SSN, phone, e-mail, address, birth date, "
                 "customer names) with its type, e.g. [CARD_NUMBER], before scoring and writing. Default: on."),
]
RedactEntities = Annotated[
    str | None,
    typer.Option(help="Entity types to redact, comma-separated, e.g. CARD_NUMBER,US_SSN. Default: all of "
                 + ",".join(REDACT_ENTITIES) + "."),
]


def _with_redaction(options: Options, redact: bool | None, entities: str | None) -> Options:
    """The [redact] options with the --redact/--no-redact and --redact-entities flags applied."""
    changes: dict = {} if redact is None else {"enabled": redact}
    if entities:
        changes["entities"] = validate_entities(tuple(e.strip().upper() for e in entities.split(",") if e.strip()))
    return dataclasses.replace(options, redact=dataclasses.replace(options.redact, **changes))


def _options(config, model=None, device=None, batch_size=None, threads=None, channel_roles=None,
             manifest=None, filename_pattern=None, rubric=None, speakers=None, rttm=None) -> Options:
    options = load_options(config)
    transcribe = {k: v for k, v in {"model": model, "device": device.value if device else None,
                                     "batch_size": batch_size, "cpu_threads": threads}.items() if v is not None}
    ingest = {k: v for k, v in {"manifest": manifest, "filename_pattern": filename_pattern}.items() if v is not None}
    segment = {"rttm_dir": rttm} if rttm else {}
    if channel_roles:
        segment["channel_roles"] = validate_roles(tuple(r.strip() for r in channel_roles.split(",")))
    diarize = dict(zip(("min_speakers", "max_speakers"), parse_speakers(speakers), strict=True)) if speakers else {}
    return dataclasses.replace(
        options,
        transcribe=dataclasses.replace(options.transcribe, **transcribe),
        ingest=dataclasses.replace(options.ingest, **ingest),
        segment=dataclasses.replace(options.segment, **segment),
        diarize=dataclasses.replace(options.diarize, **diarize),
        rubric=rubric or options.rubric,
    )


class JsonLines(logging.Formatter):
    """One JSON object per record, with any `extra` fields the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


def _setup_logging(verbose: bool, log_format: LogFormat = LogFormat.text) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == LogFormat.json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("callqa").setLevel(logging.INFO)  # progress and the summary, whatever --verbose says


@contextmanager
def _exit_on_error() -> Iterator[None]:
    """Config, rubric and model errors: a clear message on stderr and exit code 2."""
    try:
        yield
    except CallqaError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def _execute(task: Callable[[runner.ProgressHook], runner.Summary], verbose: bool, log_format: LogFormat = LogFormat.text
             ) -> runner.Summary:
    """Run a task with a progress bar on a terminal, plain (or JSON) log lines otherwise."""
    _setup_logging(verbose, log_format)
    if not err.is_terminal or log_format == LogFormat.json:
        def log_progress(step: str, item: str, completed: int, total: int) -> None:
            fields = {"event": "progress", "step": step, "call": item, "completed": completed, "total": total}
            log.info("%s %d/%d %s", step, completed, total, item, extra={"fields": fields})

        return task(log_progress)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        ids: dict[str, int] = {}

        def bar_progress(step: str, item: str, completed: int, total: int) -> None:
            ids.setdefault(step, bar.add_task(step, total=total))
            bar.update(ids[step], completed=completed)

        return task(bar_progress)


def _finish(summary: runner.Summary, log_format: LogFormat = LogFormat.text) -> None:
    if log_format == LogFormat.json:
        log.info(summary.line(), extra={"fields": {"event": "summary", **summary.as_dict()}})
    else:
        if summary.n_done:
            _print_calls(summary.out_dir)
        err.print(summary.line(), highlight=False, soft_wrap=True)
    if summary.n_failed:
        err.print(f"[yellow]{summary.n_failed} call(s) failed: see the failures table in {summary.out_dir / 'failures'}[/]")
        raise typer.Exit(code=1)


def _print_calls(out_dir: Path) -> None:
    calls = read_table(out_dir, "calls")
    if not calls:
        return
    table = Table(title=f"calls in {out_dir}")
    for column in ("call", "source", "min", "mode", "agent talk", "q. before pitch", "pitch first", "score", "review"):
        table.add_column(column, no_wrap=True)
    for c in sorted(calls, key=lambda c: c.source_path):
        table.add_row(
            c.call_id[:8],
            Path(c.source_path).name,
            f"{(c.duration_s or 0) / 60:.1f}",
            c.diarization_mode,
            "-" if c.agent_talk_share is None else f"{c.agent_talk_share:.2f}",
            "-" if c.n_questions_before_pitch is None else str(c.n_questions_before_pitch),
            "-" if c.pitch_first is None else ("yes" if c.pitch_first else "no"),
            "-" if c.score is None else f"{c.score:.0f}",
            "yes" if c.needs_review else "",
        )
    out.print(table)


def _settings(workers: int, scheduler: str | None, force: bool, fail_fast: bool, wait: bool, commit_every: int) -> runner.RunSettings:
    return runner.RunSettings(workers=workers, scheduler=scheduler, force=force, fail_fast=fail_fast, wait_for_lock=wait,
                              commit_every=commit_every)


@app.command()
def run(
    inputs: Inputs,
    out_dir: OutDir = Path("callqa-out"),
    config: Config = None,
    model: Model = None,
    device: DeviceOpt = None,
    batch_size: BatchSize = None,
    threads: Threads = None,
    channel_roles: ChannelRoles = None,
    speakers: Speakers = None,
    rttm: Rttm = None,
    manifest: Manifest = None,
    filename_pattern: FilenamePattern = None,
    rubric: RubricOpt = None,
    workers: Workers = 1,
    dask_scheduler: Scheduler = None,
    force: Force = False,
    fail_fast: FailFast = False,
    wait: Wait = False,
    commit_every: CommitEvery = 50,
    log_format: LogFormatOpt = LogFormat.text,
    redact: Redact = None,
    redact_entities: RedactEntities = None,
    verbose: Verbose = False,
) -> None:
    """Transcribe, segment and score recordings into the Parquet dataset under --out.

    Incremental: calls --out already holds with the same settings are skipped, calls whose
    rubric changed are re-scored from their stored transcripts, new calls are added.
    Exit codes: 0 all done, 1 some calls failed (the rest are written), 2 nothing could run.

    Example (nightly): callqa run /recordings/today --out /data/callqa --log-format json
    """
    with _exit_on_error():
        options = _options(config, model, device, batch_size, threads, channel_roles, manifest, filename_pattern, rubric, speakers, rttm)
        options = _with_redaction(options, redact, redact_entities)
        settings = _settings(workers, dask_scheduler, force, fail_fast, wait, commit_every)
        summary = _execute(
            lambda progress: runner.run_audio(inputs, out_dir, options, settings=dataclasses.replace(settings, progress=progress)),
            verbose, log_format,
        )
    _finish(summary, log_format)


@app.command()
def transcribe(
    inputs: Inputs,
    out_dir: OutDir = Path("callqa-out"),
    config: Config = None,
    model: Model = None,
    device: DeviceOpt = None,
    batch_size: BatchSize = None,
    threads: Threads = None,
    channel_roles: ChannelRoles = None,
    speakers: Speakers = None,
    rttm: Rttm = None,
    manifest: Manifest = None,
    filename_pattern: FilenamePattern = None,
    workers: Workers = 1,
    dask_scheduler: Scheduler = None,
    force: Force = False,
    fail_fast: FailFast = False,
    wait: Wait = False,
    commit_every: CommitEvery = 50,
    log_format: LogFormatOpt = LogFormat.text,
    redact: Redact = None,
    redact_entities: RedactEntities = None,
    verbose: Verbose = False,
) -> None:
    """Transcribe and segment recordings without scoring; `callqa score --out DIR` scores them later.

    Example: callqa transcribe recordings/ --out out/ && callqa score --out out/ --rubric my.toml
    """
    with _exit_on_error():
        options = _options(config, model, device, batch_size, threads, channel_roles, manifest, filename_pattern, speakers=speakers, rttm=rttm)
        options = _with_redaction(options, redact, redact_entities)
        settings = _settings(workers, dask_scheduler, force, fail_fast, wait, commit_every)
        summary = _execute(
            lambda progress: runner.run_audio(inputs, out_dir, options, score=False, settings=dataclasses.replace(settings, progress=progress)),
            verbose, log_format,
        )
    _finish(summary, log_format)


@app.command()
def score(
    inputs: Transcripts = None,
    out_dir: OutDir = Path("callqa-out"),
    config: Config = None,
    rubric: RubricOpt = None,
    force: Force = False,
    fail_fast: FailFast = False,
    wait: Wait = False,
    commit_every: CommitEvery = 50,
    log_format: LogFormatOpt = LogFormat.text,
    redact: Redact = None,
    redact_entities: RedactEntities = None,
    verbose: Verbose = False,
) -> None:
    """Score transcript files, or re-score the calls already transcribed in --out.

    Re-scoring reads the stored transcripts of the calls whose rubric differs (every call with
    --force): a changed rubric needs no new transcription.
    Examples: callqa score transcripts/ --out out/ ; callqa score --out out/ --rubric my.toml
    """
    with _exit_on_error():
        options = _with_redaction(_options(config, rubric=rubric), redact, redact_entities)
        settings = _settings(1, None, force, fail_fast, wait, commit_every)
        if inputs:
            def task(progress):
                return runner.score_transcripts(inputs, out_dir, options, settings=dataclasses.replace(settings, progress=progress))
        else:
            def task(progress):
                return runner.rescore(out_dir, options, settings=dataclasses.replace(settings, progress=progress))
        summary = _execute(task, verbose, log_format)
    _finish(summary, log_format)


def _require_calls(out_dir: Path) -> None:
    if not has_table(out_dir, "calls"):
        err.print(f"[bold red]error:[/] {out_dir} holds no calls; run `callqa run INPUT --out {out_dir}` first.")
        raise typer.Exit(code=2)


@app.command()
def show(out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run, transcribe or score.")]) -> None:
    """Print the calls of an output folder as a table."""
    _require_calls(out_dir)
    _print_calls(out_dir)


@app.command()
def check(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run or score.")],
    min_score: Annotated[float, typer.Option(help="Lowest acceptable score, 0-100 (criterion scores are scaled to 0-100 too).")],
    criterion: Annotated[str | None, typer.Option(help="Check this criterion's score instead of the call's overall score.")] = None,
    max_below: Annotated[int, typer.Option(min=0, help="How many calls may fall below before the check fails.")] = 0,
) -> None:
    """A quality gate for CI: exit 1 when more than --max-below calls score under --min-score.

    Calls that could not be scored (roles unknown) are listed but do not fail the gate.
    Example: callqa check out/ --min-score 60 ; callqa check out/ --criterion opening --min-score 100
    """
    _require_calls(out_dir)
    if criterion is None:
        scores = read_frame(out_dir, "calls", ["call_id", "source_path", "score"])
    else:
        scores = read_frame(out_dir, "scores", ["call_id", "criterion", "score"])
        known = sorted(set(scores["criterion"]))
        if criterion not in known:
            err.print(f"[bold red]error:[/] no criterion {criterion!r} in {out_dir}; known: {', '.join(known)}.")
            raise typer.Exit(code=2)
        scores = scores[scores["criterion"] == criterion].assign(score=lambda f: f["score"] * 100)
    below = scores[scores["score"] < min_score]
    unscored = int(scores["score"].isna().sum())
    what = f"criterion {criterion}" if criterion else "overall score"
    for row in below.sort_values("score").itertuples():
        out.print(f"{row.call_id}  {row.score:5.1f}  {getattr(row, 'source_path', '')}", highlight=False)
    verdict = "FAIL" if len(below) > max_below else "pass"
    err.print(f"{verdict}: {len(below)} of {len(scores)} calls below {min_score:g} on {what} (allowed {max_below}); {unscored} not scored",
              highlight=False)
    if verdict == "FAIL":
        raise typer.Exit(code=1)


# --- explain (issue 4): the logic is in pipeline/explain.py ---------------------------------
@app.command()
def explain(
    target: Annotated[str, typer.Argument(help="Some text to annotate, or with --out a call id (a unique prefix, or the source file name).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder holding the call; without it TARGET is text.")] = None,
    rubric: RubricOpt = None,
    role: Annotated[str, typer.Option(help="Who says the text: agent or customer (text only).")] = "agent",
) -> None:
    """Show which rules fire on which words, or how a stored call's scores were computed.

    Examples: callqa explain "I'll take care of this by Friday" ; callqa explain d2de5fac --out out/
    """
    from pipeline.explain import explain_call, explain_text
    from pipeline.rubric import load_rubric
    from pipeline.stages.score import Annotator

    with _exit_on_error():
        loaded = load_rubric(rubric)
        if out_dir is not None:
            text = explain_call(out_dir, target, loaded)
        else:
            if role not in ("agent", "customer"):
                raise ConfigError(f"--role {role!r} is not valid; use agent or customer.")
            text = explain_text(target, loaded, Annotator(loaded), role)
    out.print(text, markup=False, highlight=False, soft_wrap=True)


# --- agents and report (issue 6): the logic is in pipeline/agents.py and pipeline/report.py ---------
@app.command()
def agents(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run or score.")],
    period: Annotated[Period, typer.Option(help="Group calls by the day, ISO week or month of their call_time (else the run's date).")] = Period.week,
    table_out: Annotated[Path | None, typer.Option("--out", help="Also write the scorecards to this .parquet or .csv file.")] = None,
) -> None:
    """Agent and team scorecards: per agent (and team) and period, calls, mean score, mean score per
    criterion (0-100), agent talk share, questions before the pitch, and the change against the previous period.

    Calls get their agent_id and team from a sidecar, the --manifest or the --filename-pattern of `callqa run`.
    Example: callqa agents out/ --period month --out agents.csv
    """
    from pipeline.agents import agents_table, write_table

    _require_calls(out_dir)
    with _exit_on_error():
        table = agents_table(out_dir, period)
        if table_out is not None:
            write_table(table, table_out)
    if table.empty:
        err.print(f"no call in {out_dir} carries an agent id or a team; give them with a NAME.meta.json sidecar, "
                  "--manifest or --filename-pattern when running `callqa run`.", highlight=False, soft_wrap=True)
        return
    _print_scorecards(table)
    if table_out is not None:
        err.print(f"{len(table)} rows written to {table_out}", highlight=False)


def _print_scorecards(table) -> None:
    criteria = [c for c in table.columns if c.startswith("score_") and c != "score_delta"]
    grid = Table(title="agent and team scorecards (scores 0-100)")
    for column in ("level", "agent / team", "period", "calls", "score", "trend", "agent talk", "q. before pitch",
                   *(c.removeprefix("score_") for c in criteria)):
        grid.add_column(column, no_wrap=column in ("agent / team", "period"))

    def number(value, digits: int = 0, sign: bool = False) -> str:
        return "-" if value is None or value != value else f"{value:{'+' if sign else ''}.{digits}f}"

    for row in table.itertuples(index=False):
        who = row.agent_id if row.level == "agent" else row.team
        grid.add_row(row.level, str(who), row.period, str(row.calls), number(row.score), number(row.score_delta, sign=True),
                     number(row.agent_talk_share, 2), number(row.n_questions_before_pitch, 1),
                     *(number(getattr(row, c)) for c in criteria))
    out.print(grid)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run or score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    max_calls: Annotated[int, typer.Option(min=0, help="Calls shown with their transcript and timeline (the ones to review first).")] = 200,
    rubric: RubricOpt = None,
    period: Annotated[Period, typer.Option(help="Period of the agent and team scorecards.")] = Period.week,
) -> None:
    """Write one self-contained HTML report (opens offline): score distribution, pass rates per criterion,
    agent talk share against the rubric's band, the calls to review first, agent and team scorecards, and
    per call its transcript coloured by role with the findings highlighted and a timeline of who spoke when.

    Example: callqa report out/ -o report.html --max-calls 50
    """
    import time

    from pipeline.report import write_report
    from pipeline.rubric import load_rubric

    _require_calls(out_dir)
    started = time.perf_counter()
    with _exit_on_error():
        write_report(out_dir, output, load_rubric(rubric), max_calls, period)
    size_mb = output.stat().st_size / 1e6
    err.print(f"report written to {output} ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f} s", highlight=False)


# --- examples, clips and exports (issue 6): the logic is in pipeline/examples.py, clips.py, exports.py ---------
@app.command()
def examples(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run or score.")],
    criterion: Annotated[str, typer.Option(help="The rubric criterion, e.g. discovery or opening (`callqa examples DIR --criterion x` lists them).")],
    worst: Annotated[int | None, typer.Option(min=1, help="The N calls that scored lowest on the criterion.")] = None,
    best: Annotated[int | None, typer.Option(min=1, help="The N calls that scored highest on the criterion.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's calls (agent_id from a sidecar, manifest or file name).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only calls from this date or time on (calls without a call_time are left out).")] = None,
    min_confidence: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Only calls whose inferred roles are at least this certain (given roles count as certain).")
    ] = None,
    context: Annotated[int, typer.Option(min=0, help="Utterances shown before and after the moment.")] = 2,
    clips: Annotated[Path | None, typer.Option(help="Cut each moment's audio into this folder, with index.csv and index.html.")] = None,
    clip_format: Annotated[ClipFormat, typer.Option(help="ogg (Opus, small) or wav (16-bit PCM).")] = ClipFormat.ogg,
    clip_context: Annotated[float, typer.Option(min=0.0, help="Seconds of audio kept on each side of the moment.")] = 3.0,
) -> None:
    """Example calls for training and review: the worst (or best) calls on one criterion, with the
    evidence (the rules that fired, the elements that were missing) and the utterances around the moment.

    Examples: callqa examples out/ --criterion discovery --worst 10 --clips clips/ ;
    callqa examples out/ --criterion opening --best 5 --agent a17 --since 2026-11-01
    """
    from pipeline.examples import Direction, ExampleQuery, format_example, pull_examples

    _require_calls(out_dir)
    if (worst is None) == (best is None):
        err.print("[bold red]error:[/] give exactly one of --worst N or --best N.", highlight=False)
        raise typer.Exit(code=2)
    query = ExampleQuery(criterion, worst or best, Direction.worst if worst else Direction.best, agent, since, min_confidence, context)
    with _exit_on_error():
        pulled = pull_examples(out_dir, query)
        if not pulled:
            err.print(f"no scored call in {out_dir} matches (criterion {criterion}, agent {agent or 'any'}, since {since or 'any time'}, "
                      f"min confidence {min_confidence if min_confidence is not None else 'none'}).", highlight=False, soft_wrap=True)
            return
        for example in pulled:
            out.print(format_example(example), markup=False, highlight=False, soft_wrap=True)
        if clips is not None:
            from pipeline.clips import write_clips

            cut = write_clips(out_dir, pulled, clips, clip_format, clip_context)
            missing = [c for c in cut if not c.file]
            err.print(f"{len(cut) - len(missing)} clip(s) in {clips}, index: {clips / 'index.html'} and index.csv"
                      + "".join(f"\n  no clip for {c.call_id}: {c.note}" for c in missing), highlight=False, soft_wrap=True)


@app.command()
def export(
    out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run or score.")],
    to: Annotated[Path, typer.Option("--out", "-o", help="Folder for the exports: one subfolder per format, one file per call.")],
    formats: Annotated[list[ExportFormat], typer.Option("--format", "-f", help="vtt, srt, rttm, json or all; repeat for several.")] = [  # noqa: B006
        ExportFormat.all
    ],
) -> None:
    """Export every call in formats other tools read: WebVTT with <v Agent>/<v Customer> voice tags, SRT,
    RTTM, and JSON shaped like Amazon Transcribe Call Analytics output (README: Exports).

    Files are named after call ids: OUT/vtt/<call_id>.vtt, OUT/json/<call_id>.json ...
    Example: callqa export out/ --out exports/ --format vtt --format json
    """
    from pipeline.exports import export_calls

    _require_calls(out_dir)
    with _exit_on_error():
        written = _execute(lambda progress: export_calls(out_dir, to, formats, progress), verbose=False)
    err.print("written to " + str(to) + ": " + ", ".join(f"{n} {fmt}" for fmt, n in written.items()), highlight=False)


if __name__ == "__main__":
    app()
