from __future__ import annotations

import dataclasses

import pytest

from pipeline.errors import ConfigError
from pipeline.options import (
    BUNDLED_MODEL,
    IngestOptions,
    Options,
    SegmentOptions,
    TranscribeOptions,
    load_options,
    validate_roles,
)


def _config(tmp_path, text: str):
    path = tmp_path / "callqa.toml"
    path.write_text(text)
    return path


def test_load_options_without_file_gives_defaults():
    options = load_options(None)
    assert options == Options()
    assert options.transcribe.model == BUNDLED_MODEL
    assert options.segment.channel_roles == ()  # inferred from what each channel says
    assert options.ingest.manifest is None
    assert options.rubric is None


def test_load_options_reads_every_section(tmp_path):
    config = _config(
        tmp_path,
        """
rubric = "rubrics/strict.toml"

[ingest]
manifest = "meta/calls.csv"

[transcribe]
model = "small"
batch_size = 0

[segment]
channel_roles = ["customer", "agent"]
""",
    )
    options = load_options(config)
    assert options.transcribe == TranscribeOptions(model="small", batch_size=0)
    assert options.segment == SegmentOptions(channel_roles=("customer", "agent"))
    assert options.ingest == IngestOptions(manifest=(tmp_path / "meta" / "calls.csv").resolve())
    assert options.rubric == (tmp_path / "rubrics" / "strict.toml").resolve()


def test_manifest_is_resolved_against_the_config_folder_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "callqa.toml"
    config.write_text('[ingest]\nmanifest = "calls.csv"\n')
    monkeypatch.chdir(tmp_path)
    assert load_options(config).ingest.manifest == (tmp_path / "conf" / "calls.csv").resolve()


def test_unknown_section_raises_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="transcription"):
        load_options(_config(tmp_path, '[transcription]\nmodel = "small"\n'))


def test_unknown_key_raises_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="beam_width") as excinfo:
        load_options(_config(tmp_path, "[transcribe]\nbeam_width = 3\n"))
    assert "beam_size" in str(excinfo.value)


def test_invalid_toml_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_options(_config(tmp_path, "[transcribe\nmodel = \n"))


def test_missing_config_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_options(tmp_path / "absent.toml")


@pytest.mark.parametrize("roles", [("agent", "customer"), ("customer", "agent"), ("unknown",)])
def test_validate_roles_accepts_known_roles(roles):
    assert validate_roles(roles) == roles


def test_validate_roles_rejects_boss():
    with pytest.raises(ConfigError, match="boss"):
        validate_roles(("agent", "boss"))


@pytest.mark.parametrize(
    ("instance", "attribute"),
    [
        (Options(), "rubric"),
        (TranscribeOptions(), "model"),
        (SegmentOptions(), "channel_roles"),
        (IngestOptions(), "manifest"),
    ],
)
def test_options_are_frozen(instance, attribute):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, attribute, None)


def test_as_json_includes_effective_values():
    options = dataclasses.replace(Options(), transcribe=TranscribeOptions(model="base"))
    assert '"model": "base"' in options.as_json()
