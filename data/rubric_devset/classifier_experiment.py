"""Would a statistical classifier beside the patterns generalise better? A dev-only experiment.

Trains pipeline/rubric/classifier.py's classifier (one logistic regression per label, with the
rubric's own examples) on the dev rows of some sources, for every label of the set, and scores
it, the patterns alone, and "patterns or classifier" (what the scorer does) on the dev rows of
the others. Test rows are never read. The patterns must not have been tuned on the held-out
sources for the comparison to mean anything (see the README for which were which), e.g.

    python data/rubric_devset/classifier_experiment.py \\
        --train lead independent-a independent-b independent-c independent-d independent-e independent-f \\
        --held independent-g independent-i

(The first run, on authors d-f against the rules of checkout fd7ee1d, used a copy of the
classifier's settings as they were then: character 2-5-grams, whole utterances, no examples.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from pipeline.rubric import load_rubric
from pipeline.rubric.classifier import ClassifierConfig, LabelClassifier
from pipeline.rubric_eval import DEVSET, LABELS, fires, predictions
from pipeline.stages.score import Annotator

PATTERNS_ONLY = Path(__file__).with_name("patterns_only.toml")


def f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    tp, fp, fn = (predicted & gold).sum(), (predicted & ~gold).sum(), (~predicted & gold).sum()
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True, help="sources whose dev rows train the classifier")
    parser.add_argument("--held", nargs="+", required=True, help="sources whose dev rows score it")
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--min-words", type=int, default=4, help="texts shorter than this get no classifier label")
    parser.add_argument("--no-examples", action="store_true", help="train on the set's rows alone, not the rubric's examples")
    args = parser.parse_args()
    dev = [row for line in args.devset.read_text().splitlines() if (row := json.loads(line))["split"] == "dev"]
    train = [r for r in dev if r["source"] in args.train]
    held = [r for r in dev if r["source"] in args.held]
    rubric = load_rubric(PATTERNS_ONLY)
    annotator = Annotator(rubric)
    annotations = predictions(held, annotator)
    # every label of the set, aimed at a target of the same name; the rubric's examples speak to the shipped targets
    default = load_rubric().classifier
    shipped = dict(default.labels)
    examples = () if args.no_examples else tuple(
        dataclasses.replace(e, positive=frozenset(_set_labels(e.positive, shipped)), negative=frozenset(_set_labels(e.negative, shipped)))
        for e in default.examples)
    config = ClassifierConfig(args.devset, {label: label for label in LABELS}, args.threshold, args.min_words, examples)
    classifier = LabelClassifier(config, train)
    decided = classifier.decide([r["text"] for r in held], [[s.text for s in annotator.nlp(r["text"]).sents] for r in held],
                                [r["role"] for r in held])
    print(f"train {len(train)} rows, held out {len(held)} rows; F1 on the held-out rows")
    print(f"{'label':22} {'rules':>6} {'clf':>6} {'either':>6}")
    totals = np.zeros(3)
    for label, (role, what) in LABELS.items():
        theirs = [i for i, r in enumerate(held) if role in ("any", r["role"])]
        classified = np.array([label in decided[i].given for i in theirs])
        ruled = np.array([fires(annotations[i], what) for i in theirs])
        gold = np.array([label in held[i]["labels"] for i in theirs])
        scores = np.array([f1(ruled, gold), f1(classified, gold), f1(ruled | classified, gold)])
        totals += scores
        print(f"{label:22} " + " ".join(f"{s:6.2f}" for s in scores) + (" (shipped)" if label in shipped else ""))
    print(f"{'macro F1':22} " + " ".join(f"{s:6.3f}" for s in totals / len(LABELS)))


def _set_labels(targets: frozenset[str], shipped: dict[str, str]) -> list[str]:
    return [set_label for set_label, target in shipped.items() if target in targets]


if __name__ == "__main__":
    main()
