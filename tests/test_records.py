from __future__ import annotations

import dataclasses
from datetime import datetime

import pyarrow as pa
import pytest

from pipeline.records import TABLES, Call, Word, arrow_schema, from_arrow, to_arrow


@pytest.mark.parametrize("record_type", TABLES.values(), ids=TABLES.keys())
def test_arrow_schema_has_one_field_per_dataclass_field(record_type):
    schema = arrow_schema(record_type)
    assert schema.names == [f.name for f in dataclasses.fields(record_type)]


@pytest.mark.parametrize(
    ("name", "arrow_type", "nullable"),
    [
        ("call_id", pa.string(), False),
        ("duration_s", pa.float64(), True),
        ("channels", pa.int64(), True),
        ("call_time", pa.timestamp("us"), True),
        ("needs_review", pa.bool_(), False),
        ("pitch_first", pa.bool_(), True),
        ("n_words", pa.int64(), False),
    ],
)
def test_arrow_schema_derives_call_types_and_nullability(name, arrow_type, nullable):
    field = arrow_schema(Call).field(name)
    assert field.type == arrow_type
    assert field.nullable is nullable


def test_to_arrow_of_no_records_keeps_every_typed_column():
    table = to_arrow([], Word)
    assert table.num_rows == 0
    assert table.schema == arrow_schema(Word)
    assert table.schema.field("start_s").type == pa.float64()
    assert table.schema.field("utterance_idx").type == pa.int64()


def test_to_arrow_keeps_type_of_all_null_column():
    calls = [Call("a", "a.wav", "audio", None, None, None), Call("b", "b.wav", "audio", None, None, None)]
    table = to_arrow(calls, Call)
    assert table.schema.field("duration_s").type == pa.float64()
    assert table.column("duration_s").null_count == 2


def test_round_trip_returns_equal_records_with_nones_and_datetime():
    calls = [
        Call(
            call_id="c1",
            source_path="/x/c1.wav",
            source_kind="audio",
            duration_s=83.97,
            channels=2,
            sample_rate=16000,
            agent_id="joe",
            call_time=datetime(2026, 11, 23, 9, 30, 0, 123456),
            needs_review=True,
            pitch_first=False,
            score=87.5,
        ),
        Call("c2", "/x/c2.json", "transcript", None, None, None),
    ]
    words = [Word("c1", 0, 1, "ch1", 0.5, 0.9, "hello", 0.98), Word("c1", 1, 0, "ch0", 1.0, 1.2, "hi", 0.5, 3)]
    assert from_arrow(to_arrow(calls, Call), Call) == calls
    assert from_arrow(to_arrow(words, Word), Word) == words
