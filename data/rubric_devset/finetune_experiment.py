"""Out of fold: does a fine-tuned sentence encoder beat the n-gram classifier beside the patterns? (December 7)

The setup of the sixth wave's threshold choice (README, "Sixth wave"): the dev rows of the new authors in two folds
(x, y, z, aa | ad, ae, af); a model trains on the earlier authors' dev rows and one fold, and scores the other fold's
rows; its probabilities are combined with the hits of a rubric whose patterns those rows did not shape. Prints macro
F1 over the 24 labels for each combination ("v.1/.7": a pattern hit stands unless the model gives its label under
0.1, and the model gives a label from 0.7, as the default rubric does). Both models judge whole turns and each of their
sentences (the highest counts), as the shipped classifier does (until December 7 the experiment judged whole turns only).

usage, from the repository root:
    python data/rubric_devset/finetune_experiment.py --patterns old.toml --model ngram|minilm|mix

old.toml holds two lines, `extends = "OLD/pipeline/rubric/default.toml"` and `classifier = false`, where OLD is a
checkout of 57dfead: the rubric before the sixth rework (today's patterns were tuned on these rows).
`--model minilm` fine-tunes all-MiniLM-L6-v2 as the default rubric's encoder is (pipeline/rubric/encoder.py: every
label of the set at once, mean pooling, one linear layer, BCE weighted by the square root of the negatives-to-positives
ratio), about 12 minutes a fold on 2 cores; `--model mix` runs both models and also their blend, with the default
rubric's encoder share, as the shipped classifier mixes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.rubric import encoder, load_rubric
from pipeline.rubric.classifier import SENTENCE_END, encoder_examples
from pipeline.rubric.encoder import _example_rows, set_labels, tuned
from pipeline.rubric_eval import LABELS, LabelScore, fires, load_devset, predictions
from pipeline.stages.score import Annotator

FOLDS = ({"x", "y", "z", "aa"}, {"ad", "ae", "af"})
SIXTH_WAVE = {"x", "y", "z", "aa", "ac", "ad", "ae", "af"}
MIN_WORDS = 6
COMBINATIONS = {"or.5": (0, .5), "or.7": (0, .7), "v.1/.5": (.1, .5), "v.1/.7": (.1, .7), "v.2/.7": (.2, .7), "v.1/.8": (.1, .8)}


def author(row: dict) -> str:
    return row["source"].removeprefix("independent-")


def ngram_probabilities(train: list[dict], scored: list[dict], labels: list[str]) -> np.ndarray:
    """The default classifier's recipe: word 1-2-grams and character 3-5-grams, one balanced logistic regression a label."""
    import scipy.sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizers = [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)]
    texts = [r["text"] for r in train]
    x = scipy.sparse.hstack([v.fit_transform(texts) for v in vectorizers], format="csr")
    x_scored = scipy.sparse.hstack([v.transform([r["text"] for r in scored]) for v in vectorizers], format="csr")
    columns = []
    for label in labels:
        model = LogisticRegression(C=10, class_weight="balanced", max_iter=2000).fit(x, [label in r["labels"] for r in train])
        columns.append(model.predict_proba(x_scored)[:, 1])
    return np.stack(columns, axis=1)


def minilm_probabilities(train: list[dict], scored: list[dict], labels: list[str], examples=(), seeds=encoder.SEEDS) -> np.ndarray:
    """The shipped encoder's fine-tuning (pipeline/rubric/encoder.py: every label of the rows at once) on `train` and
    `examples`, its probabilities of `labels` on `scored`."""
    model = tuned(train, set_labels(train), examples=examples, seeds=seeds)
    # the counterexamples the encoder still gives, each in the role it was trained in (share 0.7 fires from about 0.9)
    counter = [(row["text"], label, row["role"]) for row in _example_rows(train, examples) for label in row["weights"] if label not in row["labels"]]
    if counter:
        p = model.probability_matrix([text for text, _, _ in counter], [role for _, _, role in counter])
        given = sorted(((p[i, model.labels.index(label)], label, text) for i, (text, label, _) in enumerate(counter)), reverse=True)
        print(f"counterexamples from 0.8: {sum(q >= .8 for q, _, _ in given)} of {len(given)};", given[:5], flush=True)
    columns = [model.labels.index(label) for label in labels]
    return model.probability_matrix([r["text"] for r in scored], [r["role"] for r in scored])[:, columns]


def highest_of_parts(p: np.ndarray, n_sentences: list[int]) -> np.ndarray:
    """p's first rows are whole turns, then the sentences of each turn of several, in order: per turn, the highest."""
    best, at = p[:len(n_sentences)].copy(), len(n_sentences)
    for i, n in enumerate(n_sentences):
        if n > 1:
            best[i] = np.maximum(best[i], p[at:at + n].max(axis=0))
            at += n
    return best


def f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    return LabelScore.of("", "dev", predicted.tolist(), gold.tolist()).f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", type=Path, required=True, help="a patterns-only rubric the scored rows did not shape")
    parser.add_argument("--model", choices=("ngram", "minilm", "mix"), required=True,
                        help="mix: both, and the default rubric's blend of them (its classifier's encoder share)")
    parser.add_argument("--extra", nargs="*", default=[], help="set labels the models also give (beside the default rubric's sixteen)")
    parser.add_argument("--examples", action="store_true", help="the encoder also learns the default rubric's examples, as shipped")
    parser.add_argument("--counterexample-weight", type=float, default=encoder.TRAINING["counterexample_weight"])
    parser.add_argument("--seeds", type=int, nargs="+", default=encoder.SEEDS,
                        help="fine-tune the encoder from each of these seeds and average them, as shipped (default: %(default)s)")
    parser.add_argument("--save", type=Path, help="also write the scored rows' ids and each model's probabilities here (.npz)")
    args = parser.parse_args()
    encoder.TRAINING["counterexample_weight"] = args.counterexample_weight
    dev = [r for r in load_devset() if r["split"] == "dev"]
    earlier = [r for r in dev if author(r) not in SIXTH_WAVE]
    scored = [r for r in dev if any(author(r) in fold for fold in FOLDS)]
    config = load_rubric().classifier
    labels = list(config.labels) + args.extra  # the sixteen labels the default rubric's classifier gives, and any extra
    examples = encoder_examples(config) if args.examples else ()
    models = {"ngram": ngram_probabilities, "minilm": lambda train, scored, labels: minilm_probabilities(train, scored, labels, examples, args.seeds)}
    runs = [args.model] if args.model in models else list(models)
    names = [*runs, "mix"] if args.model == "mix" else runs
    probability = {name: np.full((len(scored), len(labels)), np.nan) for run in names for name in (run, f"{run}_whole")}
    for k, fold in enumerate(FOLDS):
        train = earlier + [r for r in dev if author(r) in FOLDS[1 - k]]
        rows = [i for i, r in enumerate(scored) if author(r) in fold]
        carriers = {label: {r["role"] for r in train if label in r["labels"]} for label in labels}
        # as the shipped classifier (classifier.decide): a turn's probability is the highest of the whole turn's and
        # each of its sentences' (the blend mixed per text first); "_whole" keeps the whole turn's alone
        sentences = [SENTENCE_END.split(scored[i]["text"]) for i in rows]
        parts = [scored[i] for i in rows] + [{"text": s, "role": scored[i]["role"]}
                                             for i, split in zip(rows, sentences, strict=True) if len(split) > 1 for s in split]
        by_part = {name: models[name](train, parts, labels) for name in runs}
        if args.model == "mix":
            by_part["mix"] = config.encoder * by_part["minilm"] + (1 - config.encoder) * by_part["ngram"]
        for name, p in by_part.items():
            probability[f"{name}_whole"][rows] = p[:len(rows)]
            probability[name][rows] = highest_of_parts(p, [len(split) for split in sentences])
        for j, label in enumerate(labels):  # as the classifier: short turns, and roles that never carried a label, unjudged
            unjudged = [i for i in rows if scored[i]["role"] not in carriers[label] or len(scored[i]["text"].split()) < MIN_WORDS]
            for p in probability.values():
                p[unjudged, j] = np.nan
    if args.save:
        np.savez(args.save, ids=[r["id"] for r in scored], labels=labels, **probability)
    annotations = predictions(scored, Annotator(load_rubric(args.patterns)))
    for name, p in probability.items():
        print(f"{name}, {len(scored)} rows: " + " ".join(f"{c}={v:.3f}" for c, v in macro_f1(scored, annotations, p, labels).items()))


def macro_f1(scored: list[dict], annotations: list, probability: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Macro F1 over the 24 labels of the patterns alone and of each combination with the model's probabilities."""
    macro = {name: [] for name in ("patterns", *COMBINATIONS)}
    for label, (role, what) in LABELS.items():
        judged = np.array([role in ("any", r["role"]) for r in scored])
        gold = np.array([label in r["labels"] for r in scored])[judged]
        hits = np.array([fires(a, what) for a in annotations])[judged]
        macro["patterns"].append(f1(hits, gold))
        p = probability[judged, labels.index(label)] if label in labels else np.full(len(gold), np.nan)
        for name, (veto, threshold) in COMBINATIONS.items():
            macro[name].append(f1((hits & (np.isnan(p) | (p >= veto))) | (np.nan_to_num(p) >= threshold), gold))
    return {name: float(np.mean(v)) for name, v in macro.items()}


if __name__ == "__main__":
    main()
