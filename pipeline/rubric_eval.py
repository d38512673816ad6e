"""Precision, recall and F1 of the rubric's rules against the labelled development set.

`python -m pipeline.rubric_eval` (or `make eval-rubric`) annotates every utterance of
pipeline/rubric/devset.jsonl (made in data/rubric_devset/) with the rubric and compares what fires with the labels, per
label and per split (`dev`: rules are tuned on it; `test`: kept aside). No audio is needed.
A label is judged only on utterances of the role it describes (LABEL_ROLES in the devset).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.rubric import load_rubric
from pipeline.stages.score import Annotation, Annotator

DEVSET = Path(__file__).resolve().parent / "rubric" / "devset.jsonl"  # how it was made: data/rubric_devset/README.md
TARGETS = {"f1": 0.9, "recall": 0.8}
# Devset label -> (role it describes, what must fire): ("question", type), ("label", pattern label) or ("rule", rule id).
LABELS: dict[str, tuple[str, tuple[str, str]]] = {
    "question_open": ("any", ("question", "open")),
    "question_closed": ("any", ("question", "closed")),
    "challenge_question": ("agent", ("label", "challenges")),
    "relationship_question": ("agent", ("label", "relationships")),
    "acknowledgement": ("agent", ("label", "acknowledgement")),
    "empathy": ("agent", ("label", "empathy")),
    "courtesy": ("agent", ("label", "courtesy")),
    "blame_dismissive": ("agent", ("label", "blame")),
    "ownership": ("agent", ("label", "ownership")),
    "deflection": ("agent", ("label", "deflection")),
    "greeting": ("agent", ("rule", "opening.greeting")),
    "agent_name": ("agent", ("rule", "opening.agent_name")),
    "company": ("agent", ("rule", "opening.company")),
    "offer_help": ("agent", ("rule", "opening.offer_help")),
    "pitch": ("agent", ("label", "pitch")),
    "commitment_time": ("agent", ("rule", "next_steps.deadline")),
    "customer_action": ("agent", ("rule", "next_steps.customer_action")),
    "recap": ("agent", ("rule", "next_steps.recap")),
    "attendance": ("agent", ("rule", "next_steps.attendance")),
    "escalation": ("agent", ("label", "escalation")),
    "escalation_request": ("customer", ("label", "escalation_request")),
    "over_promise": ("agent", ("label", "over_promise")),
    "just_checking_in": ("agent", ("label", "checking_in")),
    "competitor_mention": ("any", ("label", "competitors")),
}


@dataclass(frozen=True)
class LabelScore:
    label: str
    split: str
    tp: int
    fp: int
    fn: int

    @classmethod
    def of(cls, label: str, split: str, predicted: Iterable[bool], gold: Iterable[bool]) -> LabelScore:
        """The counts of parallel predictions and gold labels (for scripts that score other predictions than the rubric's)."""
        pairs = list(zip(predicted, gold, strict=True))
        return cls(label, split, sum(p and g for p, g in pairs), sum(p and not g for p, g in pairs), sum(g and not p for p, g in pairs))

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def meets_targets(self) -> bool:
        return self.f1 >= TARGETS["f1"] and self.recall >= TARGETS["recall"]


def fires(annotation: Annotation, what: tuple[str, str]) -> bool:
    kind, name = what
    if kind == "question":
        return any(name in kinds for kinds in annotation.question_kinds)
    if kind == "label":
        return name in annotation.labels()
    return any(h.rule_id == name for h in annotation.hits)


def load_devset(path: Path = DEVSET) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def predictions(rows: list[dict], annotator: Annotator) -> list[Annotation]:
    return annotator.annotate([r["text"] for r in rows], [r["role"] for r in rows])


def evaluate(rows: list[dict], annotations: list[Annotation], split: str) -> tuple[list[LabelScore], list[tuple[str, str, dict]]]:
    """Per-label counts on one split, and the errors as (label, "fp"/"fn", row)."""
    scores, errors = [], []
    for label, (role, what) in LABELS.items():
        tp = fp = fn = 0
        for row, annotation in zip(rows, annotations, strict=True):
            if row["split"] != split or role not in ("any", row["role"]):
                continue
            gold, fired = label in row["labels"], fires(annotation, what)
            tp += gold and fired
            fp += fired and not gold
            fn += gold and not fired
            if gold != fired:
                errors.append((label, "fp" if fired else "fn", row))
        scores.append(LabelScore(label, split, tp, fp, fn))
    return scores, errors


def table(columns: dict[str, list[LabelScore]]) -> str:
    """Per-label scores of each split side by side (the splits scored: dev alone while tuning, none without rows)."""
    lines = [f"{'label':22} | " + " | ".join(f"{name + ' P':>6} {'R':>5} {'F1':>5} {'n':>3}" for name in columns)]
    for label_scores in zip(*columns.values(), strict=True):
        mark = lambda s: " " if s.meets_targets else "*"  # noqa: E731
        lines.append(f"{label_scores[0].label:22} | " + " | ".join(
            f"{s.precision:6.2f} {s.recall:5.2f} {s.f1:5.2f}{mark(s)}{s.tp + s.fn:3d}" for s in label_scores))
    for name, scores in columns.items():
        macro = sum(s.f1 for s in scores) / len(scores)
        missed = [s.label for s in scores if not s.meets_targets]
        lines.append(f"{name}: macro F1 {macro:.3f}; labels below target (F1 {TARGETS['f1']}, recall {TARGETS['recall']}): "
                     + (", ".join(missed) or "none"))
    lines.append("n = positive utterances; * = below target")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rubric", type=Path, default=None, help="rubric TOML (default: the bundled one)")
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--errors", action="store_true", help="list the dev split's errors (never the test split's: rules are not tuned on it)")
    parser.add_argument("--dev-only", action="store_true", help="score the dev split alone: tune with this, look at test once, at the end")
    parser.add_argument("--source", action="append", default=None,
                        help="only the rows of this source (lead, independent-a, ...; see the set's README); repeat for several")
    parser.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    args = parser.parse_args(argv)
    rows = [r for r in load_devset(args.devset) if (args.source is None or r.get("source") in args.source)
            and not (args.dev_only and r["split"] != "dev")]
    if not rows:
        parser.error(f"no {'dev ' if args.dev_only else ''}rows from sources {args.source or 'all'} in {args.devset}")
    annotations = predictions(rows, Annotator(load_rubric(args.rubric)))
    dev, dev_errors = evaluate(rows, annotations, "dev")
    test = None if args.dev_only else evaluate(rows, annotations, "test")[0]
    counts = {split: sum(r["split"] == split for r in rows) for split in ("dev", "test")}
    print(f"{len(rows)} utterances: {counts['dev']} dev, {counts['test']} test")
    # a split without rows (--source of a test-only author) is left out: its F1 of 1.00 would mean nothing
    columns = {split: scores for split, scores in (("dev", dev), ("test", test)) if scores is not None and counts[split]}
    print(table(columns))
    if args.errors:
        for label, kind, row in sorted(dev_errors, key=lambda e: e[0]):
            print(f"{label:22} {kind} [{row['role']}] {row['text']}")
    if args.json:
        payload = [{"label": s.label, "split": s.split, "precision": round(s.precision, 3), "recall": round(s.recall, 3),
                    "f1": round(s.f1, 3), "tp": s.tp, "fp": s.fp, "fn": s.fn} for scores in columns.values() for s in scores]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
