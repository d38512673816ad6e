"""The rubric matcher finds exactly what spaCy's SpanRuler finds, while running each token pattern
only on docs that contain one of its required words."""

from __future__ import annotations

import json

import pytest

from pipeline.rubric.matching import RubricMatcher, trigger_words
from pipeline.rubric_eval import DEVSET
from tests.conftest import SAMPLE_DIR, load_script


@pytest.mark.parametrize(("pattern", "expected"), [
    ([{"LOWER": "i"}, {"LOWER": "will"}], {"i"}),
    ([{"LOWER": {"IN": ["We", "our", "us"]}}, {"LOWER": {"IN": ["offer", "offers"]}}], {"offer", "offers"}),  # no stop words
    ([{"LOWER": "send"}, {"LOWER": {"IN": ["a", "the"]}}, {"LOWER": {"IN": ["form", "link"]}}], {"send"}),  # then the smallest
    ([{"LOWER": "so", "OP": "?"}, {"LOWER": {"IN": ["send", "email"]}}], {"send", "email"}),
    ([{"IS_TITLE": True}, {"LOWER": "speaking"}], {"speaking"}),
    ([{"LOWER": "the", "OP": "{0,2}"}, {"ORTH": "Plus", "OP": "{1,2}"}], {"plus"}),
    ([{"NORM": "will"}, {"IS_TITLE": True}], {"will"}),  # looked up among the doc's norms too ("'ll" -> "will")
    ([{"LOWER": "i"}, {"NORM": {"IN": ["will", "shall"]}}, {"LOWER": "fix"}], {"fix"}),
    ([{"LOWER": {"NOT_IN": ["a"]}}, {"LIKE_NUM": True}], None),
    ([{"LOWER": "not", "OP": "!"}, {"IS_ALPHA": True, "OP": "+"}], None),
])
def test_trigger_words_come_from_a_token_the_pattern_cannot_skip(pattern, expected):
    words = trigger_words(pattern)
    assert (set(words) if words is not None else None) == expected


@pytest.fixture(scope="module")
def span_ruler(annotator, rubric):
    """spaCy's own SpanRuler over the same pipeline and patterns, as the reference."""
    nlp = annotator.nlp
    ruler = nlp.add_pipe("span_ruler", name="reference", config={"spans_key": "reference", "phrase_matcher_attr": "LOWER"})
    with nlp.select_pipes(enable=[]):
        ruler.add_patterns(list(rubric.patterns))
    yield ruler
    nlp.remove_pipe("reference")


def _texts() -> list[str]:
    texts = [json.loads(line)["text"] for line in DEVSET.read_text().splitlines()]
    for script in SAMPLE_DIR.glob("*.script.json"):
        texts += [turn["text"] for turn in load_script(script.name.removesuffix(".script.json"))["turns"]]
    return texts


def test_rubric_matcher_finds_what_the_span_ruler_finds(annotator, span_ruler):
    texts = _texts()
    assert len(texts) > 1000
    differing = []
    for doc in annotator.nlp.pipe(texts, disable=["reference"]):  # tagged too, so every attribute is set
        ours = [(s.start, s.end, s.label_, s.id_) for s in annotator.matcher(doc, with_guards=True)]
        theirs = [(s.start, s.end, s.label_, s.id_) for s in span_ruler(doc).spans["reference"]]
        if ours != theirs:
            differing.append(doc.text)
    assert not differing, differing[:5]


def test_rubric_matcher_skips_groups_whose_words_are_absent(annotator):
    matcher = RubricMatcher(annotator.nlp, [
        {"label": "ownership", "id": "own.fix", "pattern": [{"LOWER": "i"}, {"LOWER": "will"}, {"LOWER": "fix"}]},
        {"label": "pitch", "id": "pitch.offer", "pattern": [{"IS_TITLE": True}, {"LOWER": "offers"}]},
        {"label": "courtesy", "id": "courtesy.thanks", "pattern": "thank you"},
    ])
    doc = annotator.nlp.make_doc("Thank you. I will fix it, and Acme offers more.")
    assert [(s.text, s.label_, s.id_) for s in matcher(doc)] == [
        ("Thank you", "courtesy", "courtesy.thanks"), ("I will fix", "ownership", "own.fix"),
        ("Acme offers", "pitch", "pitch.offer"),
    ]
    assert len(matcher.by_word) == 2 and not len(matcher.anywhere)


def test_a_pattern_keyed_by_a_norm_runs_on_the_contraction(annotator):
    matcher = RubricMatcher(annotator.nlp, [
        {"label": "ownership", "id": "own.call", "pattern": [{"LOWER": "i"}, {"NORM": "will"}, {"LOWER": "call"}]},
    ])
    assert [s.text for s in matcher(annotator.nlp.make_doc("Okay, I'll call you back."))] == ["I'll call"]


def test_guard_tokens_at_a_patterns_edges_are_context_not_evidence(annotator):
    matcher = RubricMatcher(annotator.nlp, [
        {"label": "challenges", "id": "c.problems", "pattern": [{"LOWER": {"NOT_IN": ["found", "fixed"]}}, {"LOWER": "problems"}]},
        {"label": "ownership", "id": "own.send", "pattern": [{"LOWER": "send"}, {"LOWER": "you"}, {"LOWER": {"NOT_IN": ["over"]}}]},
    ])
    doc = annotator.nlp.make_doc("What kind of problems? We fixed problems. I'll send you a copy, not send you over.")
    assert [(s.text, s.id_) for s in matcher(doc)] == [("problems", "c.problems"), ("send you", "own.send")]
    assert [s.text for s in matcher(doc, with_guards=True)] == ["of problems", "send you a"]
