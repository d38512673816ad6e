"""Would a statistical classifier beside the patterns generalise better? A dev-only experiment.

Trains one logistic regression per label on word and character n-grams (scikit-learn) over the
dev rows of some sources, and scores it, the rules, and "rules or classifier" on the dev rows
of the others. Test rows are never read. The rules must not have been tuned on the held-out
sources for the comparison to mean anything: run it from a checkout of the rules as they were
before those sources were added (see the README), for example

    git worktree add /tmp/round1 fd7ee1d
    cd /tmp/round1 && PYTHONPATH=. python /path/to/classifier_experiment.py \\
        --train lead independent-a independent-b independent-c \\
        --held independent-d independent-e independent-f --devset /path/to/devset.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_union

from pipeline.rubric import load_rubric
from pipeline.rubric_eval import LABELS, fires, predictions
from pipeline.stages.score import Annotator


def f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    tp, fp, fn = (predicted & gold).sum(), (predicted & ~gold).sum(), (~predicted & gold).sum()
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True, help="sources whose dev rows train the classifier")
    parser.add_argument("--held", nargs="+", required=True, help="sources whose dev rows score it")
    parser.add_argument("--devset", type=Path, default=Path(__file__).resolve().parents[2] / "pipeline" / "rubric" / "devset.jsonl")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--min-words", type=int, default=1, help="texts shorter than this get no classifier label")
    parser.add_argument("--per-sentence", action="store_true", help="a text's probability is the highest of the whole text and each sentence")
    args = parser.parse_args()
    dev = [row for line in args.devset.read_text().splitlines() if (row := json.loads(line))["split"] == "dev"]
    train = [r for r in dev if r["source"] in args.train]
    held = [r for r in dev if r["source"] in args.held]
    annotator = Annotator(load_rubric(None))
    annotations = predictions(held, annotator)
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2))
    x_train, x_held = features.fit_transform([r["text"] for r in train]), features.transform([r["text"] for r in held])
    sentences = [[s.text for s in annotator.nlp(r["text"]).sents] if args.per_sentence else [] for r in held]
    x_sentences = [features.transform(parts) if len(parts) > 1 else None for parts in sentences]
    print(f"train {len(train)} rows, held out {len(held)} rows; F1 on the held-out rows")
    print(f"{'label':22} {'rules':>6} {'clf':>6} {'either':>6}")
    totals = np.zeros(3)
    for label, (role, what) in LABELS.items():
        theirs = [i for i, r in enumerate(held) if role in ("any", r["role"])]
        # trained on every row, both roles, as pipeline/rubric/classifier.py trains (a copy: the rules' checkout predates it)
        model = LogisticRegression(C=10, class_weight="balanced", max_iter=2000)
        model.fit(x_train, [label in r["labels"] for r in train])
        long_enough = np.array([len(held[i]["text"].split()) >= args.min_words for i in theirs])
        probability = model.predict_proba(x_held[theirs])[:, 1]
        for k, i in enumerate(theirs):
            if x_sentences[i] is not None:
                probability[k] = max(probability[k], model.predict_proba(x_sentences[i])[:, 1].max())
        classified = (probability >= args.threshold) & long_enough
        ruled = np.array([fires(annotations[i], what) for i in theirs])
        gold = np.array([label in held[i]["labels"] for i in theirs])
        scores = np.array([f1(ruled, gold), f1(classified, gold), f1(ruled | classified, gold)])
        totals += scores
        print(f"{label:22} " + " ".join(f"{s:6.2f}" for s in scores))
    print(f"{'macro F1':22} " + " ".join(f"{s:6.3f}" for s in totals / len(LABELS)))


if __name__ == "__main__":
    main()
