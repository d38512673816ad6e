"""The whole pipeline with the real faster-whisper and spaCy models on data/sample/."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import jiwer
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_DIR, load_expected, load_script, sample_names

from pipeline.evaluate import TARGETS, evaluate_run, summary
from pipeline.records import TABLES, arrow_schema
from pipeline.rttm import parse_rttm
from pipeline.store import part_files, read_metadata, read_table

SAMPLES = sample_names()
STEREO = [n for n in SAMPLES if load_script(n)["channels"] == 2]  # each has a mono twin, NAME_mono
# What Whisper tiny.en cannot hear on the 8 kHz, 24 kbit/s Opus mono mixes, or what a
# single-label diarizer cannot represent. Each is checked to be still missed, so this list
# cannot outlive a fix.
KNOWN_MISSES = {
    "angry_customer_mono": {
        "empathy.feel_the_same": "heard as '... same way.'",
        "ownership.ill_take_care": "heard as 'how they care of this for you'",
    },
    # "how can I tell you today?" was the offer of help by the classifier alone until December 7; now it gives 0.48 (the
    # n-grams 0.99, the encoder, with a 0.7 share, 0.26)
    "next_steps_mono": {"next_steps.recap": "'just to recap' heard as 'just a recap'",
                        "opening.offer_help": "'how can I help you today' heard as 'how can I tell you today'"},
    "interruptions_mono": {"interruptions.agent_barge_in": "overlapping speech is folded into one speaker on mono"},
}
MAX_WER = 0.35  # tiny.en on synthetic telephone speech; measured 0.08-0.24 per call


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def calls_by_name(out_dir: Path) -> dict:
    return {Path(c.source_path).name.split(".")[0]: c for c in read_table(out_dir, "calls")}


def of_call(out_dir: Path, table: str, call_id: str) -> list:
    return [r for r in read_table(out_dir, table) if r.call_id == call_id]


def test_every_sample_call_is_processed(sample_run):
    assert sorted(calls_by_name(sample_run)) == SAMPLES
    assert read_table(sample_run, "failures") == []


@pytest.mark.parametrize("table", sorted(TABLES))
def test_tables_have_the_schema_of_their_record(sample_run, table):
    parts = part_files(sample_run, table)
    assert parts  # a table without rows (failures here) has an empty part with its schema
    for part in parts:
        assert pq.read_schema(part).remove_metadata() == arrow_schema(TABLES[table])


def test_tables_carry_the_effective_options_rubric_and_model(sample_run):
    meta = read_metadata(sample_run, "calls")
    assert meta["rubric_version"] and '"batch_size": 8' in meta["options"]
    assert "bundled:tiny.en" in meta["model"]


@pytest.mark.parametrize("name", SAMPLES)
def test_transcript_is_close_to_the_script(sample_run, name):
    call = calls_by_name(sample_run)[name]
    reference = normalise(" ".join(t["text"] for t in load_script(name)["turns"]))
    hypothesis = normalise(" ".join(u.text for u in of_call(sample_run, "utterances", call.call_id)))
    assert jiwer.wer(reference, hypothesis) <= MAX_WER


@pytest.fixture(scope="module")
def evaluation(sample_run):
    return {e.name: e for e in evaluate_run(sample_run, SAMPLE_DIR)}


@pytest.mark.parametrize("name", SAMPLES)
def test_roles_are_right_on_every_call(evaluation, name):
    assert evaluation[name].roles_right
    assert evaluation[name].n_speakers == evaluation[name].n_speakers_ref


def test_two_speaker_mono_calls_meet_the_der_target(evaluation):
    assert summary(list(evaluation.values()))["der_two_speaker_mono"] <= TARGETS["der_two_speaker_mono"]


def test_agent_talk_share_is_close_to_the_reference(evaluation):
    errors = {e.name: e.talk_share_error for e in evaluation.values() if e.n_speakers_ref == 2}
    assert sum(errors.values()) / len(errors) <= TARGETS["talk_share_error"]
    assert max(errors.values()) <= 0.04, errors  # measured 0.032 at worst (poor_opening_mono); target 0.03


@pytest.mark.parametrize("name", ["transfer", "three_way"])
def test_three_speaker_calls_are_split_into_three_speakers(sample_run, name):
    call = calls_by_name(sample_run)[name]
    assert (call.diarization_mode, call.n_speakers) == ("embedding", 3)


@pytest.mark.parametrize("name", STEREO)
def test_mono_twin_gets_the_same_roles_talk_ratio_and_findings(sample_run, name):
    calls = calls_by_name(sample_run)
    stereo, mono = calls[name], calls[f"{name}_mono"]
    assert mono.diarization_mode == "embedding" and not mono.needs_review
    assert abs(mono.agent_talk_share - stereo.agent_talk_share) <= 0.05
    vocabulary = set(load_expected(name)["present"]) | set(load_expected(name)["absent"])

    def fired(call):
        return {f.rule_id for f in of_call(sample_run, "findings", call.call_id) if f.kind in ("hit", "flag")} & vocabulary

    assert fired(mono) == fired(stereo) - set(KNOWN_MISSES.get(f"{name}_mono", {}))


def test_every_call_has_its_speaker_timeline_as_rttm(sample_run):
    for call in read_table(sample_run, "calls"):
        turns = parse_rttm((sample_run / "rttm" / f"{call.call_id}.rttm").read_text())
        assert len({t.speaker for t in turns}) == call.n_speakers


@pytest.mark.parametrize("name", SAMPLES)
def test_expected_findings_appear(sample_run, name):
    call = calls_by_name(sample_run)[name]
    expected = load_expected(name)
    fired = {f.rule_id for f in of_call(sample_run, "findings", call.call_id) if f.kind in ("hit", "flag")}
    known = set(KNOWN_MISSES.get(name, {}))
    assert set(expected["present"]) - fired == known
    assert set(expected["absent"]) & fired == set()
    assert call.needs_review is expected["needs_review"]


def test_pitch_first_call_is_flagged_and_good_call_is_not(sample_run):
    calls = calls_by_name(sample_run)
    assert calls["pitch_first"].pitch_first is True
    assert calls["good_call"].pitch_first is False
    assert calls["good_call"].score > calls["pitch_first"].score


def test_findings_point_at_the_words_they_quote(sample_run):
    good = calls_by_name(sample_run)["good_call"]
    words = of_call(sample_run, "words", good.call_id)
    for f in (f for f in of_call(sample_run, "findings", good.call_id) if f.kind == "hit"):
        spoken = " ".join(w.text for w in words if f.start_s <= w.start_s and w.end_s <= f.end_s)
        assert normalise(f.text).split()[0] in normalise(spoken), f.rule_id


def test_duckdb_queries_the_parquet_tables(sample_run):
    con = duckdb.connect()
    rows = con.execute(
        f"""
        SELECT c.source_path, count(*) AS n_evidence
        FROM read_parquet('{sample_run}/calls/*/*.parquet') c
        JOIN read_parquet('{sample_run}/findings/*/*.parquet') f USING (call_id)
        WHERE f.criterion = 'opening' AND f.kind = 'hit'
        GROUP BY c.source_path
        """
    ).fetchall()
    assert len(rows) >= 5 and all(n > 0 for _, n in rows)
    n_words = con.execute(f"SELECT count(*) FROM read_parquet('{sample_run}/words/*/*.parquet')").fetchone()[0]
    assert n_words == sum(c.n_words for c in read_table(sample_run, "calls"))
