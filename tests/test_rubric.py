from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.errors import RubricError
from pipeline.rubric import DEFAULT_RUBRIC, load_rubric
from pipeline.rubric.matching import tokenizes_whole
from pipeline.stages.score import Annotator

CRITERIA = [
    "talk_ratio",
    "discovery",
    "challenges",
    "relationships",
    "acknowledgement",
    "interruptions",
    "empathy",
    "respect",
    "ownership",
    "opening",
    "next_steps",
    "closing",
    "escalation",
    "customer_sentiment",
    "checking_in",
    "over_promise",
    "competitors",
]


def test_default_rubric_has_every_criterion(rubric):
    assert [c.name for c in rubric.criteria] == CRITERIA
    assert rubric.version == "2026.11.1"
    assert "pitch" in rubric.markers and "deflection" in rubric.markers


@pytest.mark.parametrize("name", CRITERIA)
def test_default_criterion_is_described_and_cites_a_seed_essay(rubric, name):
    (criterion,) = [c for c in rubric.criteria if c.name == name]
    assert criterion.description.strip()
    assert criterion.source[:4] in {"000:", "001:", "002:", "003:", "004:"}
    assert criterion.weight > 0


def test_default_rule_ids_are_namespaced_by_label(rubric):
    assert rubric.patterns
    assert all(p["id"].startswith(p["label"] + ".") for p in rubric.patterns)
    assert "empathy.feel_the_same" in rubric.rule_ids("empathy")


@pytest.fixture
def broken(tmp_path) -> Path:
    """A writable copy of the default rubric, its patterns and the labelled set its classifier trains on."""
    shutil.copy(DEFAULT_RUBRIC, tmp_path / "rubric.toml")
    shutil.copy(DEFAULT_RUBRIC.parent / "devset.jsonl", tmp_path)
    shutil.copytree(DEFAULT_RUBRIC.parent / "patterns", tmp_path / "patterns")
    return tmp_path / "rubric.toml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def _append_pattern(folder: Path, pattern: object) -> None:
    with (folder / "patterns" / "empathy.jsonl").open("a") as f:
        f.write((pattern if isinstance(pattern, str) else json.dumps(pattern)) + "\n")


RUBRIC_EDITS = {
    "unknown-kind": (
        'kind = "count"\nrole = "agent"\nweight = 1.0\ndescription = "The agent shows empathy',
        'kind = "tally"\nrole = "agent"\nweight = 1.0\ndescription = "The agent shows empathy',
        "criteria.empathy",
    ),
    "negative-weight": (
        'weight = 1.5\ndescription = "The agent takes ownership',
        'weight = -1.5\ndescription = "The agent takes ownership',
        "criteria.ownership",
    ),
    "bad-role": ('kind = "talk_ratio"\nrole = "agent"', 'kind = "talk_ratio"\nrole = "boss"', "criteria.talk_ratio"),
    "missing-param": ("params = { band = [0.35, 0.65], band_by_team", "params = { band_by_team", "criteria.talk_ratio.params"),
    "unknown-param": (
        'params = { target = 1 }\nexamples.match = [\n    { text = "So if',
        'params = { target = 1, goal = 2 }\nexamples.match = [\n    { text = "So if',
        "criteria.acknowledgement.params",
    ),
    "missing-version": ('version = "2026.11.1"', "", "version"),
    "element-without-pattern": ('"opening.offer_help"]', '"opening.offer_hlep"]', "criteria.opening"),
    "example-rule-without-pattern": ('rules = ["empathy.apologize"]', 'rules = ["empathy.apologise"]', "criteria.empathy"),
    "missing-pattern-file": ('"patterns/empathy.jsonl"', '"patterns/empathy_v2.jsonl"', "empathy_v2.jsonl"),
    "invalid-toml": ("[criteria.talk_ratio]", "[criteria.talk_ratio", "not valid TOML"),
}


@pytest.mark.parametrize(("old", "new", "where"), RUBRIC_EDITS.values(), ids=RUBRIC_EDITS.keys())
def test_broken_rubric_raises_rubric_error_naming_file_place_and_fix(broken, old, new, where):
    _edit(broken, old, new)
    with pytest.raises(RubricError) as excinfo:
        load_rubric(broken)
    message = str(excinfo.value)
    assert str(broken) in message
    assert where in message
    assert "Fix:" in message


def test_undeclared_pitch_marker_is_named(broken):
    _edit(broken, 'pitch_marker = "pitch"', 'pitch_marker = "sales_pitch"')
    with pytest.raises(RubricError, match="pitch_marker 'sales_pitch' is not declared.*Fix:"):
        load_rubric(broken)


PATTERN_LINES = {
    "invalid-json": ('{"label": "empathy", "id": "empathy.x", "pattern": "there there"', "not valid JSON"),
    "missing-keys": ({"label": "empathy", "pattern": "there there"}, "missing ['id']"),
    "unknown-label": ({"label": "sympathy", "id": "sympathy.there", "pattern": "there there"}, "'sympathy'"),
    "not-namespaced": ({"label": "empathy", "id": "there_there", "pattern": "there there"}, "not namespaced"),
    "namespaced-by-other-label": ({"label": "empathy", "id": "ownership.there", "pattern": "there there"}, "not namespaced"),
}


@pytest.mark.parametrize(("line", "problem"), PATTERN_LINES.values(), ids=PATTERN_LINES.keys())
def test_broken_pattern_line_raises_rubric_error_naming_file_line_and_fix(broken, line, problem):
    n_lines = len((broken.parent / "patterns" / "empathy.jsonl").read_text().splitlines())
    _append_pattern(broken.parent, line)
    with pytest.raises(RubricError) as excinfo:
        load_rubric(broken)
    message = str(excinfo.value)
    assert str((broken.parent / "patterns" / "empathy.jsonl").resolve()) in message
    assert f"line {n_lines + 1}:" in message
    assert problem in message
    assert "Fix:" in message


def test_pattern_with_non_string_id_raises_rubric_error(broken):
    _append_pattern(broken.parent, {"label": "empathy", "id": 7, "pattern": "there there"})
    with pytest.raises(RubricError, match="line"):
        load_rubric(broken)


def test_nan_weight_raises_rubric_error(broken):
    _edit(broken, 'weight = 1.5\ndescription = "The agent takes ownership', 'weight = nan\ndescription = "The agent takes ownership')
    with pytest.raises(RubricError, match="criteria.ownership"):
        load_rubric(broken)


def test_missing_rubric_file_raises_rubric_error_naming_it(tmp_path):
    with pytest.raises(RubricError, match="absent.toml") as excinfo:
        load_rubric(tmp_path / "absent.toml")
    assert "--rubric" in str(excinfo.value)


def test_missing_rubric_file_message_has_fix(tmp_path):
    with pytest.raises(RubricError, match="Fix:"):
        load_rubric(tmp_path / "absent.toml")


def test_invalid_token_pattern_syntax_fails_when_the_annotator_is_built(broken):
    _append_pattern(broken.parent, {"label": "empathy", "id": "empathy.bad", "pattern": [{"LOWERX": "hi"}]})
    rubric = load_rubric(broken)
    assert "empathy.bad" in rubric.rule_ids("empathy")
    with pytest.raises(RubricError, match="not valid spaCy pattern syntax"):
        Annotator(rubric)


@pytest.mark.parametrize("token", [{"LOWER": "double-check"}, {"LOWER": {"IN": ["send", "it's"]}}, {"ORTH": "x", "LOWER": {"NOT_IN": ["team's"]}}])
def test_a_word_the_tokenizer_always_splits_fails_when_the_annotator_is_built(broken, token):
    _append_pattern(broken.parent, {"label": "empathy", "id": "empathy.split", "pattern": [token]})
    with pytest.raises(RubricError, match=r"empathy\.split: .* is never one token .*Fix: "):
        Annotator(load_rubric(broken))


def test_clitics_and_abbreviations_are_words_the_tokenizer_gives(annotator):
    tokenizer = annotator.nlp.tokenizer
    assert all(tokenizes_whole(tokenizer, w) for w in ["'ll", "'ve", "’m", "n't", "mr.", "sev-1"])
    assert not any(tokenizes_whole(tokenizer, w) for w in ["double-check", "it's", "team's", "a copy"])


def test_every_default_criterion_has_examples_or_is_measured(rubric):
    measured = {"talk_ratio", "interruptions", "customer_sentiment"}  # computed from timings or sentiment, not phrases
    for c in rubric.criteria:
        assert c.examples or c.name in measured, c.name
        assert c.counterexamples or c.name in measured, c.name


def test_extends_default_changes_only_what_it_names(tmp_path):
    mine = tmp_path / "sales.toml"
    mine.write_text(
        'extends = "default"\nversion = "sales-1"\nremove = ["relationships"]\n'
        "[criteria.talk_ratio]\nparams = { band = [0.2, 0.4] }\n"
        '[criteria.competitors]\nparams = { names = ["Globex"] }\n'
    )
    rubric = load_rubric(mine)
    default = load_rubric()
    assert rubric.version == "sales-1"
    assert "relationships" not in [c.name for c in rubric.criteria]
    talk = rubric.criterion("talk_ratio")
    assert talk.params["band"] == [0.2, 0.4] and talk.params["band_by_team"] == default.criterion("talk_ratio").params["band_by_team"]
    assert talk.weight == default.criterion("talk_ratio").weight
    assert {p["pattern"][0]["ORTH"] for p in rubric.patterns if p["id"] == "competitors.named"} == {"Globex"}
    assert rubric.rule_ids("empathy") == default.rule_ids("empathy")


def test_listed_names_match_in_the_forms_speech_to_text_writes(tmp_path):
    mine = tmp_path / "names.toml"
    mine.write_text('extends = "default"\nversion = "names-1"\nclassifier = false\n'
                    '[criteria.competitors]\nparams = { names = ["Skyline", "NorthStar", "Acme Gas", "iPhone", "T-Mobile"] }\n')
    annotate = Annotator(load_rubric(mine)).annotate
    named = ["We moved to Skyline.", "north star texted us", "northstar texted us", "The ACME GAS bill came.", "my iphone broke",
             "we were on t-mobile"]
    unnamed = ["The skyline at night is lovely.", "I phone them every week.", "Acme sells gas too."]
    found = [any(h.rule_id == "competitors.named" for h in a.hits) for a in annotate(named + unnamed)]
    assert found == [True] * len(named) + [False] * len(unnamed)


def test_extends_adds_pattern_files_relative_to_the_extending_rubric(tmp_path):
    (tmp_path / "extra.jsonl").write_text(json.dumps({"label": "empathy", "id": "empathy.rough_day", "pattern": "rough day"}) + "\n")
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "default"\npatterns = ["extra.jsonl"]\n')
    assert "empathy.rough_day" in load_rubric(mine).rule_ids("empathy")


EXTENDS_ERRORS = {
    "unknown-base": ('extends = "defualt"\n', "extends"),
    "remove-unknown": ('extends = "default"\nremove = ["empathyy"]\n', "remove"),
    "unknown-constraint": ('extends = "default"\n[rules."empathy.apologize"]\nonly_in_questions = true\n', 'rules."empathy.apologize"'),
    "constraint-label": ('extends = "default"\n[rules."empathy.apologize"]\nunless_in_turn = ["sympathy"]\n', "unless_in_turn"),
    "constraint-rule": ('extends = "default"\n[rules."empathy.apologise"]\nunless_negated = true\n', 'rules."empathy.apologise"'),
    "params-label": ('extends = "default"\n[criteria.ownership]\nparams = { negative = ["deflect"] }\n', "criteria.ownership.params.negative"),
    "no-source": ('extends = "default"\n[criteria.extra]\nkind = "count"\nweight = 1.0\nparams = { target = 1 }\n', "criteria.extra"),
}


@pytest.mark.parametrize(("text", "where"), EXTENDS_ERRORS.values(), ids=EXTENDS_ERRORS.keys())
def test_extending_rubric_errors_name_file_place_and_fix(tmp_path, text, where):
    mine = tmp_path / "mine.toml"
    mine.write_text(text)
    with pytest.raises(RubricError) as excinfo:
        load_rubric(mine)
    message = str(excinfo.value)
    assert str(mine) in message and where in message and "Fix:" in message
