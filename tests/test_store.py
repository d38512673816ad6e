from __future__ import annotations

import json
import pickle
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.errors import ConfigError
from pipeline.records import TABLES, Call, Failure, Utterance
from pipeline.store import Dataset, DatasetLocked, atomic_file, part_files, read_metadata, read_table, require_transcribed


def _call(call_id: str, **overrides) -> Call:
    return Call(call_id, f"/calls/{call_id}.wav", "audio", 12.5, 2, 16000, status="scored", **overrides)


def _utterance(call_id: str, idx: int) -> Utterance:
    return Utterance(call_id, idx, "S0", "agent", 0, float(idx), idx + 1.0, f"utterance {idx}", 2)


def _rows(call_id: str, **overrides) -> dict[str, list]:
    return {"calls": [_call(call_id, **overrides)], "utterances": [_utterance(call_id, 0), _utterance(call_id, 1)]}


def _commit(out, *rows, metadata=None) -> Dataset:
    dataset = Dataset(out)
    with dataset.locked():
        for r in rows:
            dataset.stage(r)
        dataset.commit(metadata or {})
    return dataset


def _hidden_or_temp(out) -> list[str]:
    return [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_committed_rows_read_back_as_records(tmp_path):
    _commit(tmp_path, _rows("b", agent_id="joe"), _rows("a"))
    assert read_table(tmp_path, "calls") == [_call("a"), _call("b", agent_id="joe")]
    assert [u.call_id for u in read_table(tmp_path, "utterances")] == ["a", "a", "b", "b"]
    assert read_table(tmp_path, "words") == []


def test_a_batch_is_one_hive_partitioned_part_per_table(tmp_path):
    _commit(tmp_path, _rows("a"), _rows("b"))
    (part,) = part_files(tmp_path, "calls")
    assert part.parent.name.startswith("run_date=") and part.name.startswith("part-")
    assert [p.name for p in part_files(tmp_path, "utterances")] == [part.name]
    assert _hidden_or_temp(tmp_path) == []


def test_pandas_reads_the_folder_as_one_table_with_the_partition_column(tmp_path):
    _commit(tmp_path, _rows("a"))
    _commit(tmp_path, _rows("b"))
    frame = pd.read_parquet(tmp_path / "calls")
    assert sorted(frame["call_id"]) == ["a", "b"] and "run_date" in frame.columns


def test_recommitting_a_call_replaces_it_without_duplicates(tmp_path):
    _commit(tmp_path, _rows("a"), _rows("b"))
    _commit(tmp_path, _rows("a", score=90.0))
    calls = read_table(tmp_path, "calls")
    assert [(c.call_id, c.score) for c in calls] == [("a", 90.0), ("b", None)]
    assert len(read_table(tmp_path, "utterances")) == 4


def test_a_table_without_rows_still_has_a_part_that_duckdb_reads(tmp_path):
    # A nightly check like `select count(*) from 'out/failures/*/*.parquet'` must not fail on a night without failures.
    _commit(tmp_path, _rows("a"))
    for table in TABLES:
        rows = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/{table}/*/*.parquet')").fetchall()[0][0]
        assert rows == (1 if table == "calls" else 2 if table == "utterances" else 0), table


def test_a_part_left_empty_by_replacement_is_removed(tmp_path):
    _commit(tmp_path, _rows("a"))
    _commit(tmp_path, _rows("a", score=1.0))
    assert len(part_files(tmp_path, "calls")) == len(part_files(tmp_path, "utterances")) == 1


def test_a_failure_replaces_older_failures_but_not_a_result(tmp_path):
    failure = Failure("a", "/calls/a.wav", "transcribe", "AudioError", "first")
    _commit(tmp_path, {"failures": [failure]})
    _commit(tmp_path, {"failures": [Failure("a", "/calls/a.wav", "transcribe", "AudioError", "second")]})
    assert [f.message for f in read_table(tmp_path, "failures")] == ["second"]
    _commit(tmp_path, _rows("a"))
    assert read_table(tmp_path, "failures") == []
    _commit(tmp_path, {"failures": [failure]})
    assert [c.call_id for c in read_table(tmp_path, "calls")] == ["a"]


def test_a_failure_without_call_id_is_replaced_by_path(tmp_path):
    _commit(tmp_path, {"failures": [Failure(None, "/calls/a.wav", "ingest", "PermissionError", "denied")]})
    _commit(tmp_path, _rows("a"))
    assert read_table(tmp_path, "failures") == []


def test_index_knows_committed_calls_and_their_keys(tmp_path):
    _commit(tmp_path, _rows("a", settings_key="s1", rubric_key="r1"))
    stored = Dataset(tmp_path).index()["a"]
    assert (stored.settings_key, stored.rubric_key, stored.status) == ("s1", "r1", "scored")


def test_staged_calls_of_a_killed_run_are_committed_by_the_next(tmp_path):
    killed = Dataset(tmp_path)
    with killed.locked():
        killed.stage(_rows("a"))
        killed.stage(_rows("b"))  # the run dies here: nothing committed
    assert read_table(tmp_path, "calls") == []
    survivor = Dataset(tmp_path)
    with survivor.locked():
        assert survivor.recover({}) == 2
    assert [c.call_id for c in read_table(tmp_path, "calls")] == ["a", "b"]
    assert not list((tmp_path / ".callqa" / "staging").rglob("*.pkl"))


def test_a_commit_cut_short_is_finished_without_duplicates(tmp_path):
    _commit(tmp_path, _rows("a"))
    cut = Dataset(tmp_path)
    with cut.locked():
        cut.stage(_rows("a", score=50.0))
        cut.stage(_rows("b"))
        cut.commit({})
    # Replay the state of a commit that died after writing its parts: its record and staged files back.
    record = {"part": _part_ref(part_files(tmp_path, "calls")[-1]), "staged": [], "metadata": {}}
    staging = tmp_path / ".callqa" / "staging" / cut.run_id
    staging.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate((_rows("a", score=50.0), _rows("b")), start=1):
        with atomic_file(staging / f"{i:07d}.pkl") as f:
            pickle.dump(rows, f)
        record["staged"].append(f"staging/{cut.run_id}/{i:07d}.pkl")
    (tmp_path / ".callqa" / "commits").mkdir(exist_ok=True)
    (tmp_path / ".callqa" / "commits" / f"{cut.run_id}-00001.json").write_text(json.dumps(record))
    survivor = Dataset(tmp_path)
    with survivor.locked():
        survivor.recover({})
    assert [(c.call_id, c.score) for c in read_table(tmp_path, "calls")] == [("a", 50.0), ("b", None)]
    assert len(read_table(tmp_path, "utterances")) == 4


def _part_ref(path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_second_writer_is_refused_with_a_clear_message(tmp_path):
    first = Dataset(tmp_path)
    with first.locked():
        with pytest.raises(DatasetLocked, match="another callqa run .*pid"):
            with Dataset(tmp_path).locked():
                pass
    with Dataset(tmp_path).locked():  # released when the first run ends
        pass


def test_leftover_temp_files_are_removed_and_never_read(tmp_path):
    _commit(tmp_path, _rows("a"))
    (part,) = part_files(tmp_path, "calls")
    (part.parent / f".{part.name}.abc.tmp").write_bytes(b"half a parquet file")
    assert [c.call_id for c in read_table(tmp_path, "calls")] == ["a"]
    with Dataset(tmp_path).locked():
        pass
    assert _hidden_or_temp(tmp_path) == []


def test_metadata_of_the_newest_part_comes_back_without_prefix(tmp_path):
    _commit(tmp_path, _rows("a"), metadata={"rubric_version": "1"})
    _commit(tmp_path, _rows("b"), metadata={"rubric_version": "2"})
    assert read_metadata(tmp_path, "calls") == {"rubric_version": "2"}


def test_a_failed_write_keeps_the_previous_part_and_no_temp_file(tmp_path):
    _commit(tmp_path, _rows("a"))
    with pytest.raises((pa.ArrowException, TypeError)):
        _commit(tmp_path, {"calls": [_call(None)]})  # type: ignore[arg-type]
    assert [c.call_id for c in read_table(tmp_path, "calls")] == ["a"]
    assert _hidden_or_temp(tmp_path) == []


def test_folders_of_callqa_0_1_are_migrated(tmp_path):
    legacy = tmp_path / "legacy"
    _commit(legacy, _rows("a"))
    shutil.copy(part_files(legacy, "calls")[0], tmp_path / "calls.parquet")
    with Dataset(tmp_path).locked():
        pass
    assert [c.call_id for c in read_table(tmp_path, "calls")] == ["a"] and not (tmp_path / "calls.parquet").exists()


def test_require_transcribed_names_the_transcribe_command_on_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="callqa transcribe"):
        require_transcribed(tmp_path)
