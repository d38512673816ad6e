"""callqa explain: rules on words for a text; scores and evidence for a stored call."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.explain import explain_call, explain_text
from pipeline.store import read_table

runner = CliRunner()


def test_explain_text_names_rules_words_and_criteria(rubric, annotator):
    text = explain_text("do you back up every day. I'll send the quote by Friday, guaranteed.", rubric, annotator)
    assert "'do you back up every day.' -> closed question" in text
    assert "tagger decided" in text
    assert "next_steps.deadline" in text and "'by Friday'" in text and "read by next_steps" in text
    assert "over_promise.guaranteed" in text and "'guaranteed'" in text


def test_explain_text_says_when_nothing_fires(rubric, annotator):
    assert "no rule fires" in explain_text("The weather is fine.", rubric, annotator)


def test_explain_cli_text():
    result = runner.invoke(app, ["explain", "I'm sorry to hear that, I'll take care of it."])
    assert result.exit_code == 0, result.output
    assert "empathy.sorry_to_hear" in result.output and "ownership.ill_take_care" in result.output


def _scored_transcript(tmp_path):
    transcript = tmp_path / "call.json"
    transcript.write_text(json.dumps({"utterances": [
        {"speaker": "Agent", "start_s": 0.0, "end_s": 3.0, "text": "Thank you for calling Contoso, my name is Ann. How can I help you?"},
        {"speaker": "Customer", "start_s": 3.5, "end_s": 5.0, "text": "I want to speak to a manager, this is terrible."},
        {"speaker": "Agent", "start_s": 5.5, "end_s": 7.0, "text": "I'm sorry to hear that. Let me get my supervisor on the line for you."},
        {"speaker": "Customer", "start_s": 7.5, "end_s": 9.0, "text": "Thank you, that is great."},
    ]}))
    out = tmp_path / "out"
    assert runner.invoke(app, ["score", str(transcript), "--out", str(out)]).exit_code == 0
    return out


def test_explain_call_shows_each_criterion_its_evidence_and_the_sum(tmp_path, rubric):
    out = _scored_transcript(tmp_path)
    (call,) = read_table(out, "calls")
    text = explain_call(out, call.call_id[:6], rubric)
    assert f"score {call.score}" in text
    assert all(f"\n{c.name}: " in text for c in rubric.criteria)
    assert "escalation.required" in text and "escalation request" not in text
    assert "empathy.sorry_to_hear" in text
    assert f"= {call.score:.1f}" in text.splitlines()[-2] or f"= {call.score:.1f}" in text


def test_explain_cli_unknown_call_exits_2_with_the_fix(tmp_path):
    out = _scored_transcript(tmp_path)
    result = runner.invoke(app, ["explain", "nope", "--out", str(out)])
    assert result.exit_code == 2
    assert "callqa show" in " ".join(result.stderr.split())
