"""Why a text or a stored call scored as it did: which rules fire, on which words, and how
each criterion's score and the overall score were computed."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.records import Call
from pipeline.rubric import Rubric
from pipeline.stages.score import Annotator
from pipeline.store import read_table


def _criteria_reading(rubric: Rubric) -> dict[str, list[str]]:
    """Pattern label (or, for `elements` criteria, rule id) -> the criteria that read its hits."""
    readers: dict[str, list[str]] = {}
    for c in rubric.criteria:
        for label in sorted(c.reads()):
            readers.setdefault(label, []).append(c.name)
    return readers


def explain_text(text: str, rubric: Rubric, annotator: Annotator, role: str = "agent") -> str:
    """The sentences of `text`, whether each is a question, every rule that fires and the words it fired on."""
    annotation = annotator.annotate([text], [role])[0]
    doc = annotator.nlp.make_doc(text)
    readers = _criteria_reading(rubric)
    lines = [f"text ({role}): {text}"]
    sentences = list(annotator.nlp.get_pipe("sentencizer")(doc).sents)
    for idx, sentence in enumerate(sentences):
        q = annotation.question_types[idx] if idx < len(annotation.question_types) else None
        lines.append(f"  sentence {idx + 1}: {sentence.text!r} -> " + (f"{q} question" if q else "not a question"))
    if annotation.used_syntax:
        lines.append("  (a sentence opens with an auxiliary or a wh-word without '?': spaCy's tagger decided)")
    if annotation.sentiment is not None:
        lines.append(f"  sentiment (VADER compound): {annotation.sentiment:+.3f}")
    if not annotation.hits and not annotation.vetoed:
        lines.append("  no rule fires")
    for hit in annotation.hits:
        used_by = ", ".join(readers.get(hit.rule_id, []) + readers.get(hit.label, [])) or (
            "rule constraints (a marker)" if hit.label in rubric.markers else "no criterion")
        lines.append(f"  {hit.rule_id:36} on {hit.text!r} (chars {hit.start_char}-{hit.end_char}, sentence {hit.sentence_idx + 1}); "
                     f"read by {used_by}" + (f"; constraints {dict(rubric.rules[hit.rule_id])}" if hit.rule_id in rubric.rules else ""))
    if annotation.vetoed:
        denied = annotator.classifier.decide([text], [[s.text for s in sentences]], [role])[0].denied
        for hit in annotation.vetoed:
            target = hit.rule_id if hit.rule_id in denied else hit.label
            lines.append(f"  {hit.rule_id:36} on {hit.text!r} stood down: the classifier gives {target} {denied[target]:.2f}, "
                         f"under veto_below {annotator.classifier.config.veto_below}")
    if annotator.classifier is not None:
        lines += _classifier_lines(text, annotator, role)
    return "\n".join(lines)


def _classifier_lines(text: str, annotator: Annotator, role: str) -> list[str]:
    """Each classifier label's probability (with the encoder's and the n-grams' parts where it mixes them); for those
    it gives, the n-grams that weighed most."""
    classifier = annotator.classifier
    threshold = classifier.config.threshold
    lines = [f"  classifier (a label or rule at probability >= {threshold} in texts of {classifier.config.min_words}+ words; "
             f"a pattern hit of it comes first, unless under {classifier.config.veto_below}):"]
    parts = {target: "" for target in classifier.targets}
    if classifier.encoder is not None:
        share = classifier.config.encoder
        for target, e, n in zip(classifier.targets, classifier.encoder_matrix([text], [role])[0], classifier.ngram_matrix([text])[0],
                                strict=True):
            parts[target] = f" = {share:g} x encoder {e:.2f} + {1 - share:g} x n-grams {n:.2f}"
    for target, p in sorted(classifier.probabilities([text], [role])[0].items(), key=lambda item: -item[1]):
        strongest = f"; strongest n-grams {classifier.strongest_ngrams(text, target)}" if p >= threshold else ""
        lines.append(f"    {target:26} {p:.2f}{parts[target]}{strongest}")
    return lines


def find_call(out_dir: Path, key: str) -> Call:
    """A stored call by its id, a unique prefix of it, or its source file name."""
    calls = read_table(out_dir, "calls")
    found = [c for c in calls if c.call_id == key] or [c for c in calls if c.call_id.startswith(key)] or [
        c for c in calls if Path(c.source_path).name == key]
    if len(found) != 1:
        what = "no call" if not found else f"{len(found)} calls"
        raise ConfigError(f"{what} in {out_dir} match {key!r}; give a call id (or a unique prefix) from `callqa show {out_dir}`.")
    return found[0]


def explain_call(out_dir: Path, key: str, rubric: Rubric) -> str:
    """Per criterion: its score, weight and detail, the evidence rows behind it; then the overall score's sum."""
    call = find_call(out_dir, key)
    if call.status != "scored":
        raise ConfigError(f"call {call.call_id} in {out_dir} is not scored yet; run `callqa score --out {out_dir}` first.")
    scores = [s for s in read_table(out_dir, "scores") if s.call_id == call.call_id]
    findings = [f for f in read_table(out_dir, "findings") if f.call_id == call.call_id]
    known = {c.name: c for c in rubric.criteria}
    lines = [f"call {call.call_id} ({call.source_path}), rubric {call.rubric_version}, score {call.score}"]
    for s in scores:
        criterion = known.get(s.criterion)
        score = "not judged" if s.score is None else f"{s.score:.3f}"
        verdict = "passed" if s.passed else "not passed" if s.passed is False else "-"
        lines.append(f"\n{s.criterion}: {score} x weight {s.weight} ({verdict}): {s.detail}")
        if criterion is not None:
            lines.append(f"  kind {criterion.kind}, role {criterion.role}; {criterion.description}")
            lines.append(f"  source {criterion.source}")
        for f in (f for f in findings if f.criterion == s.criterion):
            when = f"{f.start_s:7.2f}-{f.end_s:7.2f} s" if f.start_s is not None and f.end_s is not None else " " * 17
            where = f"utt {f.utterance_idx}" if f.utterance_idx is not None else "call"
            quoted = f" {f.text!r}" if f.text and f.kind != "metric" or (f.text and len(f.text) < 80) else ""
            lines.append(f"  {f.kind:6} {f.rule_id:36} {when} {where:7} {f.role or '':8}{quoted}" + (f" ({f.detail})" if f.detail else ""))
    judged = [s for s in scores if s.score is not None and s.weight > 0]
    total = sum(s.weight for s in judged)
    if total:
        terms = " + ".join(f"{s.score:.2f}x{s.weight:g}" for s in judged)
        lines.append(f"\noverall = 100 x ({terms}) / {total:g} = {100 * sum(s.score * s.weight for s in judged) / total:.1f}")
        if skipped := [s.criterion for s in scores if s.score is None]:
            lines.append(f"not judged, left out of the mean: {', '.join(skipped)}")
    return "\n".join(lines)
