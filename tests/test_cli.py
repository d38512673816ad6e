"""The CLI: every --help, every error path, exit codes, and the stage commands."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import read_metadata, read_table

runner = CliRunner()
SHORT_CALL = SAMPLE_DIR / "poor_opening.mp3"


COMMANDS = ["run", "transcribe", "score", "show", "check", "explain", "agents", "report", "examples", "export"]


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_explains_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


def test_help_keeps_bracketed_section_names():
    """Rich reads [ingest] as markup and drops it unless escaped."""
    result = runner.invoke(app, ["run", "--help"], terminal_width=200)
    assert "[ingest]" in result.output and "[redact]" in result.output


@pytest.mark.parametrize("args, message", [
    (["run", "no/such/folder", "--out", "{tmp}"], "does not exist"),
    (["run", str(SHORT_CALL), "--out", "{tmp}", "--rubric", "missing.toml"], "rubric file"),
    (["run", str(SHORT_CALL), "--out", "{tmp}", "--config", "missing.toml"], "config file"),
    (["run", str(SHORT_CALL), "--out", "{tmp}", "--channel-roles", "boss,customer"], "not valid"),
    (["run", str(SHORT_CALL), "--out", "{tmp}", "--model", "no-such-model-xyz"], "cannot load model"),
    (["run", str(SHORT_CALL), "--out", "{tmp}", "--speakers", "3-2"], "--speakers"),
    (["run", str(SHORT_CALL), "--out", "{tmp}", "--speakers", "two"], "--speakers"),
    (["run", "{empty}", "--out", "{tmp}"], "no audio files"),
    (["score", "--out", "{tmp}"], "callqa transcribe"),
    (["score", "{empty}", "--out", "{tmp}"], "no transcripts"),
    (["show", "{tmp}"], "holds no calls"),
    (["check", "{tmp}", "--min-score", "50"], "holds no calls"),
])
def test_errors_exit_2_with_a_clear_message(tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, [a.format(tmp=tmp_path / "out", empty=empty) for a in args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def write_silence(path: Path, seconds: float = 3.0) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\0\0" * int(16000 * seconds))


def test_bad_recordings_become_failure_rows_and_the_rest_is_scored(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SHORT_CALL, inputs / "good.mp3")
    (inputs / "broken.wav").write_text("this is not audio")
    write_silence(inputs / "silence.wav")
    result = runner.invoke(app, ["run", str(inputs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    failures = {Path(f.source_path).name: f for f in read_table(tmp_path / "out", "failures")}
    assert (failures["broken.wav"].stage, failures["broken.wav"].error_type) == ("ingest", "AudioError")
    assert failures["silence.wav"].stage == "transcribe" and "no speech" in failures["silence.wav"].message
    assert failures["silence.wav"].call_id is not None
    (call,) = read_table(tmp_path / "out", "calls")
    assert call.status == "scored" and call.score is not None
    assert "2 failed" in " ".join(result.stderr.split())


def test_score_reads_existing_transcripts(tmp_path):
    transcript = tmp_path / "call.json"
    transcript.write_text(json.dumps({"agent_id": "a7", "utterances": [
        {"speaker": "Agent", "start_s": 0.0, "end_s": 3.0, "text": "Thank you for calling Contoso, my name is Ann. How can I help you?"},
        {"speaker": "Customer", "start_s": 3.5, "end_s": 5.0, "text": "My bill is wrong."},
        {"speaker": "Agent", "start_s": 5.5, "end_s": 7.0, "text": "I'm sorry to hear that. I'll take care of it."},
    ]}))
    result = runner.invoke(app, ["score", str(transcript), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (call,) = read_table(tmp_path / "out", "calls")
    assert (call.source_kind, call.agent_id, call.needs_review) == ("transcript", "a7", False)
    rules = {f.rule_id for f in read_table(tmp_path / "out", "findings")}
    assert {"opening.offer_help", "empathy.sorry_to_hear", "ownership.ill_take_care"} <= rules


def test_transcribe_then_score_with_a_changed_rubric_does_not_transcribe_again(tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["transcribe", str(SHORT_CALL), "--out", str(out)]).exit_code == 0
    (transcribed,) = read_table(out, "calls")
    assert transcribed.status == "transcribed" and read_table(out, "findings") == []
    words_before = read_table(out, "words")

    rubric_dir = tmp_path / "rubric"
    shutil.copytree(Path(__file__).parent.parent / "pipeline" / "rubric", rubric_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    toml = rubric_dir / "default.toml"
    toml.write_text(toml.read_text().replace('version = "', 'version = "custom-', 1))
    result = runner.invoke(app, ["score", "--out", str(out), "--rubric", str(toml)])
    assert result.exit_code == 0, result.output
    assert "1 re-scored from stored transcripts" in " ".join(result.stderr.split())
    (scored,) = read_table(out, "calls")
    assert scored.status == "scored" and scored.rubric_version.startswith("custom-")
    assert read_metadata(out, "findings")["rubric_version"].startswith("custom-")
    assert read_table(out, "words") == words_before
    again = runner.invoke(app, ["score", "--out", str(out), "--rubric", str(toml)])
    assert "1 skipped, 0 done" in " ".join(again.stderr.split())


def test_rttm_timelines_replace_diarization_and_their_role_labels_win(tmp_path):
    mono = SAMPLE_DIR / "poor_opening_mono.opus"
    result = runner.invoke(app, ["transcribe", str(mono), "--out", str(tmp_path), "--rttm", str(SAMPLE_DIR)])
    assert result.exit_code == 0, result.output
    (call,) = read_table(tmp_path, "calls")
    assert (call.diarization_mode, call.role_source, call.n_speakers) == ("rttm", "rttm", 2)
    assert {u.role for u in read_table(tmp_path, "utterances")} == {"agent", "customer"}


def test_a_call_without_its_rttm_becomes_a_failure_row(tmp_path):
    result = runner.invoke(app, ["transcribe", str(SHORT_CALL), "--out", str(tmp_path / "out"), "--rttm", str(tmp_path)])
    assert result.exit_code == 1
    (failure,) = read_table(tmp_path / "out", "failures")
    assert failure.stage == "segment" and "no RTTM" in failure.message


def test_score_infers_roles_of_transcript_speakers_that_are_only_named(tmp_path):
    transcript = tmp_path / "call.jsonl"
    rows = [
        {"speaker": "Ann", "text": "Thank you for calling Contoso, my name is Ann. How can I help you?"},
        {"speaker": "Bob", "text": "Hi, I'm calling about my bill, I was charged twice."},
        {"speaker": "Ann", "text": "I'm sorry to hear that. Can I have your account number?"},
    ]
    transcript.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert runner.invoke(app, ["score", str(transcript), "--out", str(tmp_path / "out")]).exit_code == 0
    (call,) = read_table(tmp_path / "out", "calls")
    assert (call.role_source, call.needs_review) == ("inferred", False) and call.role_confidence > 0.8
    assert {u.speaker: u.role for u in read_table(tmp_path / "out", "utterances")} == {"Ann": "agent", "Bob": "customer"}


def test_two_workers_write_the_same_rows_as_one(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("poor_opening.mp3", "poor_opening_mono.opus"):
        shutil.copy(SAMPLE_DIR / name, inputs / name)
    shutil.copy(SAMPLE_DIR / "poor_opening.mp3", inputs / "same_call_renamed.mp3")
    for workers in ("1", "2"):
        result = runner.invoke(app, ["run", str(inputs), "--out", str(tmp_path / workers), "--workers", workers])
        assert result.exit_code == 0, result.output
        assert "3 calls seen, 1 skipped, 2 done" in " ".join(result.stderr.split())
    for table in ("calls", "utterances", "words", "findings", "scores"):
        assert read_table(tmp_path / "1", table) == read_table(tmp_path / "2", table), table
