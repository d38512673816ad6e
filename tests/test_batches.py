"""Nightly batches: incremental re-runs, crash safety under a real SIGKILL, the lock, Dask,
the scheduler-facing outputs (exit codes, JSON logs, `callqa check`), and readers of the dataset."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest
from conftest import SAMPLE_DIR
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.records import TABLES
from pipeline.store import part_files, read_table

cli = CliRunner()
CALLS = ("poor_opening.mp3", "pitch_first.flac", "interruptions.wav")
REPO = Path(__file__).resolve().parent.parent


def _inputs(folder: Path, names=CALLS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SAMPLE_DIR / name, folder / name)
    return folder


def _callqa(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def _all_rows(out: Path) -> dict[str, list]:
    return {table: read_table(out, table) for table in TABLES}


def _stderr(result) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """One uninterrupted run over CALLS: (inputs, output folder)."""
    root = tmp_path_factory.mktemp("reference")
    inputs = _inputs(root / "in")
    result = cli.invoke(app, ["run", str(inputs), "--out", str(root / "out"), "--commit-every", "2"])
    assert result.exit_code == 0, result.output
    return inputs, root / "out"


def test_a_second_run_redoes_nothing_and_changes_no_file(reference):
    inputs, out = reference
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    result = cli.invoke(app, ["run", str(inputs), "--out", str(out)])
    assert result.exit_code == 0
    assert "3 calls seen, 3 skipped, 0 done, 0 failed" in _stderr(result)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before


def test_new_calls_are_appended_and_a_changed_rubric_rescores_without_transcribing(reference, tmp_path):
    inputs, reference_out = reference
    out = tmp_path / "out"
    shutil.copytree(reference_out, out)
    _inputs(inputs.parent / "more", ["next_steps.m4a"])
    rubric_dir = tmp_path / "rubric"
    shutil.copytree(REPO / "pipeline" / "rubric", rubric_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    toml = rubric_dir / "default.toml"
    toml.write_text(toml.read_text().replace('version = "', 'version = "stricter-', 1))

    result = cli.invoke(app, ["run", str(inputs), str(inputs.parent / "more"), "--out", str(out), "--rubric", str(toml)])
    assert result.exit_code == 0, result.output
    assert "4 calls seen, 0 skipped, 4 done (3 re-scored from stored transcripts)" in _stderr(result)
    assert "1.3 min of audio" in _stderr(result)  # only the new call was transcribed
    calls = read_table(out, "calls")
    assert len(calls) == 4 and {c.rubric_version.split("-")[0] for c in calls} == {"stricter"}
    old_words = {w for w in read_table(reference_out, "words")}
    assert old_words <= set(read_table(out, "words"))
    assert len({c.call_id for c in calls}) == len(calls)


def test_force_redoes_every_call_without_duplicating_rows(reference, tmp_path):
    inputs, reference_out = reference
    out = tmp_path / "out"
    shutil.copytree(reference_out, out)
    result = cli.invoke(app, ["run", str(inputs / CALLS[0]), "--out", str(out), "--force"])
    assert result.exit_code == 0
    assert "1 calls seen, 0 skipped, 1 done" in _stderr(result)
    assert _all_rows(out) == _all_rows(reference_out)


def test_rescoring_stored_calls_in_one_batch_gives_the_rows_of_scoring_them_one_by_one(reference, tmp_path):
    """Re-scoring annotates the calls' utterances in one batch (Annotator.prepare); the reference run scored each
    call as it was transcribed."""
    _, reference_out = reference
    out = tmp_path / "out"
    shutil.copytree(reference_out, out)
    result = cli.invoke(app, ["score", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert "3 done (3 re-scored from stored transcripts)" in _stderr(result)
    assert _all_rows(out) == _all_rows(reference_out)


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_run_killed_mid_way_resumes_to_the_same_dataset(reference, tmp_path):
    inputs, reference_out = reference
    out = tmp_path / "out"
    staging = out / ".callqa" / "staging"
    victim = subprocess.Popen(_callqa("run", str(inputs), "--out", str(out), "--commit-every", "2"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        _wait_for(lambda: staging.is_dir() and any(staging.rglob("*.pkl")), 300, "the first finished call")
        # frozen at once: its next call takes about as long as the second run below needs to start, and a victim
        # that finished it would commit both (commit-every 2) before the kill
        victim.send_signal(signal.SIGSTOP)
        second = subprocess.run(_callqa("run", str(inputs), "--out", str(out)), capture_output=True, text=True, cwd=REPO)
        assert second.returncode == 2 and "being written by another callqa run" in " ".join(second.stderr.split())
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    assert read_table(out, "calls") == []  # one call finished, none committed yet

    resumed = subprocess.run(_callqa("run", str(inputs), "--out", str(out)), capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert "committed 1 call(s) finished by an earlier run" in resumed.stderr
    assert "3 calls seen, 1 skipped, 2 done" in " ".join(resumed.stderr.split())
    assert _all_rows(out) == _all_rows(reference_out)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.pkl"))


def test_a_local_dask_cluster_writes_the_same_rows(reference, tmp_path):
    from distributed import LocalCluster

    inputs, reference_out = reference
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = cli.invoke(app, ["run", str(inputs), "--out", str(tmp_path / "out"), "--dask-scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert _all_rows(tmp_path / "out") == _all_rows(reference_out)


def test_an_unreachable_dask_scheduler_exits_2_with_the_address(tmp_path):
    result = cli.invoke(app, ["run", str(SAMPLE_DIR / CALLS[0]), "--out", str(tmp_path), "--dask-scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and "tcp://127.0.0.1:9" in _stderr(result)


def test_json_logs_are_one_object_per_line_with_progress_and_summary(reference, tmp_path):
    inputs, reference_out = reference
    out = tmp_path / "out"
    shutil.copytree(reference_out, out)
    result = cli.invoke(app, ["run", str(inputs), "--out", str(out), "--force", "--log-format", "json"])
    assert result.exit_code == 0
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    progress = [e for e in entries if e.get("event") == "progress"]
    (summary,) = [e for e in entries if e.get("event") == "summary"]
    assert [e["completed"] for e in progress] == [1, 2, 3] and {e["total"] for e in progress} == {3}
    assert (summary["n_seen"], summary["n_done"], summary["n_failed"]) == (3, 3, 0)


@pytest.mark.parametrize("args, code, message", [
    (["--min-score", "0"], 0, "pass: 0 of 3 calls below 0"),
    (["--min-score", "101"], 1, "FAIL: 3 of 3 calls below 101"),
    (["--min-score", "101", "--max-below", "3"], 0, "pass: 3 of 3"),
    (["--criterion", "opening", "--min-score", "101"], 1, "on criterion opening"),
    (["--criterion", "no_such", "--min-score", "1"], 2, "known: "),
])
def test_check_is_a_quality_gate_with_exit_codes(reference, args, code, message):
    result = cli.invoke(app, ["check", str(reference[1]), *args])
    assert result.exit_code == code, result.output
    assert message in _stderr(result)


def test_the_check_names_the_calls_below_the_threshold(reference):
    result = cli.invoke(app, ["check", str(reference[1]), "--min-score", "101"])
    assert sorted(line.split()[0] for line in result.stdout.splitlines()) == sorted(c.call_id for c in read_table(reference[1], "calls"))


def test_pandas_duckdb_and_polars_read_each_table_folder_as_one_table(reference):
    out = reference[1]
    assert len(part_files(out, "calls")) == 2  # --commit-every 2 over three calls
    expected = sorted(c.call_id for c in read_table(out, "calls"))
    assert sorted(pd.read_parquet(out / "calls")["call_id"]) == expected
    rows = duckdb.sql(f"select call_id from read_parquet('{out}/calls/*/*.parquet', hive_partitioning=true)").fetchall()
    assert sorted(r[0] for r in rows) == expected
    assert sorted(pl.read_parquet(f"{out}/calls/**/*.parquet", hive_partitioning=True)["call_id"].to_list()) == expected
    n_words = duckdb.sql(f"select count(*) from read_parquet('{out}/words/*/*.parquet')").fetchall()[0][0]
    assert n_words == len(read_table(out, "words"))


def test_outputs_follow_the_umask(reference):
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.stat().st_mode & 0o777 for p in reference[1].rglob("*.parquet")}
    assert modes == {0o666 & ~umask}


def test_a_run_rebuilds_the_agent_scorecards_when_calls_carry_agent_ids(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLE_DIR / CALLS[0], inputs / f"a17_{CALLS[0]}")
    result = cli.invoke(app, ["run", str(inputs), "--out", str(tmp_path / "out"), "--filename-pattern", r"(?P<agent_id>[a-z0-9]+)_"])
    assert result.exit_code == 0, result.output
    agents = pd.read_parquet(tmp_path / "out" / "agents.parquet")
    (row,) = agents[agents["level"] == "agent"].itertuples()
    assert (row.agent_id, row.calls) == ("a17", 1) and row.score == pytest.approx(read_table(tmp_path / "out", "calls")[0].score)
