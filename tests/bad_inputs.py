"""The bad-input corpus of issue 5: every awkward file a nightly batch meets, generated in code.

`build_corpus(folder)` writes one file per case (real speech cut and mixed from data/sample/,
non-English speech from tests/fixtures/) and returns the case list; `CASES` says, for each,
what a good outcome is: scored, or a `failures` row at a given stage whose message holds
the words that explain it. The test asserts those words, never the exact sentences.
"""

from __future__ import annotations

import json
import shutil
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from faster_whisper import decode_audio

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"
LINE_NOISE_DBFS = -45.0  # like the sample calls' line noise
TWO_HOURS_S = 2 * 3600
TWO_HOURS_SPEECH_AT_S = (5.0, 3600.0, TWO_HOURS_S - 60.0)  # where the three parts of a call go


@dataclass(frozen=True)
class Case:
    """One bad input and what a good outcome is."""

    name: str
    file: str  # its file name in the corpus folder
    outcome: str  # "scored", "failed" or "duplicate" (the same content as another file: processed once)
    why: str  # what a good outcome is, and why
    stage: str | None = None  # for "failed": the stage that must report it
    reason: tuple[str, ...] = ()  # for "failed": words the message must hold (what is wrong)
    advice: tuple[str, ...] = ()  # for "failed": any of these words (what to do)


CASES = (
    Case("zero_bytes", "empty.wav", "failed", "nothing to decode: say the file is empty and to copy it again",
         "ingest", ("empty", "0 bytes"), ("copy",)),
    Case("truncated_wav", "truncated.wav", "failed",
         "the header announces more audio than the file holds: an interrupted copy; scoring the part would judge half a call",
         "ingest", ("truncated", "announces"), ("copy",)),
    Case("text_named_wav", "notes.wav", "failed", "a note saved as .wav: say it is text, not audio",
         "ingest", ("text", "not audio"), ("move", "callqa score")),
    Case("video_without_audio", "screen recording.mp4", "failed", "a video with no sound track: say there is no audio track and what it holds",
         "ingest", ("no audio track", "video"), ("export", "move")),
    Case("silence_only", "silence.wav", "failed",
         "nothing was said: a failure at transcription (no speech), not an empty 'scored' call that would drag averages down",
         "transcribe", ("no speech",), ("muted", "connected", "check")),
    Case("one_second", "one_second.wav", "failed",
         "one second cannot hold a conversation: a failure, like silence, rather than a score from a word or two",
         "ingest", ("too short", "1.0 s"), ("2 s or more",)),
    Case("two_hours", "two_hours.wav", "scored",
         "a real two-hour recording, mostly line noise with a call in three parts: scored, each part transcribed"),
    Case("mulaw_8bit", "mulaw_8bit.wav", "scored", "8-bit mu-law telephone WAV: decoded like any other, diarized (mono) and scored"),
    Case("six_channel_48k", "six_channel_48k.wav", "scored",
         "6-channel 48 kHz: downmixed to one 16 kHz channel and diarized like a mono call (both parties found)"),
    Case("non_english", "spanish_call.opus", "scored",
         "tiny.en cannot transcribe Spanish: the call is written but flagged for review, with the reason (low word confidence)"),
    Case("non_ascii_name", "Anruf Müller – café 1.flac", "scored", "spaces and non-ASCII characters in the name change nothing"),
    Case("original", "good_call.wav", "scored", "the first (in name order) of two identical recordings: scored once"),
    Case("same_recording_twice", "good_call_copy.wav", "duplicate",
         "the same bytes under another name is the same call: processed once, the copy counted as skipped"),
    Case("unreadable", "locked.wav", "failed", "no read permission: say so, with the owner and mode, and how to fix it",
         "ingest", ("permission denied",), ("chmod",)),
)


def case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def sample(name: str, rate: int = 16_000) -> np.ndarray:
    """A sample recording as float32 (channels, samples) at `rate`."""
    path = SAMPLE_DIR / name
    with av.open(str(path)) as container:
        channels = container.streams.audio[0].codec_context.channels
    if channels == 2:
        return np.stack(decode_audio(str(path), sampling_rate=rate, split_stereo=True))
    return decode_audio(str(path), sampling_rate=rate)[None, :]


def line_noise(n: int, seed: int, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 10 ** (LINE_NOISE_DBFS / 20), (channels, n)).astype(np.float32)


def pcm16(samples: np.ndarray) -> bytes:
    """(channels, n) float32 to interleaved little-endian 16-bit PCM."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").T.tobytes()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(samples.shape[0])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm16(samples))


def write_truncated_wav(path: Path) -> None:
    """A mono call whose copy stopped at 40%: the header still announces the whole call."""
    write_wav(path, sample("good_call_mono.wav", 8000), 8000)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.4)])


def write_text(path: Path) -> None:
    path.write_text("Call notes, 23 November\nCustomer: Ana Müller, account 472981\nCharged twice; callback promised by Friday.\n")


def write_video_only(path: Path) -> None:
    """Two seconds of MPEG-4 video with no audio stream (a screen recording without sound)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_silence(path: Path) -> None:
    """Thirty seconds of line noise and nothing else."""
    write_wav(path, line_noise(30 * 8000, seed=1), 8000)


def write_one_second(path: Path) -> None:
    """One second of the agent's greeting."""
    speech = sample("good_call.wav", 8000)[0]
    start = int(np.argmax(np.abs(speech) > 0.05))  # the first word
    write_wav(path, speech[None, start : start + 8000], 8000)


def write_two_hours(path: Path) -> None:
    """Two hours of 8 kHz mono line noise with a call cut into three parts, at turn boundaries
    (no word is cut), placed at the start, the middle and the end; written a minute at a time,
    so building it takes little memory."""
    rate = 8000
    call = sample("next_steps_mono.opus", rate)[0]
    parts = np.split(call, [int(at * rate) for at in turn_boundaries("next_steps_mono", 3)])
    placed = {int(at * rate): part for at, part in zip(TWO_HOURS_SPEECH_AT_S, parts, strict=True)}
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        for minute in range(TWO_HOURS_S // 60):
            first = minute * 60 * rate
            block = line_noise(60 * rate, seed=minute)[0]
            for at, part in placed.items():
                lo, hi = max(at, first), min(at + part.size, first + block.size)
                if lo < hi:  # the call carries its own line noise
                    block[lo - first : hi - first] = part[lo - at : hi - at]
            f.writeframes(pcm16(block[None, :]))


def turn_boundaries(name: str, n_parts: int) -> list[float]:
    """Times in the pauses before the turns nearest to each 1/n of a sample call (from its script)."""
    turns = json.loads((SAMPLE_DIR / f"{name}.script.json").read_text())["turns"]
    starts = np.array([t["start_s"] for t in turns[1:]])
    ends = np.array([t["end_s"] for t in turns[:-1]])
    length = turns[-1]["end_s"]
    picks = [int(np.argmin(np.abs(starts - length * k / n_parts))) for k in range(1, n_parts)]
    return [(ends[i] + starts[i]) / 2 for i in picks]


def write_mulaw(path: Path) -> None:
    """The mono good call as 8-bit mu-law (G.711) in a WAV, 8 kHz: classic telephony."""
    samples = sample("good_call_mono.wav", 8000)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_mulaw", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_six_channel(path: Path) -> None:
    """A 5.1 layout at 48 kHz: the agent on front left, the customer on front right, the other
    four channels line noise only (a conference-room or video-call export)."""
    stereo = sample("pitch_first.flac", 48_000)
    six = line_noise(stereo.shape[1], seed=6, channels=6)
    six[:2] += stereo
    write_wav(path, six, 48_000)


def build_corpus(folder: Path) -> dict[str, Path]:
    """Every case's file in `folder`; returns case name -> path. The unreadable file is chmod 000."""
    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[Path], None]] = {
        "zero_bytes": lambda p: p.write_bytes(b""),
        "truncated_wav": write_truncated_wav,
        "text_named_wav": write_text,
        "video_without_audio": write_video_only,
        "silence_only": write_silence,
        "one_second": write_one_second,
        "two_hours": write_two_hours,
        "mulaw_8bit": write_mulaw,
        "six_channel_48k": write_six_channel,
        "non_english": lambda p: shutil.copy(FIXTURE_DIR / "spanish_call.opus", p),
        "non_ascii_name": lambda p: shutil.copy(SAMPLE_DIR / "pitch_first.flac", p),
        "original": lambda p: shutil.copy(SAMPLE_DIR / "good_call.wav", p),
        "same_recording_twice": lambda p: shutil.copy(SAMPLE_DIR / "good_call.wav", p),
        "unreadable": lambda p: shutil.copy(SAMPLE_DIR / "interruptions.wav", p),
    }
    paths = {}
    for c in CASES:
        paths[c.name] = folder / c.file
        writers[c.name](paths[c.name])
    paths["unreadable"].chmod(0)
    return paths


def build_folder_without_audio(folder: Path) -> Path:
    """A folder of things that are not recordings: a note, a spreadsheet export, a sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text("Recordings for 23 November go here.\n")
    (folder / "agents.csv").write_text("agent_id,team\na17,billing\n")
    (folder / "call.meta.json").write_text('{"agent_id": "a17"}')
    return folder
