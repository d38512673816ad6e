from __future__ import annotations

import pytest

from pipeline.errors import RubricError
from pipeline.records import Utterance
from pipeline.roles import DEFAULT_ROLE_CUES, RoleClassifier, load_role_cues

CLASSIFIER = RoleClassifier(load_role_cues())


def utterances(*turns: tuple[str, str]) -> list[Utterance]:
    return [Utterance("c1", i, speaker, "unknown", None, float(i), float(i) + 1, text, len(text.split())) for i, (speaker, text) in enumerate(turns)]


def test_agent_is_the_speaker_who_greets_and_offers_help():
    decision = CLASSIFIER.decide(utterances(
        ("a", "Thank you for calling Contoso, how can I help you?"),
        ("b", "Hi, I'm calling about my bill."),
        ("a", "Could I have your account number?"),
    ))
    assert decision.roles == {"a": "agent", "b": "customer"} and decision.complete
    assert decision.confidence > 0.95


def test_roles_follow_what_is_said_not_who_speaks_first():
    decision = CLASSIFIER.decide(utterances(
        ("b", "Hello?"),
        ("a", "Thank you for calling Contoso, how can I help you?"),
        ("b", "I was charged twice on my bill."),
    ))
    assert decision.roles == {"a": "agent", "b": "customer"}


def test_a_transfer_has_two_agents_and_one_customer():
    decision = CLASSIFIER.decide(utterances(
        ("a", "Thank you for calling Contoso, how can I help you?"),
        ("c", "I'm calling about my bill."),
        ("a", "I'll transfer you to billing."),
        ("b", "Thank you for holding, this is Sam from the billing team, how can I help you?"),
        ("c", "I was charged twice."),
        ("b", "Can I have your account number?"),
    ))
    assert decision.roles == {"a": "agent", "b": "agent", "c": "customer"}


def test_without_cues_roles_stay_unknown_rather_than_guessed():
    decision = CLASSIFIER.decide(utterances(("a", "Okay."), ("b", "Right."), ("a", "Sure.")))
    assert set(decision.roles.values()) == {"unknown"} and not decision.complete
    assert decision.confidence < load_role_cues().threshold


def test_role_cue_file_errors_name_the_fix(tmp_path):
    bad = tmp_path / "roles.toml"
    bad.write_text(DEFAULT_ROLE_CUES.read_text().replace('role = "customer"', 'role = "boss"', 1))
    with pytest.raises(RubricError, match="Fix:"):
        load_role_cues(bad)
    bad.write_text(DEFAULT_ROLE_CUES.read_text().replace("threshold = 0.8", "threshold = 1.5"))
    with pytest.raises(RubricError, match="threshold"):
        load_role_cues(bad)
