"""The redaction stage: spoken forms, the agent's greeting name, words and spans, options, and
customer text kept out of logs and error messages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipeline.options import Options, RedactOptions
from pipeline.records import Call, Utterance, Word
from pipeline.runner import score_transcripts
from pipeline.stages.redact import Redactor, redact, redact_text, redacted_spans, spoken_digits
from pipeline.store import read_table


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactOptions())


def _utterances(*turns: tuple[str, str]) -> list[Utterance]:
    return [Utterance("c1", i, role, role, None, None, None, text, len(text.split())) for i, (role, text) in enumerate(turns)]


def _redacted(redactor: Redactor, *turns: tuple[str, str]) -> list[str]:
    utterances = _utterances(*turns)
    spans = redactor.detect(utterances)
    return [redact_text(u.text, [s for s in spans if s.utt == i]) for i, u in enumerate(utterances)]


@pytest.mark.parametrize(("spoken", "digits"), [
    ("four one one one", "4111"),
    ("double five oh three", "5503"),
    ("triple seven", "777"),
    ("twenty three", "23"),
    ("nineteen eighty two", "1982"),
    ("eight hundred", "800"),
    ("one hundred five", "105"),
    ("5551234", "5551234"),
])
def test_spoken_digits(spoken: str, digits: str) -> None:
    assert spoken_digits(spoken.split()) == digits


@pytest.mark.parametrize(("text", "expected"), [
    ("My card number is four one one one, one one one one, one one one one, one one one one.", "My card number is [CARD_NUMBER]."),
    ("My card number is 4111 1111 1111 1111.", "My card number is [CARD_NUMBER]."),
    ("My social is one two three, four five, six seven eight nine.", "My social is [US_SSN]."),
    ("You can reach me at five five five, eight six seven, five three oh nine.", "You can reach me at [PHONE_NUMBER]."),
    ("The account number is double five oh three two one nine eight.", "The account number is [ACCOUNT_NUMBER]."),
    ("My email is j dot smith at gmail dot com.", "My email is [EMAIL_ADDRESS]."),
    ("I live at 12 Maple Street apartment 4B.", "I live at [STREET_ADDRESS]."),
    ("My date of birth is March fifth, nineteen eighty two.", "My date of birth is [DATE_OF_BIRTH]."),
    ("Hi, my name is Maria Lopez and I'm calling about my bill.", "Hi, my name is [PERSON] and I'm calling about my bill."),
])
def test_planted_forms_are_redacted_with_their_type(redactor: Redactor, text: str, expected: str) -> None:
    assert _redacted(redactor, ("customer", text)) == [expected]


@pytest.mark.parametrize("text", [
    "My order number is 55512345 and it cost $49.99 for 3 units.",
    "The technician can come at three thirty or at 9:45.",
    "The bill is due on March 15th.",
    "The model number is XR-200 and the part number is A12-7730.",
])
def test_clean_utterances_stay_intact(redactor: Redactor, text: str) -> None:
    assert _redacted(redactor, ("customer", text)) == [text]


def test_card_split_across_the_customers_turns(redactor: Redactor) -> None:
    got = _redacted(redactor, ("customer", "My card number is four one one one one one one one"), ("agent", "Okay."),
                    ("customer", "one one one one one one one one."))
    assert got == ["My card number is [CARD_NUMBER]", "Okay.", "[CARD_NUMBER]."]


def test_agent_greeting_name_kept_customer_name_redacted(redactor: Redactor) -> None:
    got = _redacted(redactor, ("agent", "Thank you for calling Northwind Internet, my name is Joe. How can I help?"),
                    ("customer", "Hi Joe, this is Priya Sharma."), ("agent", "Thanks, Priya."))
    assert got == ["Thank you for calling Northwind Internet, my name is Joe. How can I help?", "Hi Joe, this is [PERSON].",
                   "Thanks, [PERSON]."]


def test_agent_name_redacted_when_not_kept() -> None:
    redactor = Redactor(RedactOptions(keep_agent_name=False, entities=("PERSON",)))
    assert _redacted(redactor, ("agent", "Thank you for calling, my name is Joe."))[0] == "Thank you for calling, my name is [PERSON]."


def test_only_chosen_entities_are_redacted() -> None:
    redactor = Redactor(RedactOptions(entities=("US_SSN",)))
    got = _redacted(redactor, ("customer", "My social is 123-45-6789 and my phone is 555 867 5309."))
    assert got == ["My social is [US_SSN] and my phone is 555 867 5309."]


def test_disabled_redactor_loads_nothing_and_changes_nothing() -> None:
    redactor = Redactor(RedactOptions(enabled=False))
    utterances = _utterances(("customer", "My social is 123-45-6789."))
    assert redactor.analyzer is None
    call = Call("c1", "x.json", "transcript", None, None, None)
    assert redact(call, utterances, [], redactor) == (call, utterances, [])


def test_words_get_the_tag_and_spans_have_their_times(redactor: Redactor) -> None:
    texts = ["My", "social", "is", "123", "45", "6789.", "Thanks."]
    words = [Word("c1", i, 1, "ch1", i * 0.5, i * 0.5 + 0.4, t, 0.9, utterance_idx=0) for i, t in enumerate(texts)]
    utterance = Utterance("c1", 0, "ch1", "customer", 1, 0.0, 3.4, " ".join(texts), len(texts))
    call = Call("c1", "x.wav", "audio", 3.4, 2, 16000)
    call, utterances, words = redact(call, [utterance], words, redactor)
    assert utterances[0].text == "My social is [US_SSN]. Thanks."
    assert [w.text for w in words] == ["My", "social", "is", "[US_SSN]", "[US_SSN]", "[US_SSN].", "Thanks."]
    assert call.redactions == 1
    assert redacted_spans(words) == [(1.5, 2.9, "US_SSN")]


CANARY = "Zebulon Quixotic"


def test_transcript_text_stays_out_of_logs_and_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = {"utterances": [
        {"speaker": "Agent", "text": "Thank you for calling, my name is Joe. How can I help?"},
        {"speaker": "Customer", "text": f"Hi, my name is {CANARY}. My card number is 4111 1111 1111 1111."},
    ]}
    bad = {"utterances": [{"speaker": "Customer", "text": f"{CANARY} again", "start_s": "soon"}]}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.json").write_text(json.dumps(good))
    (tmp_path / "in" / "bad.json").write_text(json.dumps(bad))
    with caplog.at_level(logging.WARNING):
        summary = score_transcripts([tmp_path / "in"], tmp_path / "out", Options())
    assert summary.n_failed == 1 and summary.n_done == 1
    assert caplog.records, "the failing transcript should have been logged"
    assert CANARY not in caplog.text and "Zebulon" not in caplog.text
    failures = read_table(tmp_path / "out", "failures")
    assert all("Zebulon" not in f.message for f in failures)
    texts = " ".join(u.text for u in read_table(tmp_path / "out", "utterances"))
    assert "Zebulon" not in texts and "4111" not in texts and "[CARD_NUMBER]" in texts and "[PERSON]" in texts
    assert read_table(tmp_path / "out", "calls")[0].redactions == 2


def test_cli_rejects_unknown_entities_with_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    (tmp_path / "t.json").write_text(json.dumps([{"speaker": "Agent", "text": "Hello."}]))
    result = CliRunner().invoke(app, ["score", str(tmp_path / "t.json"), "--out", str(tmp_path / "out"), "--redact-entities", "IBAN"])
    assert result.exit_code == 2 and "IBAN" in result.output and "CARD_NUMBER" in result.output
