"""The optional classifier beside the patterns: trained from the dev rows of a labelled set when the annotator
loads, its hits read like any pattern hit, its configuration validated like the rest of the rubric."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from pathlib import Path

import pytest

from pipeline.errors import RubricError
from pipeline.explain import explain_text
from pipeline.records import Call
from pipeline.rubric import DEFAULT_RUBRIC, load_rubric
from pipeline.rubric.classifier import LabelClassifier, TrainingExample, Verdict, _with_counterexample_sentences, trained
from pipeline.runner import rubric_key
from pipeline.stages.score import Annotation, Annotator, Hit, _with_model_hits, score_call
from tests.stages.test_score import conversation

EXAMPLE = DEFAULT_RUBRIC
# not in the set, and no pitch pattern fires on it. (It was "Honestly our clinics get a lot out of the scheduling piece,
# it pretty much runs itself.", which a customer could say of their own clinics: 0.68 after the set's eighth wave.)
UNPATTERNED_PITCH = "Our app sends the reminders for you, so your staff never has to chase anyone."


@pytest.fixture(scope="module")
def modelled():
    rubric = load_rubric(EXAMPLE)
    return rubric, Annotator(rubric)


def test_the_example_rubric_trains_on_the_sets_dev_rows(modelled):
    rubric, annotator = modelled
    assert rubric.classifier.data.name == "devset.jsonl"
    assert set(annotator.classifier.targets) == set(rubric.classifier.labels.values())


def test_a_model_hit_covers_the_utterance_where_no_pattern_fires(modelled, tmp_path):
    patterns_only = tmp_path / "patterns_only.toml"
    patterns_only.write_text('extends = "default"\nclassifier = false\n')
    assert "pitch" not in Annotator(load_rubric(patterns_only)).annotate([UNPATTERNED_PITCH])[0].labels()
    hits = modelled[1].annotate([UNPATTERNED_PITCH, "Okay, one moment."])
    assert [(h.rule_id, h.text) for h in hits[0].hits if h.label == "pitch"] == [("pitch.classifier", UNPATTERNED_PITCH)]
    assert not hits[1].hits


def test_a_model_hit_points_at_the_likeliest_sentence(modelled):
    before = "Okay, let me pull that up. "  # with it, the whole turn's probability of a pitch is below the threshold
    assert modelled[1].classifier.probabilities([before + UNPATTERNED_PITCH])[0]["pitch"] < modelled[0].classifier.threshold
    [hit] = [h for h in modelled[1].annotate([before + UNPATTERNED_PITCH])[0].hits if h.label == "pitch"]
    assert (hit.text, hit.start_char, hit.sentence_idx) == (UNPATTERNED_PITCH, len(before), 1)
    assert hit.probability >= 0.5


def test_a_pattern_hit_of_the_label_comes_first(modelled):
    hits = modelled[1].annotate(["We offer a premium plan with unlimited data for thirty dollars a month."])[0].hits
    pitch = [h.rule_id for h in hits if h.label == "pitch"]
    assert pitch and "pitch.classifier" not in pitch


def test_explain_shows_the_probability_and_the_strongest_ngrams(modelled):
    rubric, annotator = modelled
    text = explain_text(UNPATTERNED_PITCH, rubric, annotator)
    assert "pitch.classifier" in text
    line = next(line for line in text.splitlines() if line.strip().startswith("pitch ") and "strongest n-grams" in line)
    assert float(line.split()[1].rstrip(";")) >= rubric.classifier.threshold


def _rubric(folder: Path, table: str, rows: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        (folder / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = folder / "rubric.toml"
    path.write_text(f'extends = "default"\n\n[classifier]\n{table}\n')
    return path


ROWS = [{"split": "dev", "text": t, "labels": labels} for t, labels in [
    ("our plan includes free calls", ["pitch"]), ("we have a great bundle for you", ["pitch"]),
    ("okay one moment please", []), ("let me check your account", []),
]]


@pytest.mark.parametrize(("table", "where"), [
    ('data = "absent.jsonl"\nlabels = { pitch = "pitch" }', "classifier.data"),
    ('data = "set.jsonl"\nlabels = { pitch = "pitches" }', "classifier.labels"),
    ('data = "set.jsonl"', "classifier.labels"),
    ('data = "set.jsonl"\nlabels = { pitch = "pitch", upsell = "pitch" }', "classifier.labels"),
    ('data = "set.jsonl"\nlabels = { pitch = "pitch" }\nthreshold = 1.5', "classifier.threshold"),
    ('data = "set.jsonl"\nlabels = { pitch = "pitch" }\nmodel = "bert"', "classifier"),
    ('data = "set.jsonl"\nlabels = { pitch = "pitch" }\nencoder = 1.5', "classifier.encoder"),
    ('data = "set.jsonl"\nlabels = { pitch = "pitch" }\nencoder = true', "classifier.encoder"),
])
def test_classifier_table_errors_name_the_place_and_the_fix(tmp_path, table, where):
    with pytest.raises(RubricError, match=rf"rubric.toml: {where}: .*Fix:"):
        load_rubric(_rubric(tmp_path, table, ROWS))


def test_a_label_without_dev_positives_fails_when_the_annotator_is_built(tmp_path):
    rows = [dict(r, split="test") if r["labels"] else r for r in ROWS]  # the positives are test rows: never trained on
    rubric = load_rubric(_rubric(tmp_path, 'data = "set.jsonl"\nlabels = { pitch = "pitch" }', rows))
    with pytest.raises(RubricError, match="needs dev rows with and without it, 0 of 2"):
        Annotator(rubric)


def test_changed_training_data_rescores(tmp_path):
    table = 'data = "../data/set.jsonl"\nlabels = { pitch = "pitch" }'
    _rubric(tmp_path / "data", table, ROWS)
    path = _rubric(tmp_path / "rubric", table)
    before = rubric_key(load_rubric(path))
    (tmp_path / "data" / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]))
    assert rubric_key(load_rubric(path)) != before


COMPANY_ROWS = [{"split": "dev", "text": t, "labels": labels} for t, labels in [
    ("thanks for calling northwind dental this is sam", ["company"]), ("you have reached northwind dental billing", ["company"]),
    ("okay one moment please", []), ("let me check your account", []),
]]
NAMED_MID_CALL = "so northwind dental billing is where you are now"  # no opening.company pattern fires on it


@pytest.fixture(scope="module")
def company_modelled(tmp_path_factory):
    rubric = load_rubric(_rubric(tmp_path_factory.mktemp("company"), 'data = "set.jsonl"\nlabels = { company = "opening.company" }',
                                 COMPANY_ROWS))
    return rubric, Annotator(rubric)


def test_a_rule_id_target_gives_a_hit_of_that_rule_which_its_criterion_counts(company_modelled):
    rubric, annotator = company_modelled
    utterances = conversation(("agent", NAMED_MID_CALL))
    call = Call("c1", "x.wav", "audio", 60.0, 2, 16000)
    _, _, findings, _ = score_call(call, utterances, [], rubric, annotator)
    company = [f for f in findings if f.criterion == "opening" and f.rule_id == "opening.company"]
    assert [(f.kind, f.text) for f in company] == [("hit", NAMED_MID_CALL)]
    assert company[0].detail.startswith("classifier, probability 0.")
    assert not [f for f in findings if f.kind == "miss" and f.rule_id == "opening.company"]


def test_texts_shorter_than_min_words_are_left_to_the_patterns(company_modelled):
    _, annotator = company_modelled
    assert annotator.classifier.probabilities(["northwind dental"])[0]["opening.company"] >= 0.5
    assert annotator.classifier.config.min_words == 6
    assert annotator.annotate(["northwind dental"])[0].hits == ()


@pytest.mark.parametrize(("table", "where"), [
    ('data = "set.jsonl"\nlabels = { company = "opening.companies" }', "classifier.labels"),
    ('data = "set.jsonl"\nlabels = { company = "opening.company" }\nmin_words = 0', "classifier.min_words"),
])
def test_rule_id_targets_and_min_words_are_validated(tmp_path, table, where):
    with pytest.raises(RubricError, match=rf"rubric.toml: {where}: .*Fix:"):
        load_rubric(_rubric(tmp_path, table, COMPANY_ROWS))


def test_a_trained_classifier_is_cached_and_a_broken_cache_only_means_training(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLQA_CACHE", str(tmp_path / "cache"))
    config = load_rubric(_rubric(tmp_path / "r", 'data = "set.jsonl"\nlabels = { pitch = "pitch" }', ROWS)).classifier
    first = trained(config)
    [cached] = (tmp_path / "cache").glob("classifier-*.pickle")
    with monkeypatch.context() as m:
        m.setattr(LabelClassifier, "__init__", lambda *_: pytest.fail("trained again although it was cached"))
        again = trained(dataclasses.replace(config, threshold=0.9))
        with config.data.open("a") as f:  # a test row is not trained on: the cached model stands
            f.write(json.dumps({"split": "test", "text": "we also sell routers", "labels": ["pitch"]}) + "\n")
        assert trained(config).probabilities(["okay"]) == first.probabilities(["okay"])
    assert again.config.threshold == 0.9  # threshold and min_words come from the rubric, not the cache
    assert again.probabilities(["our plan includes free texts"]) == first.probabilities(["our plan includes free texts"])
    cached.write_bytes(b"half a pickle")
    assert trained(config).probabilities(["okay"]) == first.probabilities(["okay"])
    assert pickle.loads(cached.read_bytes()).targets == first.targets  # rewritten whole
    monkeypatch.setenv("CALLQA_CACHE", str(cached))  # a file where the folder should be: nothing can be written
    assert trained(config).probabilities(["okay"]) == first.probabilities(["okay"])
    assert not list(tmp_path.rglob(".tmp-*"))


def test_classifier_false_turns_off_the_base_rubrics_classifier(tmp_path):
    path = tmp_path / "patterns_only.toml"
    path.write_text(f'extends = "{EXAMPLE}"\nclassifier = false\n')
    assert load_rubric(EXAMPLE).classifier is not None
    assert load_rubric(path).classifier is None
    path.write_text(f'extends = "{EXAMPLE}"\nclassifier = "off"\n')
    with pytest.raises(RubricError, match="classifier: .*or false.*Fix: .*classifier = false"):
        load_rubric(path)


def test_the_rubrics_examples_train_the_targets_they_speak_to():
    examples = {e.text: e for e in load_rubric().classifier.examples}
    assert examples["I'll keep it short."].negative == {"ownership", "deflection"}  # both sides of the ownership criterion
    action = [e for e in examples.values() if "next_steps.customer_action" in e.positive]  # a rule id target
    assert action and all(not e.negative for e in action)
    assert not [e for e in examples.values() if e.positive & e.negative]


def test_a_model_hit_stands_down_where_its_rules_unless_in_sentence_fired(modelled, tmp_path):
    # "I can help with that." shares its n-grams with "can't help with that one": the classifier says deflection
    sentences = list(modelled[1].nlp("I can help with that. They handle refunds.").sents)
    ownership = Hit("ownership.ill_take_care", "ownership", "I can help with that", 0, 20, 0)
    annotation = Annotation((ownership,), (5, 3))
    rules = {"deflection.classifier": {"unless_in_sentence": ["ownership", "escalation"]}}
    beside_ownership = _with_model_hits(annotation, Verdict({"deflection": (0.9, 0)}), sentences, rules)
    assert [h.rule_id for h in beside_ownership.hits] == ["ownership.ill_take_care"]
    elsewhere = _with_model_hits(annotation, Verdict({"deflection": (0.9, 1)}), sentences, rules)
    assert [(h.rule_id, h.text) for h in elsewhere.hits][1:] == [("deflection.classifier", "They handle refunds.")]
    assert "deflection" not in modelled[1].annotate(["I can help with that."], ["agent"])[0].labels()
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "default"\n[rules."deflection.classifier"]\nunless_negated = true\n')
    with pytest.raises(RubricError, match='rules."deflection.classifier".*unless_in_sentence alone'):
        load_rubric(mine)


# "Skyline Realty" is a name, but the landlord's: the company pattern fires, the classifier reads the whole turn. One
# of the default rubric's counterexamples, so that the test is of the veto, not of how one fine-tuning generalizes
LANDLORD = "Skyline Realty is the landlord, they manage the building for us."


def test_a_pattern_hit_the_classifier_denies_stands_down(modelled):
    rubric, annotator = modelled
    annotation = annotator.annotate([LANDLORD], ["agent"])[0]
    assert "opening.company" not in {h.rule_id for h in annotation.hits}
    assert [h.rule_id for h in annotation.vetoed] == ["opening.company"]
    said = re.search(r"on 'Skyline Realty is' stood down: the classifier gives opening.company ([\d.]+), under veto_below",
                     explain_text(LANDLORD, rubric, annotator))
    assert said and float(said.group(1)) < rubric.classifier.veto_below
    keep_all = dataclasses.replace(rubric, classifier=dataclasses.replace(rubric.classifier, veto_below=0.0))
    kept = Annotator(keep_all).annotate([LANDLORD], ["agent"])[0]
    assert "opening.company" in {h.rule_id for h in kept.hits} and not kept.vetoed


def test_a_model_hit_does_not_overrule_a_pattern_its_constraints_refused(modelled):
    sentences = list(modelled[1].nlp("That's not what we agreed. Just to recap, Tuesday at ten.").sents)
    refused_recap = Annotation((), (5, 6), refused=frozenset({(0, "next_steps.recap")}))
    there = _with_model_hits(refused_recap, Verdict({"next_steps.recap": (0.89, 0)}), sentences, {})
    assert there.hits == ()
    elsewhere = _with_model_hits(refused_recap, Verdict({"next_steps.recap": (0.89, 1)}), sentences, {})
    assert [h.rule_id for h in elsewhere.hits] == ["next_steps.recap"]


def test_a_denied_target_removes_its_hits_by_label_or_rule_id(modelled):
    sentences = list(modelled[1].nlp("Our plan is cheaper. Please sign here.").sents)
    pitch = Hit("pitch.our_offering", "pitch", "Our plan", 0, 8, 0)
    action = Hit("next_steps.customer_action", "next_steps", "Please sign", 21, 32, 1)
    annotation = Annotation((pitch, action), (4, 3))
    assert _with_model_hits(annotation, Verdict(denied={"pitch": 0.02}), sentences, {}).hits == (action,)
    assert _with_model_hits(annotation, Verdict(denied={"next_steps.customer_action": 0.02}), sentences, {}).hits == (pitch,)


@pytest.mark.parametrize("veto", ["0.7", "-0.1", "true"])
def test_veto_below_must_be_a_probability_under_the_threshold(tmp_path, veto):
    with pytest.raises(RubricError, match=r"rubric.toml: classifier.veto_below: .*Fix:"):
        load_rubric(_rubric(tmp_path, f'data = "set.jsonl"\nlabels = {{ pitch = "pitch" }}\nthreshold = 0.7\nveto_below = {veto}', ROWS))


def test_each_sentence_of_a_counterexample_trains_as_a_negative_of_its_own():
    refused = TrainingExample("Nobody told you about the fee? I'm sorry.", negative=frozenset({"blame"}))
    shown = TrainingExample("Calm down. I told you twice.", positive=frozenset({"blame"}))
    negatives = {e.text: e.negative for e in _with_counterexample_sentences([refused, shown]) if not e.positive}
    assert negatives == {refused.text: {"blame"}, "Nobody told you about the fee?": {"blame"}, "I'm sorry.": {"blame"}}


def test_removing_a_criterion_drops_its_classifier_target(tmp_path):
    path = tmp_path / "no_relationships.toml"
    path.write_text('extends = "default"\nremove = ["relationships"]\n')
    targets = set(load_rubric(path).classifier.labels.values())
    assert "relationships" not in targets and "pitch" in targets
