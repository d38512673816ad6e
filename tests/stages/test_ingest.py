from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import load_script, sample_audio, sample_names

from pipeline.errors import AudioError, ConfigError
from pipeline.options import IngestOptions
from pipeline.stages.ingest import (
    AUDIO_SUFFIXES,
    SAMPLE_RATE,
    call_metadata,
    content_id,
    discover,
    ingest_audio,
    probe,
    read_manifest,
)

PATTERN = r"(?P<agent_id>[a-z]+)_(?P<call_time>\d{8}T\d{6})"


def _touch(path, content: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_discover_finds_audio_in_nested_folders_sorted(tmp_path):
    expected = [
        _touch(tmp_path / "a" / "b" / "deep.flac"),
        _touch(tmp_path / "a" / "top.MP3"),
        _touch(tmp_path / "z.wav"),
    ]
    _touch(tmp_path / "a" / "notes.txt")
    _touch(tmp_path / "a" / "call.meta.json")
    assert discover([tmp_path], AUDIO_SUFFIXES) == sorted(expected)


def test_discover_keeps_explicit_files_and_drops_duplicates(tmp_path):
    wav = _touch(tmp_path / "one.wav")
    assert discover([wav, tmp_path], AUDIO_SUFFIXES) == [wav]


def test_discover_returns_absolute_paths_that_keep_symlink_names(tmp_path, monkeypatch):
    # Stored source paths must work from any folder (clips, evaluate), so relative inputs become absolute.
    wav = _touch(tmp_path / "calls" / "one.wav")
    (tmp_path / "calls" / "link.wav").symlink_to(wav)
    monkeypatch.chdir(tmp_path)
    assert discover([Path("calls")], AUDIO_SUFFIXES) == [tmp_path / "calls" / "link.wav", wav]


def test_discover_raises_config_error_for_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="absent"):
        discover([tmp_path / "absent"], AUDIO_SUFFIXES)


def test_content_id_is_equal_for_a_renamed_copy_and_differs_for_other_content(tmp_path):
    original = sample_audio("good_call")
    copy = tmp_path / "renamed.wav"
    shutil.copy(original, copy)
    other = _touch(tmp_path / "other.wav", original.read_bytes()[:-1])
    assert content_id(copy) == content_id(original)
    assert content_id(other) != content_id(original)


def test_call_metadata_sidecar_beats_manifest_beats_file_name(tmp_path):
    audio = _touch(tmp_path / "joe_20261123T093000.wav")
    manifest_path = tmp_path / "calls.csv"
    manifest_path.write_text("path,agent_id,team,direction\njoe_20261123T093000.wav,ann,billing,inbound\n")
    (tmp_path / "joe_20261123T093000.meta.json").write_text(json.dumps({"team": "support"}))
    options = IngestOptions(filename_pattern=PATTERN)
    metadata = call_metadata(audio, options, read_manifest(manifest_path))
    assert metadata == {
        "agent_id": "ann",
        "team": "support",
        "call_time": datetime(2026, 11, 23, 9, 30),
        "direction": "inbound",
        "channel_roles": None,
        "expected_speakers": None,
    }


def test_call_metadata_without_sources_is_all_none(tmp_path):
    audio = _touch(tmp_path / "call.wav")
    fields = ("agent_id", "team", "call_time", "direction", "channel_roles", "expected_speakers")
    assert call_metadata(audio, IngestOptions(), {}) == dict.fromkeys(fields)


def test_manifest_file_column_is_resolved_against_its_folder(tmp_path):
    (tmp_path / "meta").mkdir()
    manifest_path = tmp_path / "meta" / "calls.csv"
    manifest_path.write_text("file,agent_id\n../audio/c1.wav,ann\n")
    audio = _touch(tmp_path / "audio" / "c1.wav")
    manifest = read_manifest(manifest_path)
    assert list(manifest) == [audio.resolve()]
    assert call_metadata(audio, IngestOptions(), manifest)["agent_id"] == "ann"


@pytest.mark.parametrize(
    "value",
    ["2026-11-23T09:30:00", "2026-11-23 09:30:00", "20261123T093000"],
)
def test_call_time_is_parsed_from_iso_and_compact_forms(tmp_path, value):
    audio = _touch(tmp_path / "call.wav")
    (tmp_path / "call.meta.json").write_text(json.dumps({"call_time": value}))
    assert call_metadata(audio, IngestOptions(), {})["call_time"] == datetime(2026, 11, 23, 9, 30)


@pytest.mark.parametrize("value", ["yesterday", "23/11/2026 09:30", "2026-13-40"])
def test_bad_call_time_raises_audio_error(tmp_path, value):
    audio = _touch(tmp_path / "call.wav")
    (tmp_path / "call.meta.json").write_text(json.dumps({"call_time": value}))
    with pytest.raises(AudioError, match="call_time"):
        call_metadata(audio, IngestOptions(), {})


def test_sidecar_with_invalid_json_raises_audio_error(tmp_path):
    audio = _touch(tmp_path / "call.wav")
    (tmp_path / "call.meta.json").write_text("{agent_id: joe")
    with pytest.raises(AudioError, match="call.meta.json"):
        call_metadata(audio, IngestOptions(), {})


def test_read_manifest_without_path_column_raises_config_error(tmp_path):
    manifest_path = tmp_path / "calls.csv"
    manifest_path.write_text("recording,agent_id\nc1.wav,ann\n")
    with pytest.raises(ConfigError, match="'path' or 'file' column"):
        read_manifest(manifest_path)


def test_read_manifest_of_missing_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read manifest"):
        read_manifest(tmp_path / "absent.csv")


@pytest.mark.parametrize("name", sample_names())
def test_probe_matches_the_sample_script(name):
    script = load_script(name)
    assert probe(sample_audio(name)) == (script["channels"], script["sample_rate"])


@pytest.mark.parametrize("name", sample_names())
def test_ingest_audio_decodes_every_sample(name):
    script = load_script(name)
    last_end_s = max(turn["end_s"] for turn in script["turns"])
    call, audio = ingest_audio(sample_audio(name), IngestOptions(), {})
    assert last_end_s <= call.duration_s <= last_end_s + 2.0
    assert len(audio) == (2 if script["channels"] == 2 else 1)
    assert {a.size for a in audio} == {round(call.duration_s * SAMPLE_RATE)}
    assert all(a.dtype == np.float32 for a in audio)
    assert call.channels == script["channels"]
    assert call.sample_rate == script["sample_rate"]
    assert call.call_id == content_id(sample_audio(name))
    assert call.source_kind == "audio"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is not audio\n" * 10, "plain text"), (b"", "empty"), (bytes(range(256)) * 4, "cannot open as audio")],
    ids=["text-named-wav", "zero-bytes", "binary-garbage"],
)
def test_non_audio_wav_raises_audio_error(tmp_path, content, message):
    path = _touch(tmp_path / "call.wav", content)
    with pytest.raises(AudioError, match=message):
        ingest_audio(path, IngestOptions(), {})


def test_truncated_wav_raises_audio_error_with_both_durations(tmp_path):
    path = _touch(tmp_path / "call.wav", sample_audio("good_call").read_bytes()[:100])
    with pytest.raises(AudioError, match=r"truncated: its header announces 70\.5 s .* ends after 0\.0 s"):
        ingest_audio(path, IngestOptions(), {})


def test_file_without_audio_track_raises_audio_error(tmp_path):
    path = tmp_path / "video_only.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(AudioError, match="no audio track"):
        ingest_audio(path, IngestOptions(), {})


def test_sidecar_channel_roles_and_speakers_are_validated(tmp_path):
    audio = _touch(tmp_path / "call.wav")
    sidecar = tmp_path / "call.meta.json"
    sidecar.write_text(json.dumps({"channel_roles": ["customer", "agent"], "speakers": 3}))
    metadata = call_metadata(audio, IngestOptions(), {})
    assert (metadata["channel_roles"], metadata["expected_speakers"]) == ("customer,agent", "3-3")
    sidecar.write_text(json.dumps({"channel_roles": "boss,agent"}))
    with pytest.raises(AudioError, match="boss"):
        call_metadata(audio, IngestOptions(), {})
    sidecar.write_text(json.dumps({"speakers": "3-2"}))
    with pytest.raises(AudioError, match="speakers"):
        call_metadata(audio, IngestOptions(), {})
