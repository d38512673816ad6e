"""Ingest: find recordings, give each a content-derived id, read its metadata, decode it.

Decoding uses PyAV (what faster-whisper itself uses), so no system ffmpeg is needed.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np

from pipeline.errors import AudioError, ConfigError
from pipeline.options import IngestOptions, parse_speakers
from pipeline.records import ROLES, Call

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".aac", ".wma", ".webm", ".mp4"})
SAMPLE_RATE = 16_000
METADATA_FIELDS = ("agent_id", "team", "call_time", "direction")
SIDECAR_SUFFIX = ".meta.json"
HEAD_BYTES = 4096  # enough for any WAV header we check and to tell text from binary
MAX_WAV_SHORTFALL_S = 0.5  # a WAV missing less than this (a last block not flushed) is decoded as it is
MIN_DURATION_S = 2.0  # shorter than any greeting: a dropped call or a cut file, nothing to score


def discover(inputs: Iterable[Path], suffixes: frozenset[str]) -> list[Path]:
    """Files with one of `suffixes` among `inputs`, folders searched recursively, sorted. Paths are made
    absolute (not resolved: a symlink keeps its name) so that stored source paths work from any folder."""
    found: set[Path] = set()
    for path in map(Path.absolute, inputs):
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        elif path.is_file():
            found.add(path)
        else:
            raise ConfigError(f"input {path} does not exist; pass audio files or folders.")
    return sorted(found)


def content_id(path: Path) -> str:
    """A stable id from the file's bytes: a renamed copy is the same call."""
    digest = hashlib.blake2b(digest_size=8)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(manifest: Path | None) -> dict[Path, dict[str, str]]:
    """Metadata rows of a CSV manifest, keyed by resolved audio path."""
    if manifest is None:
        return {}
    try:
        with manifest.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {manifest}: {exc.strerror}.") from None
    if rows and not ({"path", "file"} & set(rows[0])):
        raise ConfigError(f"manifest {manifest} needs a 'path' or 'file' column naming each recording.")
    return {(manifest.parent / (row.get("path") or row["file"])).resolve(): row for row in rows}


def _from_filename(path: Path, pattern: str | None) -> dict[str, str]:
    if not pattern:
        return {}
    match = re.search(pattern, path.name)
    return {k: v for k, v in match.groupdict().items() if v} if match else {}


def _from_sidecar(path: Path) -> dict[str, str]:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        return json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise AudioError(f"sidecar {sidecar.name} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None


def parse_call_time(value: str | None) -> datetime | None:
    """ISO 8601 or 20261123T093000; a time with a UTC offset is converted to UTC."""
    if not value:
        return None
    for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, "%Y%m%dT%H%M%S")):
        try:
            parsed = parse(value)
        except ValueError:
            continue
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    raise AudioError(f"call_time {value!r} is not an ISO 8601 time (e.g. 2026-11-23T09:30:00).")


def call_metadata(path: Path, options: IngestOptions, manifest: Mapping[Path, Mapping[str, str]]) -> dict:
    """agent_id, team, call_time and direction; a sidecar beats the manifest beats the file name."""
    merged = {
        **_from_filename(path, options.filename_pattern),
        **manifest.get(path.resolve(), {}),
        **_from_sidecar(path),
    }
    metadata = {k: (str(merged[k]) if merged.get(k) not in (None, "") else None) for k in METADATA_FIELDS}
    metadata["call_time"] = parse_call_time(metadata["call_time"])
    metadata["channel_roles"] = _channel_roles(merged.get("channel_roles"))
    metadata["expected_speakers"] = _expected_speakers(merged.get("speakers"))
    return metadata


def _expected_speakers(value: object) -> str | None:
    if value in (None, ""):
        return None
    try:
        low, high = parse_speakers(str(value))
    except ConfigError as exc:
        raise AudioError(f"speakers in the metadata: {exc}") from None
    return f"{low}-{high}"


def _channel_roles(value: object) -> str | None:
    """A per-call channel map, as a list or a comma-separated string."""
    if not value:
        return None
    roles = [r.strip() for r in (value.split(",") if isinstance(value, str) else value)]
    if bad := [r for r in roles if r not in ROLES]:
        raise AudioError(f"channel_roles {bad} in the metadata are not agent, customer or unknown.")
    return ",".join(roles)


def check_readable(path: Path) -> bytes:
    """The first bytes of a file that can be read and is not empty."""
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except PermissionError:
        info = path.stat()
        fix = (
            "give its owner read permission (chmod u+r)"
            if info.st_uid == os.geteuid()
            else f"give uid {os.geteuid()} read access (chmod o+r, or a group both share) or run callqa as uid {info.st_uid}"
        )
        raise AudioError(
            f"cannot read the file: permission denied (mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid}, "
            f"callqa runs as uid {os.geteuid()}); {fix}."
        ) from None
    if not head:
        raise AudioError("the file is empty (0 bytes): the recording was never written or its copy failed; copy it again from the source.")
    return head


def looks_like_text(head: bytes) -> bool:
    """True when the bytes are printable UTF-8 text (a note or transcript saved under an audio name)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def wav_truncation(head: bytes, file_size: int) -> tuple[float, float] | None:
    """(seconds the WAV header announces, seconds the file holds) when the data chunk is cut short, else None.
    Recorders that stream write 0 or 0xFFFFFFFF (some 0x7FFFFFFF) as the data size: that is not a truncation."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate, offset = 0, 12
    while offset + 8 <= len(head):
        chunk, size = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk == b"fmt ":
            byte_rate = int.from_bytes(head[offset + 16 : offset + 20], "little")
        elif chunk == b"data":
            present = file_size - (offset + 8)
            if size == 0 or size >= 0x7FFFFFFF or not byte_rate or size - present < byte_rate * MAX_WAV_SHORTFALL_S:
                return None
            return size / byte_rate, present / byte_rate
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    return None


def probe(path: Path, head: bytes = b"") -> tuple[int, int]:
    """Channels and sample rate of the first audio stream."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                others = ", ".join(f"{s.type}: {s.codec_context.name}" for s in container.streams) or "no streams at all"
                raise AudioError(
                    f"the file has no audio track (it holds {others}); export the call's audio (e.g. as WAV) "
                    "or move the file out of the recordings."
                )
            stream = container.streams.audio[0]
            return stream.codec_context.channels, stream.codec_context.sample_rate
    except av.FFmpegError as exc:
        if looks_like_text(head):
            raise AudioError(
                "not audio: the file holds plain text (a note or a transcript saved under an audio name?); "
                "move it out of the recordings, or pass transcripts to `callqa score`."
            ) from None
        raise AudioError(
            f"cannot open as audio: FFmpeg recognises no audio format in it ({type(exc).__name__}: {exc.strerror}); "
            "check that it plays in a media player, or convert it to WAV or FLAC."
        ) from None


def _grouped_frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame | None]:
    """The audio frames in blocks of about 500,000 samples, then None to flush the resampler
    (as faster-whisper's decode_audio does, so the samples are the same as its)."""
    fifo = av.AudioFifo()
    frames = container.decode(audio=0)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except av.InvalidDataError:  # a damaged packet: skipped, the rest decodes
            continue
        frame.pts = None
        fifo.write(frame)
        if fifo.samples >= 500_000:
            yield fifo.read()
    if fifo.samples:
        yield fifo.read()
    yield None


def _expected_samples(container: av.container.InputContainer) -> int:
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    else:
        seconds = (container.duration or 0) / av.time_base
    return int(seconds * SAMPLE_RATE) + SAMPLE_RATE


def decode_channels(path: Path, channels: int) -> list[np.ndarray]:
    """16 kHz float32 samples: one array per party for stereo, one downmix otherwise.

    Decoded straight into one array sized from the container's duration, so a long recording
    costs its samples once (4 bytes a sample) rather than also a 16-bit copy and a growing buffer."""
    n_out = 2 if channels == 2 else 1
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            resampler = av.AudioResampler(format="s16p", layout="stereo" if n_out == 2 else "mono", rate=SAMPLE_RATE)
            samples = np.empty((n_out, _expected_samples(container)), dtype=np.float32)
            filled = 0
            for block in _grouped_frames(container):
                for frame in resampler.resample(block):
                    pcm = frame.to_ndarray()
                    if filled + pcm.shape[1] > samples.shape[1]:  # the container under-reported its duration
                        samples = _grown(samples, filled + pcm.shape[1])
                    np.divide(pcm, 32768.0, out=samples[:, filled : filled + pcm.shape[1]], dtype=np.float32)
                    filled += pcm.shape[1]
            del resampler
            gc.collect()  # PyAV's resampler holds buffers until collected (faster-whisper issue 390)
    except (av.FFmpegError, ValueError) as exc:
        raise AudioError(f"cannot decode the audio ({type(exc).__name__}: {exc}); check that it plays in a media player.") from None
    if filled == 0:
        raise AudioError("the recording holds no audio samples; check that it plays in a media player, or export it again.")
    return [samples[c, :filled] for c in range(n_out)]


def _grown(samples: np.ndarray, needed: int) -> np.ndarray:
    grown = np.empty((samples.shape[0], max(needed, samples.shape[1] * 3 // 2)), dtype=np.float32)
    grown[:, : samples.shape[1]] = samples
    return grown


def ingest_audio(
    path: Path, options: IngestOptions, manifest: Mapping[Path, Mapping[str, str]]
) -> tuple[Call, list[np.ndarray]]:
    """A Call record and its decoded channels."""
    head = check_readable(path)
    call_id = content_id(path)
    if truncation := wav_truncation(head, path.stat().st_size):
        announced_s, present_s = truncation
        raise AudioError(
            f"the WAV file is truncated: its header announces {announced_s:.1f} s of audio but the file ends after {present_s:.1f} s "
            "(an interrupted copy or recording); copy it again from the source."
        )
    channels, sample_rate = probe(path, head)
    audio = decode_channels(path, channels)
    if (duration_s := audio[0].size / SAMPLE_RATE) < MIN_DURATION_S:
        raise AudioError(
            f"the recording lasts only {duration_s:.1f} s, too short to hold a conversation (a dropped call?); "
            f"callqa scores recordings of {MIN_DURATION_S:g} s or more."
        )
    call = Call(
        call_id=call_id,
        source_path=str(path),
        source_kind="audio",
        duration_s=round(duration_s, 3),
        channels=channels,
        sample_rate=sample_rate,
        **call_metadata(path, options, manifest),
    )
    return call, audio
