"""Audio clips of example moments, for trainers: each moment with a few seconds of context on
each side, cut from the call's recording into a file any browser or player plays, named after
the call id (never after the recording's path), and an index (CSV and HTML) that links each clip
to its call and criterion.

The recording is decoded by the same PyAV path as ingest (16 kHz, the call's own timeline), both
parties of a stereo call mixed into one channel. When the run redacted customer data and its
`silence_audio` option is on (the default), the redacted time spans are silenced in the clip.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import av
import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.errors import AudioError, CallqaError
from pipeline.examples import Example
from pipeline.names import path_inside, safe_name
from pipeline.stages.ingest import SAMPLE_RATE, decode_channels, probe
from pipeline.stages.redact import redacted_spans
from pipeline.store import atomic_file, read_metadata, read_table

log = logging.getLogger(__name__)

CONTEXT_S = 3.0  # context on each side of the moment
MAX_MOMENT_S = 30.0  # a longer moment (a monologue) is clipped to its beginning
OPUS_BIT_RATE = 24_000  # speech at 16 kHz: clear at 24 kbit/s, 3 kB a second
INDEX_CSV = "index.csv"
INDEX_HTML = "index.html"


class ClipFormat(StrEnum):
    ogg = "ogg"  # Opus in Ogg: small, plays in every current browser
    wav = "wav"  # 16-bit PCM: plays everywhere, 32 kB per second


@dataclass(frozen=True)
class Clip:
    """One example's clip, or why it has none (`file` empty, `note` says why)."""

    rank: int
    call_id: str
    criterion: str
    file: str | None
    start_s: float | None
    end_s: float | None
    n_silenced: int = 0
    note: str | None = None


def clip_window(start_s: float, end_s: float, duration_s: float | None, context_s: float = CONTEXT_S) -> tuple[float, float]:
    """The moment (its first MAX_MOMENT_S) with `context_s` each side, inside the recording."""
    end_s = min(end_s, start_s + MAX_MOMENT_S)
    stop = end_s + context_s if duration_s is None else min(duration_s, end_s + context_s)
    return max(0.0, start_s - context_s), stop


def decode_mono(source: Path) -> np.ndarray:
    """The recording as 16 kHz float32 samples, channels mixed: the timeline the call was scored on."""
    channels, _ = probe(source)
    return np.mean(np.stack(decode_channels(source, channels)), axis=0)


def encode(samples: np.ndarray, dest: Path, fmt: ClipFormat) -> None:
    """16 kHz mono float samples to an Ogg Opus or WAV file, written atomically."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt.value) as container:
        stream = container.add_stream("libopus" if fmt == ClipFormat.ogg else "pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        if fmt == ClipFormat.ogg:
            stream.bit_rate = OPUS_BIT_RATE
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with atomic_file(dest) as f:
        f.write(buffer.getvalue())


def cut_clip(samples: np.ndarray, start_s: float, end_s: float, silence: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """The samples between `start_s` and `end_s`, with the `silence` spans zeroed."""
    clip = samples[int(start_s * SAMPLE_RATE) : int(end_s * SAMPLE_RATE)].copy()
    for s, e in silence:
        lo, hi = max(0, int((s - start_s) * SAMPLE_RATE)), min(clip.size, int(np.ceil((e - start_s) * SAMPLE_RATE)))
        if lo < hi:
            clip[lo:hi] = 0.0
    return clip


def clip_name(example: Example, fmt: ClipFormat) -> str:
    """`<call_id>_<criterion>_<start ms>.<ext>`: from the call id and the rubric's criterion only."""
    return safe_name(f"{example.call_id}_{example.criterion}_{round((example.moment_start_s or 0.0) * 1000)}") + f".{fmt.value}"


def write_clips(out_dir: Path, examples: Sequence[Example], folder: Path, fmt: ClipFormat = ClipFormat.ogg,
                context_s: float = CONTEXT_S) -> list[Clip]:
    """A clip per example in `folder`, and index.csv and index.html beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    silence = _silence_spans(out_dir, [e.call_id for e in examples])
    clips = [_clip(example, folder, fmt, context_s, silence.get(example.call_id, [])) for example in examples]
    write_index(examples, clips, folder)
    return clips


def _clip(example: Example, folder: Path, fmt: ClipFormat, context_s: float, silence: Sequence[tuple[float, float]]) -> Clip:
    def without(note: str) -> Clip:
        return Clip(example.rank, example.call_id, example.criterion, None, example.moment_start_s, example.moment_end_s, note=note)

    if example.source_kind != "audio":
        return without("a transcript: no recording to cut")
    if example.moment_start_s is None:
        return without("no timed utterance to cut around")
    source = Path(example.source_path)
    if not source.is_file():
        return without(f"recording not found at {source} (run the command where the run's input paths resolve)")
    start, end = clip_window(example.moment_start_s, example.moment_end_s or example.moment_start_s, example.duration_s, context_s)
    inside = [(s, e) for s, e in silence if s < end and e > start]
    try:
        samples = cut_clip(decode_mono(source), start, end, inside)
        name = clip_name(example, fmt)
        encode(samples, path_inside(folder, name), fmt)
    except (AudioError, av.FFmpegError) as exc:
        log.warning("no clip for call %s: %s", example.call_id, exc)
        return without(f"cannot cut the recording: {exc}")
    return Clip(example.rank, example.call_id, example.criterion, name, round(start, 3), round(end, 3), n_silenced=len(inside))


def _silence_spans(out_dir: Path, call_ids: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """Redacted time spans per call, when the run redacted and asked for silenced audio."""
    try:
        options = json.loads(read_metadata(out_dir, "calls").get("options", "{}"))
    except (CallqaError, json.JSONDecodeError):
        options = {}
    redact = options.get("redact") or {}
    if not (redact.get("enabled", True) and redact.get("silence_audio", True)):
        return {}
    words: dict[str, list] = {}
    for w in read_table(out_dir, "words", call_ids=call_ids):
        words.setdefault(w.call_id, []).append(w)
    return {call_id: [(s, e) for s, e, _ in redacted_spans(ws)] for call_id, ws in words.items()}


INDEX_FIELDS = ["rank", "call_id", "criterion", "criterion_score", "passed", "rules", "moment_start_s", "moment_end_s",
                "clip", "clip_start_s", "clip_end_s", "silenced_spans", "note", "agent_id", "call_time"]


def write_index(examples: Sequence[Example], clips: Sequence[Clip], folder: Path) -> tuple[Path, Path]:
    """index.csv (one row per example) and index.html (each clip playable beside its evidence)."""
    clip_of: Mapping[tuple[int, str], Clip] = {(c.rank, c.call_id): c for c in clips}
    rows = [_index_row(e, clip_of[(e.rank, e.call_id)]) for e in examples]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=INDEX_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_file(folder / INDEX_CSV, "w") as f:
        f.write(text.getvalue())
    env = Environment(loader=PackageLoader("pipeline", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("clips.html.j2").render(items=[(e, clip_of[(e.rank, e.call_id)]) for e in examples])
    with atomic_file(folder / INDEX_HTML, "w") as f:
        f.write(html)
    return folder / INDEX_CSV, folder / INDEX_HTML


def _index_row(example: Example, clip: Clip) -> dict:
    return {
        "rank": example.rank, "call_id": example.call_id, "criterion": example.criterion,
        "criterion_score": round(example.criterion_score, 3), "passed": example.passed,
        "rules": " ".join(dict.fromkeys(f.rule_id for f in (example.deciding or example.findings))),
        "moment_start_s": example.moment_start_s, "moment_end_s": example.moment_end_s,
        "clip": clip.file or "", "clip_start_s": clip.start_s if clip.file else "", "clip_end_s": clip.end_s if clip.file else "",
        "silenced_spans": clip.n_silenced, "note": clip.note or "", "agent_id": example.agent_id or "",
        "call_time": example.call_time.isoformat() if example.call_time else "",
    }
