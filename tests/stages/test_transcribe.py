from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import sample_audio

from pipeline.errors import AudioError, ModelError
from pipeline.options import BUNDLED_MODEL, IngestOptions, TranscribeOptions
from pipeline.records import Call
from pipeline.stages.ingest import ingest_audio
from pipeline.stages.transcribe import (
    FasterWhisperTranscriber,
    RawWord,
    resolve_device,
    resolve_model,
    transcribe,
)

CALL = Call("c1", "c1.wav", "audio", 10.0, 2, 16000)

REPLAY = {
    0.0: [RawWord(0.5, 0.9, "Hello", 0.9), RawWord(3.0, 3.4, "help?", 0.8), RawWord(6.0, 6.2, "Sure.", 0.7)],
    1.0: [RawWord(1.0, 1.5, "Hi", 0.95), RawWord(3.0, 3.2, "yes", 0.6), RawWord(4.0, 4.5, "please", 0.85)],
}


class ReplayTranscriber:
    """Recorded words, chosen by the first sample value of the channel it is given."""

    identity = "replay"

    def __init__(self, words_by_first_sample: dict[float, list[RawWord]]):
        self.words_by_first_sample = words_by_first_sample

    def words(self, samples: np.ndarray) -> list[RawWord]:
        return list(self.words_by_first_sample.get(float(samples[0]), ()))


def _channel(first_sample: float) -> np.ndarray:
    samples = np.zeros(16_000, dtype=np.float32)
    samples[0] = first_sample
    return samples


def test_resolve_model_finds_the_bundled_model_folder():
    assert (Path(resolve_model(BUNDLED_MODEL)) / "model.bin").is_file()


def test_resolve_model_keeps_a_model_folder(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"")
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_resolve_model_rejects_a_folder_without_model_bin(tmp_path):
    with pytest.raises(ModelError, match="no model.bin"):
        resolve_model(str(tmp_path))


def test_resolve_model_passes_a_model_name_through():
    assert resolve_model("small.en") == "small.en"


@pytest.mark.parametrize(
    ("device", "compute_type", "expected"),
    [("cpu", "auto", ("cpu", "int8")), ("cuda", "auto", ("cuda", "float16")), ("cpu", "float32", ("cpu", "float32"))],
)
def test_resolve_device_picks_compute_type_for_the_device(device, compute_type, expected):
    assert resolve_device(device, compute_type) == expected


def test_unknown_model_name_raises_model_error_without_downloading():
    started = time.monotonic()
    with pytest.raises(ModelError, match="no-such-model-xyz"):
        FasterWhisperTranscriber(TranscribeOptions(model="no-such-model-xyz", device="cpu"))
    assert time.monotonic() - started < 10


def test_transcribe_merges_channels_word_by_word_in_time_order():
    words = transcribe(CALL, [_channel(0.0), _channel(1.0)], ReplayTranscriber(REPLAY))
    assert [(w.text, w.channel) for w in words] == [
        ("Hello", 0),
        ("Hi", 1),
        ("help?", 0),
        ("yes", 1),
        ("please", 1),
        ("Sure.", 0),
    ]
    assert [w.word_idx for w in words] == list(range(6))
    assert {w.call_id for w in words} == {"c1"}
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)
    assert words[1].end_s == 1.5
    assert words[1].probability == 0.95


def test_transcribe_of_one_channel_keeps_channel_zero():
    words = transcribe(CALL, [_channel(1.0)], ReplayTranscriber(REPLAY))
    assert [w.text for w in words] == ["Hi", "yes", "please"]
    assert {w.channel for w in words} == {0}


def test_transcribe_without_words_raises_audio_error():
    with pytest.raises(AudioError, match="no speech"):
        transcribe(CALL, [_channel(5.0), _channel(6.0)], ReplayTranscriber(REPLAY))


@pytest.fixture(scope="session")
def bundled_transcriber() -> FasterWhisperTranscriber:
    return FasterWhisperTranscriber(TranscribeOptions(device="cpu", cpu_threads=2, batch_size=8))


def test_bundled_model_transcribes_the_agent_channel(bundled_transcriber):
    _, (agent, _customer) = ingest_audio(sample_audio("good_call"), IngestOptions(), {})
    words = bundled_transcriber.words(agent)
    assert words
    assert all(0 <= w.start_s <= w.end_s for w in words)
    assert sum(w.start_s < w.end_s for w in words) >= 0.95 * len(words)
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)
    assert all(0.0 <= w.probability <= 1.0 for w in words)
    assert all(w.text and w.text == w.text.strip() for w in words)
    assert "help" in {w.text.strip(".,?!").lower() for w in words}
    assert bundled_transcriber.identity == f"{BUNDLED_MODEL} (cpu, int8)"
