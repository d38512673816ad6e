"""Example pulls and their audio clips, on the real sample run (tests/conftest.py's sample_run)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest
from test_agents import copy_with_metadata
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.clips import ClipFormat, clip_window, cut_clip, write_clips
from pipeline.examples import Direction, ExampleQuery, pull_examples
from pipeline.stages.redact import redacted_spans
from pipeline.store import read_frame, read_table

W47, W48 = datetime(2026, 11, 16, 10), datetime(2026, 11, 24, 10)


def by_source(examples) -> dict:
    return {Path(e.source_path).name: e for e in examples}


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.codec_context.sample_rate


def decoded_samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(container.streams.audio[0])])


def test_pitch_first_call_is_a_bad_discovery_example_with_a_playable_clip(sample_run, tmp_path):
    examples = pull_examples(sample_run, ExampleQuery("discovery", n=2, direction=Direction.worst))
    pitch_first = by_source(examples)["pitch_first.flac"]
    assert pitch_first.passed is False
    flag = next(f for f in pitch_first.deciding if f.rule_id == "discovery.pitch_first")
    assert flag.kind == "flag"
    moment = [line for line in pitch_first.lines if line.in_moment]
    assert [line.utterance_idx for line in moment] == [flag.utterance_idx]
    assert moment[0].role == "agent" and moment[0].start_s <= flag.start_s
    assert any(not line.in_moment for line in pitch_first.lines), "no context around the moment"

    clips = {c.call_id: c for c in write_clips(sample_run, examples, tmp_path / "clips")}
    clip = clips[pitch_first.call_id]
    path = tmp_path / "clips" / clip.file
    assert clip.file.startswith(pitch_first.call_id) and "pitch" not in clip.file  # named from the id, not the input path
    assert decoded_seconds(path) == pytest.approx(clip.end_s - clip.start_s, abs=0.05)
    assert clip.start_s <= pitch_first.moment_start_s < pitch_first.moment_end_s <= clip.end_s
    rows = {r["call_id"]: r for r in csv.DictReader((tmp_path / "clips" / "index.csv").open())}
    assert (rows[pitch_first.call_id]["clip"], rows[pitch_first.call_id]["criterion"]) == (clip.file, "discovery")
    assert "discovery.pitch_first" in rows[pitch_first.call_id]["rules"].split()
    assert f'src="{clip.file}"' in (tmp_path / "clips" / "index.html").read_text()


def test_an_absence_is_shown_where_the_criterion_looked(sample_run):
    """pitch_first's opening has greeting, name and company but no offer to help: the miss has no
    time, so the example shows the opening the rule searched."""
    examples = by_source(pull_examples(sample_run, ExampleQuery("opening", n=50)))
    opening = examples["pitch_first.flac"]
    assert "opening.offer_help" in {f.rule_id for f in opening.deciding if f.kind == "miss"}
    hits = [f for f in opening.findings if f.kind == "hit" and f.start_s is not None]
    assert hits and opening.moment_start_s == min(f.start_s for f in hits)
    assert opening.lines[0].utterance_idx == 0 and opening.lines[0].in_moment


@pytest.mark.parametrize("direction", list(Direction))
def test_every_criterion_pulls_its_extreme_calls_with_only_its_evidence(sample_run, direction):
    scores = read_frame(sample_run, "scores")
    for criterion, group in scores[scores["score"].notna()].groupby("criterion"):
        (example,) = pull_examples(sample_run, ExampleQuery(criterion, n=1, direction=direction))
        extreme = group["score"].min() if direction == Direction.worst else group["score"].max()
        assert example.criterion_score == pytest.approx(extreme), criterion
        assert {f.criterion for f in example.findings} <= {criterion}
        assert example.lines, f"{criterion}: no utterance shown"


def test_filters_by_agent_time_and_role_confidence(sample_run, tmp_path):
    calls = copy_with_metadata(sample_run, tmp_path, lambda i, call: {"agent_id": ("ann", "bob")[i % 2], "call_time": (W47, W48)[i // 7]})
    ann = pull_examples(tmp_path, ExampleQuery("discovery", n=50, agent_id="ann"))
    assert {e.call_id for e in ann} == {c.call_id for c in calls if c.agent_id == "ann"}
    recent = pull_examples(tmp_path, ExampleQuery("discovery", n=50, since=datetime(2026, 11, 23)))
    assert {e.call_id for e in recent} == {c.call_id for c in calls if c.call_time == W48}
    threshold = sorted(c.role_confidence for c in calls if c.role_confidence is not None)[len(calls) // 2]
    confident = pull_examples(tmp_path, ExampleQuery("discovery", n=50, min_confidence=threshold))
    assert {e.call_id for e in confident} == {c.call_id for c in calls if c.role_confidence is None or c.role_confidence >= threshold}
    assert 0 < len(confident) < len(calls)


def test_clips_silence_the_redacted_customer_data(sample_run, tmp_path):
    example = by_source(pull_examples(sample_run, ExampleQuery("opening", n=50)))["poor_opening.mp3"]
    spans = [(s, e) for s, e, _ in redacted_spans(read_table(sample_run, "words", call_ids=[example.call_id]))]
    assert spans, "the sample customer gives her name: it should be redacted"
    (clip,) = write_clips(sample_run, [example], tmp_path, ClipFormat.wav, context_s=spans[0][1] + 1.0)
    assert clip.n_silenced >= 1
    samples = decoded_samples(tmp_path / clip.file)
    start, end = (round((t - clip.start_s) * 16_000) for t in spans[0])
    assert np.abs(samples[start:end]).max() == 0
    assert np.abs(samples[:start]).max() > 0


def test_clip_window_keeps_context_inside_the_recording():
    assert clip_window(1.0, 2.0, 10.0, context_s=3.0) == (0.0, 5.0)
    assert clip_window(8.0, 9.5, 10.0, context_s=3.0) == (5.0, 10.0)
    assert clip_window(0.0, 100.0, 200.0, context_s=1.0) == (0.0, 31.0)  # a monologue: its first 30 s
    silenced = cut_clip(np.ones(16_000 * 4, dtype=np.float32), 1.0, 3.0, [(1.5, 2.0)])
    assert silenced.size == 32_000 and silenced[8000:16000].max() == 0 and silenced[:8000].min() == 1


def test_examples_command_prints_the_evidence_and_rejects_bad_arguments(sample_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["examples", str(sample_run), "--criterion", "discovery", "--worst", "1", "--clips", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "discovery.pitch_first" in result.output and (tmp_path / "index.html").is_file()
    assert len(list(tmp_path.glob("*.ogg"))) == 1
    both = runner.invoke(app, ["examples", str(sample_run), "--criterion", "discovery", "--worst", "1", "--best", "1"])
    assert both.exit_code == 2 and "exactly one" in both.output
    unknown = runner.invoke(app, ["examples", str(sample_run), "--criterion", "charisma", "--worst", "1"])
    assert unknown.exit_code == 2 and "discovery" in unknown.output  # lists the criteria there are


def test_examples_help_teaches_the_options():
    result = CliRunner().invoke(app, ["examples", "--help"])
    assert result.exit_code == 0
    assert all(option in result.output for option in ("--worst", "--best", "--agent", "--since", "--min-confidence", "--clips"))


def test_examples_on_a_folder_without_calls_says_what_to_run(tmp_path):
    result = CliRunner().invoke(app, ["examples", str(tmp_path), "--criterion", "discovery", "--worst", "1"])
    assert result.exit_code == 2 and "callqa run" in result.output
