"""Ingest: find recordings, give each a content-derived id, read its metadata, decode it.

Decoding uses PyAV (what faster-whisper itself uses), so no system ffmpeg is needed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
from faster_whisper import decode_audio

from pipeline.errors import AudioError, ConfigError
from pipeline.options import IngestOptions, parse_speakers
from pipeline.records import ROLES, Call

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".aac", ".wma", ".webm", ".mp4"})
SAMPLE_RATE = 16_000
METADATA_FIELDS = ("agent_id", "team", "call_time", "direction")
SIDECAR_SUFFIX = ".meta.json"


def discover(inputs: Iterable[Path], suffixes: frozenset[str]) -> list[Path]:
    """Files with one of `suffixes` among `inputs`, folders searched recursively, sorted."""
    found: set[Path] = set()
    for path in inputs:
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


def probe(path: Path) -> tuple[int, int]:
    """Channels and sample rate of the first audio stream."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio track.")
            stream = container.streams.audio[0]
            return stream.codec_context.channels, stream.codec_context.sample_rate
    except av.FFmpegError as exc:
        raise AudioError(f"cannot open as audio ({type(exc).__name__}: {exc.strerror}).") from None


def decode_channels(path: Path, channels: int) -> list[np.ndarray]:
    """16 kHz float32 samples: one array per party for stereo, one downmix otherwise."""
    try:
        if channels == 2:
            decoded = list(decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=True))
        else:
            decoded = [decode_audio(str(path), sampling_rate=SAMPLE_RATE)]
    except (av.FFmpegError, ValueError) as exc:
        raise AudioError(f"cannot decode the audio ({type(exc).__name__}: {exc}).") from None
    if decoded[0].size == 0:
        raise AudioError("the recording holds no audio samples.")
    return decoded


def ingest_audio(
    path: Path, options: IngestOptions, manifest: Mapping[Path, Mapping[str, str]]
) -> tuple[Call, list[np.ndarray]]:
    """A Call record and its decoded channels."""
    call_id = content_id(path)
    channels, sample_rate = probe(path)
    audio = decode_channels(path, channels)
    call = Call(
        call_id=call_id,
        source_path=str(path),
        source_kind="audio",
        duration_s=round(audio[0].size / SAMPLE_RATE, 3),
        channels=channels,
        sample_rate=sample_rate,
        **call_metadata(path, options, manifest),
    )
    return call, audio
