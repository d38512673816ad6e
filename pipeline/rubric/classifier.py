"""A statistical second opinion beside the patterns, for behaviours with too many wordings for them.

One logistic regression per label over word 1-2-grams and character 3-5-grams (scikit-learn),
trained from the `dev` rows of a labelled set in the format of pipeline/rubric/devset.jsonl
when the annotator first loads it (seconds; then kept in a cache folder, see `trained`): no
weights shipped or downloaded. A rubric
turns it on with a `[classifier]` table (see the README; the default rubric has one); an
utterance it scores at or above the threshold for a label, and where no pattern found it, gets a
hit on its likeliest sentence: `<label>.classifier`, which criteria read like any hit of that
label, or, where the rubric names a pattern rule id as the target, a hit of that rule (criteria
that read one rule, such as next steps' elements, then count it). The evidence is the sentence,
its probability and the n-grams that weighed most for it (`callqa explain`).

With `encoder` above 0 each probability mixes in that share of a fine-tuned sentence encoder's (encoder.py), which
reads the behaviour where the n-grams read wording.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from pipeline.errors import RubricError

RULE_SUFFIX = "classifier"
# A rubric example counts as this many rows of the set: enough that the tests can hold the classifier to the counterexamples,
# few enough not to outweigh the set (held-out F1, data/rubric_devset/README.md: weight 1, 2, 3 alike, 5 cost pitch recall;
# on author t, trained on 6,081 dev rows: 0.900 at 2, 0.901 at 3, which holds three more counterexamples)
EXAMPLE_WEIGHT = 3.0
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")  # where the annotator's sentencizer splits, near enough for short examples


@dataclass(frozen=True)
class TrainingExample:
    """A rubric example: a positive of some targets, a negative of others, and no evidence for the rest."""

    text: str
    positive: frozenset[str] = frozenset()
    negative: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClassifierConfig:
    data: Path  # a labelled set; rows with split "dev" train
    labels: Mapping[str, str]  # label in the set -> rubric label ("pitch") or pattern rule id ("opening.company") it gives
    threshold: float = 0.5
    min_words: int = 6  # shorter texts (speech-to-text fragments: "What do", "And we can install next") are left to the patterns
    examples: tuple[TrainingExample, ...] = ()  # the rubric's examples and counterexamples, trained on beside the set
    veto_below: float = 0.0  # a pattern hit of a target stands down where the classifier gives it less (0: never)
    encoder: float = 0.0  # the fine-tuned encoder's share of each probability, the n-grams' the rest (0: n-grams alone)


@dataclass(frozen=True)
class Verdict:
    """The classifier on one text: the targets it gives, each with its probability and the index of the sentence it is
    likeliest in, and the targets it denies (probability under veto_below: their pattern hits stand down)."""

    given: Mapping[str, tuple[float, int]] = field(default_factory=dict)
    denied: Mapping[str, float] = field(default_factory=dict)


class LabelClassifier:
    def __init__(self, config: ClassifierConfig, rows: Sequence[dict]):
        """Trained on `rows`, the set's dev rows (`dev_rows(config.data)`), and the config's examples."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts = [row["text"] for row in rows]
        examples = _with_counterexample_sentences(config.examples)
        self.config = config
        self.vectorizers = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2))
        for vectorizer in self.vectorizers:
            vectorizer.fit(texts + [e.text for e in examples])
        x = self._features(texts + [e.text for e in examples])
        self.targets: list[str] = []
        self.roles: dict[str, frozenset[str] | None] = {}  # speakers whose rows carried the label (None: rows without roles)
        columns, biases = [], []
        for set_label, target in config.labels.items():
            gold = [set_label in row["labels"] for row in rows]
            if not any(gold) or all(gold):
                raise RubricError(f"{config.data}: classifier label {set_label!r} needs dev rows with and without it, "
                                  f"{sum(gold)} of {len(rows)} have it. Fix: label more dev rows or drop it from [classifier] labels.")
            carriers = {row.get("role") for row in rows if set_label in row["labels"]}
            self.roles[target] = None if None in carriers else frozenset(carriers)
            gold += [target in e.positive for e in examples]
            weight = [1.0] * len(rows) + [EXAMPLE_WEIGHT * bool({target} & (e.positive | e.negative)) for e in examples]
            # C and class weights as measured in data/rubric_devset/classifier_experiment.py on dev rows
            model = LogisticRegression(C=10, class_weight="balanced", max_iter=2000).fit(x, gold, sample_weight=weight)
            self.targets.append(target)
            columns.append(model.coef_[0])
            biases.append(model.intercept_[0])
        # all targets' models as one matrix: a call's utterances are scored in one product, not a scikit-learn call per
        # label (whose fixed cost was half the classifier's time: 6.8 -> 3.4 ms for a call of 40 utterances)
        self.weights = np.stack(columns, axis=1)
        self.biases = np.array(biases)
        self.encoder = None  # an EncoderClassifier, attached by `trained` (kept out of the pickle: it has its own cache)

    def _features(self, texts: Sequence[str]):
        import scipy.sparse

        return scipy.sparse.hstack([v.transform(texts) for v in self.vectorizers], format="csr")

    def probability_matrix(self, texts: Sequence[str], roles: Sequence[str | None] | None = None) -> np.ndarray:
        """Texts x targets (in the order of `targets`): the logistic regressions' probabilities, mixed with the
        encoder's where the rubric has one (its share: `encoder`)."""
        ngrams = self.ngram_matrix(texts)
        if self.encoder is None:
            return ngrams
        share = self.config.encoder
        return (1 - share) * ngrams + share * self.encoder_matrix(texts, roles)

    def ngram_matrix(self, texts: Sequence[str]) -> np.ndarray:
        return 1 / (1 + np.exp(-(self._features(texts) @ self.weights + self.biases)))

    def encoder_matrix(self, texts: Sequence[str], roles: Sequence[str | None] | None = None) -> np.ndarray:
        """The encoder's probabilities of the targets (it learnt the set's labels: the columns the rubric maps)."""
        columns = [self.encoder.labels.index(label) for label in self.config.labels]
        return self.encoder.probability_matrix(texts, roles)[:, columns]

    def probabilities(self, texts: Sequence[str], roles: Sequence[str | None] | None = None) -> list[dict[str, float]]:
        """Per text, each target's probability."""
        return [dict(zip(self.targets, map(float, row), strict=True)) for row in self.probability_matrix(texts, roles)]

    def decide(self, texts: Sequence[str], sentences: Sequence[Sequence[str]],
               roles: Sequence[str] | None = None) -> list[Verdict]:
        """Per text, what the classifier gives and denies (see Verdict). A text's probability is the highest of the
        whole text's and each of its sentences' (a pitch in one sentence of a long turn is not diluted by the rest).
        Texts under min_words are left to the patterns, and a text is only judged on targets its speaker's role
        carried in training (an agent's pitch is not looked for in what customers say)."""
        everyone = np.ones(len(self.targets), bool)
        allowed = [everyone] * len(texts) if roles is None else [self._allowed(role) for role in roles]
        judged = [i for i, text in enumerate(texts) if len(text.split()) >= self.config.min_words and allowed[i].any()]
        verdicts = [Verdict() for _ in texts]
        if not judged:
            return verdicts
        parts = [[texts[i], *(sentences[i] if len(sentences[i]) > 1 else ())] for i in judged]
        part_roles = None if roles is None else [roles[i] for i, text_parts in zip(judged, parts, strict=True) for _ in text_parts]
        flat = self.probability_matrix([part for text_parts in parts for part in text_parts], part_roles)
        at = 0
        for i, text_parts in zip(judged, parts, strict=True):
            whole, by_sentence = flat[at], flat[at + 1:at + len(text_parts)] if len(text_parts) > 1 else flat[at:at + 1]
            at += len(text_parts)
            best = np.maximum(whole, by_sentence.max(axis=0))
            given = {self.targets[k]: (float(best[k]), int(by_sentence[:, k].argmax()))
                     for k in np.flatnonzero((best >= self.config.threshold) & allowed[i])}
            denied = {self.targets[k]: float(best[k]) for k in np.flatnonzero((best < self.config.veto_below) & allowed[i])}
            verdicts[i] = Verdict(given, denied)
        return verdicts

    def _allowed(self, role: str) -> np.ndarray:
        return np.array([carriers is None or role in carriers for carriers in self.roles.values()])

    def strongest_ngrams(self, text: str, target: str, most: int = 3) -> list[str]:
        """The n-grams of `text` that pushed `target`'s probability up the most."""
        x = self._features([text]).tocoo()
        weights = self.weights[:, self.targets.index(target)]
        names = np.concatenate([v.get_feature_names_out() for v in self.vectorizers])
        pushed = sorted(((v * weights[j], names[j]) for j, v in zip(x.col, x.data, strict=True) if v * weights[j] > 0), reverse=True)
        return [str(name) for _, name in pushed[:most]]


def _with_counterexample_sentences(examples: Sequence[TrainingExample]) -> list[TrainingExample]:
    """The examples, plus each sentence of a counterexample of several sentences as a negative of its own: `decide`
    judges every sentence alone ("Nobody told you about the fee? I'm sorry." must not be blame, so neither may its
    first sentence)."""
    parts = []
    for e in examples:
        sentences = SENTENCE_END.split(e.text)
        if e.negative and not e.positive and len(sentences) > 1:
            parts += [TrainingExample(sentence, negative=e.negative) for sentence in sentences]
    return [*examples, *parts]


def dev_rows(data: Path) -> list[dict]:
    """The set's rows the models learn from; the cache keys hold these alone, so that adding test rows does not train
    the same models again (the encoder: half an hour)."""
    return [row for line in data.read_text().splitlines() if line.strip() and (row := json.loads(line)).get("split") == "dev"]


def cache_dir() -> Path:
    """Where trained classifiers are kept between runs: $CALLQA_CACHE, else $XDG_CACHE_HOME/callqa, else ~/.cache/callqa."""
    if os.environ.get("CALLQA_CACHE"):
        return Path(os.environ["CALLQA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "callqa"


def trained(config: ClassifierConfig) -> LabelClassifier:
    """The classifier for `config`, from the cache when the same data, labels, trainer and scikit-learn trained it
    before (training takes seconds; a run, an `explain` and every worker process would pay them), else trained now
    and cached. The cache is only a shortcut: an unreadable or unwritable one means training every time. The encoder,
    where the rubric mixes one in, comes from its own cache the same way (fine-tuned the first time: minutes)."""
    # this module's source too: a changed trainer (a new attribute, other features) must not load an old model
    examples = [(e.text, sorted(e.positive), sorted(e.negative)) for e in config.examples]  # sets print in any order
    rows = dev_rows(config.data)
    key = hashlib.sha256(repr((rows, sorted(config.labels.items()), examples, Path(__file__).read_bytes(),
                               version("callqa"), version("scikit-learn"))).encode()).hexdigest()[:24]
    path = cache_dir() / f"classifier-{key}.pickle"
    try:
        classifier = pickle.loads(path.read_bytes())  # written by this function only, in the user's own cache folder
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        classifier = LabelClassifier(config, rows)
        write_atomically(path, pickle.dumps(classifier))
    classifier.config = config  # threshold and min_words do not change the training: the newest settings apply
    classifier.encoder = _fine_tuned_encoder(config, rows) if config.encoder else None
    return classifier


def _fine_tuned_encoder(config: ClassifierConfig, rows: Sequence[dict]):
    """The encoder for `config`'s set and examples; while it is fine-tuned (the first time only), a line on stderr at
    every tenth of the way (plain lines: the CLI's own progress bar may be on screen, and cron logs keep them)."""
    from pipeline.rubric.encoder import fine_tuned

    started, shown = time.monotonic(), set()

    def report(done: int, total: int) -> None:
        if (tenth := 10 * done // total) not in shown:
            shown.add(tenth)
            left = f"about {(time.monotonic() - started) / done * (total - done) / 60:.0f} min left" if tenth else f"{total} steps"
            print(f"callqa: fine-tuning the rubric's encoder on {config.data.name} and the rubric's examples (once; kept in "
                  f"{cache_dir()}): {10 * tenth}%, {left}", file=sys.stderr, flush=True)

    return fine_tuned(rows, cache_dir(), report, encoder_examples(config))


def encoder_examples(config: ClassifierConfig) -> list[tuple[str, frozenset[str], frozenset[str]]]:
    """The rubric's examples in the set's labels, as the encoder learns them: text, labels it has, labels it has not."""
    set_label = {target: label for label, target in config.labels.items()}
    return [(e.text, frozenset(set_label[t] for t in e.positive if t in set_label), frozenset(set_label[t] for t in e.negative if t in set_label))
            for e in _with_counterexample_sentences(config.examples)]


def write_atomically(path: Path, data: bytes) -> None:
    """Best effort: a cache that cannot be written only means training again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
