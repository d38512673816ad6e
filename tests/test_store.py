from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.errors import ConfigError
from pipeline.records import Call
from pipeline.store import read_metadata, read_table, require_transcribed, table_path, write_table


def _call(call_id: str, **overrides) -> Call:
    return Call(call_id, f"/calls/{call_id}.wav", "audio", 12.5, 2, 16000, **overrides)


def _temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_write_then_read_returns_the_records(tmp_path):
    calls = [_call("a"), _call("b", agent_id="joe")]
    write_table(tmp_path, "calls", calls, {})
    assert read_table(tmp_path, "calls") == calls


def test_metadata_keys_come_back_without_prefix(tmp_path):
    write_table(tmp_path, "calls", [_call("a")], {"rubric_version": "2026.11.0", "model": "tiny.en"})
    assert read_metadata(tmp_path, "calls") == {"rubric_version": "2026.11.0", "model": "tiny.en"}


def test_write_leaves_no_temp_file(tmp_path):
    write_table(tmp_path, "calls", [_call("a")], {})
    assert _temp_files(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["calls.parquet"]


def test_second_write_replaces_the_first(tmp_path):
    write_table(tmp_path, "calls", [_call("a"), _call("b")], {"run": "1"})
    write_table(tmp_path, "calls", [_call("c")], {"run": "2"})
    assert read_table(tmp_path, "calls") == [_call("c")]
    assert read_metadata(tmp_path, "calls") == {"run": "2"}
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize(
    "bad_record",
    [
        pytest.param(_call(123), id="wrong-type-before-write"),  # type: ignore[arg-type]
        pytest.param(_call(None), id="null-in-required-column-during-write"),  # type: ignore[arg-type]
    ],
)
def test_failed_write_keeps_previous_file_and_no_temp_file(tmp_path, bad_record):
    write_table(tmp_path, "calls", [_call("a")], {"run": "1"})
    with pytest.raises(pa.ArrowException):
        write_table(tmp_path, "calls", [_call("b"), bad_record], {"run": "2"})
    assert read_table(tmp_path, "calls") == [_call("a")]
    assert read_metadata(tmp_path, "calls") == {"run": "1"}
    assert _temp_files(tmp_path) == []


def test_read_table_of_absent_table_is_empty(tmp_path):
    assert read_table(tmp_path, "words") == []


def test_table_path_is_named_after_the_table(tmp_path):
    assert table_path(tmp_path, "scores") == tmp_path / "scores.parquet"


def test_require_transcribed_names_the_transcribe_command_on_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="callqa transcribe"):
        require_transcribed(tmp_path)


def test_require_transcribed_accepts_folder_with_utterances(tmp_path):
    write_table(tmp_path, "utterances", [], {})
    require_transcribed(tmp_path)
    assert table_path(tmp_path, "utterances").is_file()
