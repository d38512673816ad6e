"""Speaker diarization of mono recordings: who spoke each word.

Voice activity comes from the Silero VAD that faster-whisper ships; speaker embeddings from
Resemblyzer's voice encoder (its weights ship in the PyPI package) over short sliding
windows; the windows are clustered with scikit-learn; each word takes the speaker of the
window centred nearest to it, and short runs inside one speaker's continuous speech are
smoothed away so a stray word does not flip a turn.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ModelError
from pipeline.records import Word
from pipeline.vad import speech_timestamps

SAMPLE_RATE = 16_000
FRAME_S = 0.01
EMBED_BATCH = 256  # windows per encoder pass: about 25 MB of LSTM activations


@dataclass(frozen=True)
class DiarizeOptions:
    """Embedding diarization settings.

    Attributes:
        min_speakers, max_speakers: the number of speakers to look for; with a range, the
            spectral method takes the count at the largest eigengap of the affinity's
            Laplacian, the agglomerative one the count with the best silhouette.
        method: `spectral` (on a refined affinity) or `agglomerative` (average linkage on
            cosine distance); `make eval` compares them on the sample calls.
        affinity_keep: share of each window's most similar windows kept in the spectral
            affinity (the rest set to 0), which makes the eigengap a reliable speaker count.
        windows_per_s: embedding windows (1.6 s each) per second of audio; more gives
            sharper speaker changes at more cost.
        min_speech: share of a window that must be speech (per VAD) for it to be used.
        stray_words: a run of at most this many words inside another speaker's continuous
            speech is given to that speaker.
        stray_gap_s: "continuous" means a pause of less than this on both sides of the run.
    """

    min_speakers: int = 2
    max_speakers: int = 2
    method: str = "spectral"
    affinity_keep: float = 0.1
    windows_per_s: float = 4.0
    min_speech: float = 0.5
    stray_words: int = 2
    stray_gap_s: float = 0.25


def _batches(indices: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive window indices, cut into batches of at most EMBED_BATCH."""
    runs = np.split(indices, np.flatnonzero(np.diff(indices) != 1) + 1) if len(indices) else []
    return [run[i : i + EMBED_BATCH] for run in runs for i in range(0, len(run), EMBED_BATCH)]


def mel_frames(wav: np.ndarray, first: int, last: int) -> np.ndarray:
    """Mel frames first..last-1 of Resemblyzer's `wav_to_mel_spectrogram(wav)`, computed from
    only the samples they cover (frames are centred on multiples of the hop, zero-padded at
    the ends like librosa's centred STFT), as float32 (frames, mel channels)."""
    import librosa
    from resemblyzer import hparams

    n_fft = int(hparams.sampling_rate * hparams.mel_window_length / 1000)
    hop = int(hparams.sampling_rate * hparams.mel_window_step / 1000)
    start, stop = first * hop - n_fft // 2, (last - 1) * hop + n_fft - n_fft // 2
    piece = wav[max(start, 0) : min(stop, len(wav))]
    piece = np.pad(piece, (max(-start, 0), max(stop - len(wav), 0)))
    mel = librosa.feature.melspectrogram(y=piece, sr=hparams.sampling_rate, n_fft=n_fft, hop_length=hop,
                                         n_mels=hparams.mel_n_channels, center=False)
    return mel.astype(np.float32).T


def speech_mask(samples: np.ndarray) -> np.ndarray:
    """Speech (True) per 10 ms frame, from faster-whisper's Silero VAD."""
    from faster_whisper.vad import VadOptions

    regions = speech_timestamps(samples, VadOptions(min_silence_duration_ms=300, speech_pad_ms=100))
    hop = int(SAMPLE_RATE * FRAME_S)
    mask = np.zeros(len(samples) // hop + 1, dtype=bool)
    for region in regions:  # start/end are sample indices here
        mask[region["start"] // hop : region["end"] // hop + 1] = True
    return mask


def refined_affinity(similarity: np.ndarray, keep: float) -> np.ndarray:
    """Each row keeps only its strongest similarities, then symmetrised (Wang et al., 2018)."""
    affinity = np.clip(similarity, 0.0, None)
    k = max(2, round(keep * len(affinity)))
    threshold = np.sort(affinity, axis=1)[:, -k][:, None]
    affinity = np.where(affinity >= threshold, affinity, 0.0)
    return np.maximum(affinity, affinity.T)


def eigengap_count(affinity: np.ndarray, low: int, high: int) -> int:
    """The speaker count in [low, high] after which the Laplacian's eigenvalues jump most."""
    from scipy.sparse.csgraph import laplacian

    eigenvalues = np.sort(np.linalg.eigvalsh(laplacian(affinity, normed=True)))
    gaps = np.diff(eigenvalues[: high + 1])  # gaps[n - 1]: the jump after n clusters
    return low + int(np.argmax(gaps[low - 1 : high]))


def cluster(embeddings: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    """A speaker label per embedding, numbered by first appearance."""
    from sklearn.cluster import AgglomerativeClustering, SpectralClustering
    from sklearn.metrics import silhouette_score

    similarity = np.clip(embeddings @ embeddings.T, -1.0, 1.0)
    high = min(options.max_speakers, len(embeddings) - 1)
    low = min(max(2, options.min_speakers), high)
    if high < 2:
        return np.zeros(len(embeddings), dtype=int)
    if options.method == "spectral":
        affinity = refined_affinity(similarity, options.affinity_keep)
        n = eigengap_count(affinity, low, high)
        with warnings.catch_warnings():  # well-separated voices leave the pruned graph disconnected: that is the goal
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            labels = SpectralClustering(n, affinity="precomputed", random_state=0, assign_labels="cluster_qr").fit_predict(affinity)
    else:
        distance = np.clip(1.0 - similarity, 0.0, None)
        np.fill_diagonal(distance, 0.0)
        candidates = [AgglomerativeClustering(n, metric="precomputed", linkage="average").fit_predict(distance) for n in range(low, high + 1)]
        labels = max(candidates, key=lambda labels: silhouette_score(distance, labels, metric="precomputed"))
    order = {label: rank for rank, label in enumerate(dict.fromkeys(labels))}
    return np.array([order[label] for label in labels])


def smooth(labels: list[int], words: Sequence[Word], options: DiarizeOptions) -> list[int]:
    """Give short runs inside another speaker's continuous speech to that speaker."""
    labels = list(labels)
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i))
            start = i
    for (prev_start, prev_end), (start, end), (next_start, _) in zip(runs, runs[1:], runs[2:], strict=False):
        flanked = labels[prev_start] == labels[next_start]
        continuous = (
            words[start].start_s - words[prev_end - 1].end_s < options.stray_gap_s
            and words[next_start].start_s - words[end - 1].end_s < options.stray_gap_s
        )
        if flanked and continuous and end - start <= options.stray_words:
            labels[start:end] = [labels[prev_start]] * (end - start)
    return labels


class EmbeddingDiarizer:
    """Resemblyzer embeddings of sliding windows, clustered; loads the encoder once."""

    mode = "embedding"

    def __init__(self, options: DiarizeOptions):
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise ModelError(f"mono diarization needs resemblyzer and torch ({exc}); run `make install`.") from None
        self.options = options
        self.encoder = VoiceEncoder("cpu", verbose=False)

    def for_speakers(self, bounds: tuple[int, int] | None) -> EmbeddingDiarizer:
        """The same encoder, looking for another number of speakers (a call's own hint)."""
        if bounds is None:
            return self
        other = object.__new__(EmbeddingDiarizer)
        other.encoder = self.encoder
        other.options = dataclasses.replace(self.options, min_speakers=bounds[0], max_speakers=bounds[1])
        return other

    def embed(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window centres in seconds and their embeddings, speech windows only.

        Only the windows the VAD calls speech go through the encoder, in batches of
        EMBED_BATCH, each with the mel frames of its own stretch of audio: the same embeddings
        as Resemblyzer's embed_utterance gives those windows, at a cost that follows the speech
        and a memory that does not grow with the recording (a two-hour file is 28,800 windows,
        which embed_utterance would push through the LSTM in one batch)."""
        from resemblyzer.audio import normalize_volume

        wav = normalize_volume(samples.astype(np.float32, copy=False), -30, increase_only=True)
        wav_slices, mel_slices = self.encoder.compute_partial_slices(len(wav), self.options.windows_per_s, 0.5)
        mask = speech_mask(samples)
        hop = int(SAMPLE_RATE * FRAME_S)
        speech = np.array([mask[s.start // hop : max(s.start // hop + 1, min(s.stop, len(samples)) // hop)].mean() for s in wav_slices])
        kept = np.flatnonzero(speech >= self.options.min_speech)
        centres = np.array([(wav_slices[i].start + min(wav_slices[i].stop, len(samples))) / 2 / SAMPLE_RATE for i in kept])
        batches = [self._embed_windows(wav, [mel_slices[i] for i in batch]) for batch in _batches(kept)]
        return centres, np.concatenate(batches) if batches else np.zeros((0, 256), dtype=np.float32)

    def _embed_windows(self, wav: np.ndarray, windows: Sequence[slice]) -> np.ndarray:
        import torch

        first, last = windows[0].start, windows[-1].stop
        mel = mel_frames(wav, first, last)
        with torch.no_grad():
            mels = torch.from_numpy(np.stack([mel[w.start - first : w.stop - first] for w in windows]))
            return self.encoder(mels).numpy()

    def assign(self, words: Sequence[Word], audio: Sequence[np.ndarray]) -> list[Word]:
        centres, embeddings = self.embed(audio[0])
        if len(centres) == 0:
            return [dataclasses.replace(w, speaker="spk0") for w in words]
        window_labels = cluster(embeddings, self.options)
        midpoints = np.array([(w.start_s + w.end_s) / 2 for w in words])
        nearest = np.abs(midpoints[:, None] - centres[None, :]).argmin(axis=1)
        labels = smooth([int(window_labels[i]) for i in nearest], words, self.options)
        return [dataclasses.replace(w, speaker=f"spk{label}") for w, label in zip(words, labels, strict=True)]
