"""The rubric against the labelled development set (no audio): the targets hold on the dev split."""

from __future__ import annotations

import json
import sys

import pytest

from pipeline.rubric_eval import DEVSET, LABELS, TARGETS, LabelScore, evaluate, load_devset, main, predictions

sys.path.insert(0, str(DEVSET.parents[2] / "data" / "rubric_devset"))
from build import INDEPENDENT_TEST_SHARE, TEST_SHARE_BY_AUTHOR, balanced_split  # noqa: E402  (the set's own build script, beside the data)


@pytest.fixture(scope="module")
def devset(annotator):
    rows = load_devset()
    return rows, predictions(rows, annotator)


def test_devset_is_large_labelled_and_split_70_30():
    rows = load_devset()
    assert len(rows) >= 400
    assert {label for r in rows for label in r["labels"]} == set(LABELS)
    first = [r for r in rows if r["id"].startswith("u")]  # utterances.txt, split once with a fixed seed
    test_share = sum(r["split"] == "test" for r in first) / len(first)
    assert 0.28 <= test_share <= 0.32


def test_rows_added_after_the_split_are_dev_only_with_their_own_ids():
    rows = load_devset()
    added = [r for r in rows if r["id"].startswith("d")]
    assert added and all(r["split"] == "dev" and r["source"] == "lead" for r in added)
    assert len({r["id"] for r in rows}) == len(rows)


def test_independent_rows_are_split_per_author_as_built_and_the_test_split_is_30_percent_again():
    rows = load_devset()
    authors = {r["source"] for r in rows} - {"lead"}
    assert authors, "no independently written rows"
    assert {f"independent-{a}" for a in TEST_SHARE_BY_AUTHOR} <= authors
    for author in authors:
        mine = [r for r in rows if r["source"] == author]
        assert all(r["id"].startswith("i") for r in mine)
        share = TEST_SHARE_BY_AUTHOR.get(author.removeprefix("independent-"), INDEPENDENT_TEST_SHARE)
        assert share - 0.05 <= sum(r["split"] == "test" for r in mine) / len(mine) <= share + 0.05, author
    assert sum(r["split"] == "test" for r in rows) / len(rows) >= 0.3


def test_balanced_split_puts_every_label_on_both_sides():
    rows = [{"role": "agent", "labels": [label]} for label in ("pitch", "recap") for _ in range(6)]
    splits = balanced_split(rows, seed=1, test_share=0.5)
    for label in ("pitch", "recap"):
        assert sorted(s for s, r in zip(splits, rows, strict=True) if r["labels"] == [label]) == ["dev"] * 3 + ["test"] * 3


def test_every_label_meets_the_targets_on_the_dev_split(devset):
    scores, errors = evaluate(*devset, "dev")
    below = {s.label: (round(s.f1, 2), round(s.recall, 2)) for s in scores if not s.meets_targets}
    assert not below, f"below F1 {TARGETS['f1']} / recall {TARGETS['recall']}: {below}"


def test_every_label_has_positives_in_both_splits(devset):
    for split in ("dev", "test"):
        scores, _ = evaluate(*devset, split)
        assert all(s.tp + s.fn > 0 for s in scores), split


def test_source_option_scores_only_the_named_sources(capsys):
    rows = load_devset()
    named = ("independent-d", "independent-f")
    n_dev = sum(r["split"] == "dev" and r["source"] in named for r in rows)
    assert main(["--dev-only", "--source", named[0], "--source", named[1]]) == 0
    assert capsys.readouterr().out.startswith(f"{n_dev} utterances: {n_dev} dev, 0 test")
    with pytest.raises(SystemExit):
        main(["--source", "nobody"])


def test_a_split_without_rows_gets_no_column_rather_than_perfect_scores(capsys, tmp_path):
    rows = [r for r in load_devset() if r["source"] == "lead"][:40]
    test_only = tmp_path / "test_only.jsonl"
    test_only.write_text("".join(json.dumps({**r, "split": "test"}) + "\n" for r in rows))
    assert main(["--devset", str(test_only), "--json", str(tmp_path / "scores.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("40 utterances: 0 dev, 40 test")
    assert "test: macro F1" in out and "dev: macro F1" not in out and "dev P" not in out
    assert {s["split"] for s in json.loads((tmp_path / "scores.json").read_text())} == {"test"}
    with pytest.raises(SystemExit):  # nothing to score: an error, not an empty table
        main(["--devset", str(test_only), "--dev-only"])


def test_label_score_of_parallel_predictions_counts_hits_false_hits_and_misses():
    score = LabelScore.of("pitch", "dev", [True, True, False, False], [True, False, True, False])
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)
    assert score.f1 == pytest.approx(0.5)
    assert LabelScore.of("pitch", "dev", [False], [False]).f1 == 1.0  # nothing to find, nothing found
