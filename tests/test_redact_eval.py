"""`make eval-pii` as a test: the redaction meets its targets on the generated set."""

from __future__ import annotations

from pipeline.options import RedactOptions
from pipeline.redaction_eval import DATA, evaluate, load, rows, unmet
from pipeline.stages.redact import Redactor


def test_redaction_meets_its_targets_on_the_generated_set() -> None:
    items = load(DATA, "all")
    assert sum(len(i["turns"]) for i in items) >= 300
    assert {i["kind"] for i in items} >= {r["entity"] for r in rows(evaluate([], Redactor(RedactOptions(enabled=False))))}
    tally = evaluate(items, Redactor(RedactOptions()))
    assert unmet(tally) == [], "\n".join(tally.misses + tally.false_alarms)
