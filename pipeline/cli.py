"""callqa's command line: a thin Typer layer over pipeline.runner.

Exit codes: 0 every call done, 1 some calls failed (the rest are written), 2 nothing could
run (bad arguments, config, rubric or model).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import runner
from pipeline.errors import CallqaError, ConfigError
from pipeline.options import Options, load_options, parse_speakers, validate_roles
from pipeline.store import read_table

app = typer.Typer(
    help="Turn recorded customer calls into scored, searchable Parquet tables.\n\n"
    "Typical use: callqa run recordings/ --out results/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 130)  # cron logs: no 80-column wrapping


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Inputs = Annotated[list[Path], typer.Argument(help="Audio files or folders (searched recursively).", show_default=False)]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet tables.")]
Config = Annotated[Path | None, typer.Option(help="TOML file with [ingest], [transcribe], [segment] sections and `rubric`.")]
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


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def _exit_on_error() -> Iterator[None]:
    """Config, rubric and model errors: a clear message on stderr and exit code 2."""
    try:
        yield
    except CallqaError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def _execute(task: Callable[[runner.ProgressHook], runner.Summary], verbose: bool) -> runner.Summary:
    """Run a task with a progress bar on a terminal, plain log lines otherwise."""
    _setup_logging(verbose)
    if not err.is_terminal:
        log = logging.getLogger("callqa")

        def log_progress(step: str, item: str, completed: int, total: int) -> None:
            log.warning("%s %d/%d %s", step, completed, total, item)

        return task(log_progress if verbose else runner.no_progress)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        ids: dict[str, int] = {}

        def bar_progress(step: str, item: str, completed: int, total: int) -> None:
            ids.setdefault(step, bar.add_task(step, total=total))
            bar.update(ids[step], completed=completed)

        return task(bar_progress)


def _finish(summary: runner.Summary) -> None:
    _print_calls(summary.out_dir)
    err.print(summary.line(), highlight=False, soft_wrap=True)
    if summary.n_failed:
        err.print(f"[yellow]{summary.n_failed} call(s) failed: see {summary.out_dir / 'failures.parquet'}[/]")
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
    fail_fast: FailFast = False,
    verbose: Verbose = False,
) -> None:
    """Transcribe, segment and score recordings into Parquet tables under --out.

    Writes calls, utterances, words, findings, scores and failures. Example: callqa run data/sample --out out/
    """
    with _exit_on_error():
        options = _options(config, model, device, batch_size, threads, channel_roles, manifest, filename_pattern, rubric, speakers, rttm)
        summary = _execute(
            lambda progress: runner.run_audio(inputs, out_dir, options, workers=workers, progress=progress, fail_fast=fail_fast), verbose
        )
    _finish(summary)


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
    fail_fast: FailFast = False,
    verbose: Verbose = False,
) -> None:
    """Transcribe and segment recordings without scoring; `callqa score --out DIR` scores them later.

    Example: callqa transcribe recordings/ --out out/ && callqa score --out out/ --rubric my.toml
    """
    with _exit_on_error():
        options = _options(config, model, device, batch_size, threads, channel_roles, manifest, filename_pattern, speakers=speakers, rttm=rttm)
        summary = _execute(
            lambda progress: runner.run_audio(
                inputs, out_dir, options, score=False, workers=workers, progress=progress, fail_fast=fail_fast
            ),
            verbose,
        )
    _finish(summary)


@app.command()
def score(
    inputs: Transcripts = None,
    out_dir: OutDir = Path("callqa-out"),
    config: Config = None,
    rubric: RubricOpt = None,
    fail_fast: FailFast = False,
    verbose: Verbose = False,
) -> None:
    """Score transcript files, or re-score the calls already transcribed in --out.

    Re-scoring reads the stored utterances: a changed rubric needs no new transcription.
    Examples: callqa score transcripts/ --out out/ ; callqa score --out out/ --rubric my.toml
    """
    with _exit_on_error():
        options = _options(config, rubric=rubric)
        if inputs:
            summary = _execute(lambda progress: runner.score_transcripts(inputs, out_dir, options, progress=progress, fail_fast=fail_fast), verbose)
        else:
            summary = _execute(lambda progress: runner.rescore(out_dir, options, progress=progress, fail_fast=fail_fast), verbose)
    _finish(summary)


@app.command()
def show(out_dir: Annotated[Path, typer.Argument(help="A folder written by callqa run, transcribe or score.")]) -> None:
    """Print the scored calls of an output folder as a table."""
    if not (out_dir / "calls.parquet").is_file():
        err.print(f"[bold red]error:[/] {out_dir} holds no calls.parquet; run `callqa run INPUT --out {out_dir}` first.")
        raise typer.Exit(code=2)
    _print_calls(out_dir)


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


if __name__ == "__main__":
    app()
