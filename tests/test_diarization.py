from __future__ import annotations

import numpy as np
import pytest

from pipeline.diarization import DiarizeOptions, cluster, smooth
from pipeline.records import Word


def voices(n_speakers: int, per_speaker: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors scattered around one random direction per speaker, like voice embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_speakers, 64))
    truth = np.repeat(np.arange(n_speakers), per_speaker)
    embeddings = centres[truth] + 0.35 * rng.normal(size=(len(truth), 64)) * np.linalg.norm(centres, axis=1).mean() / 8
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True), truth


@pytest.mark.parametrize("method", ["spectral", "agglomerative"])
@pytest.mark.parametrize("n_speakers", [2, 3])
def test_cluster_finds_the_speaker_count_in_a_range(method, n_speakers):
    embeddings, truth = voices(n_speakers)
    labels = cluster(embeddings, DiarizeOptions(method=method, min_speakers=2, max_speakers=4))
    assert len(set(labels)) == n_speakers
    assert all(len(set(labels[truth == s])) == 1 for s in range(n_speakers))


def test_cluster_numbers_speakers_by_first_appearance():
    embeddings, _ = voices(2)
    labels = cluster(embeddings[::-1], DiarizeOptions())
    assert labels[0] == 0 and set(labels) == {0, 1}


def words_at(*starts: float) -> list[Word]:
    return [Word("c1", i, 0, "", s, s + 0.3, "w", 0.9) for i, s in enumerate(starts)]


def test_smooth_gives_a_stray_word_inside_continuous_speech_to_the_speaker():
    words = words_at(0.0, 0.35, 0.7, 1.05, 1.4)
    assert smooth([0, 0, 1, 0, 0], words, DiarizeOptions()) == [0, 0, 0, 0, 0]


def test_smooth_keeps_a_short_reply_between_pauses():
    words = words_at(0.0, 0.35, 1.5, 2.7, 3.05)  # "Is that correct?" ... "Yes." ... "Good."
    assert smooth([0, 0, 1, 0, 0], words, DiarizeOptions()) == [0, 0, 1, 0, 0]
