"""Builds devset.jsonl from utterances.txt: validates every label and splits 70/30 (fixed seed).

Run from anywhere: python data/rubric_devset/build.py. The split is decided here, once, from
the utterance text alone; the rules are tuned on `dev` and only measured on `test`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261123
TEST_SHARE = 0.3
ROLES = {"a": "agent", "c": "customer"}
# Which speaker each label describes; a label is judged only on utterances of that role.
LABEL_ROLES = {
    "question_open": "any", "question_closed": "any", "competitor_mention": "any",
    "escalation_request": "customer",
    **dict.fromkeys([
        "challenge_question", "relationship_question", "acknowledgement", "empathy", "courtesy", "blame_dismissive",
        "ownership", "deflection", "greeting", "agent_name", "company", "offer_help", "pitch", "commitment_time",
        "customer_action", "recap", "attendance", "escalation", "over_promise", "just_checking_in",
    ], "agent"),
}


def parse(path: Path) -> list[dict]:
    rows, texts = [], set()
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        role, labels, text = line.split("|", 2)
        labels = sorted(filter(None, labels.split(",")))
        for label in labels:
            if label not in LABEL_ROLES:
                raise SystemExit(f"{path}:{line_no}: unknown label {label!r}")
            if LABEL_ROLES[label] not in ("any", ROLES[role]):
                raise SystemExit(f"{path}:{line_no}: {label!r} describes the {LABEL_ROLES[label]}, not the {ROLES[role]}")
        if (role, text) in texts:
            raise SystemExit(f"{path}:{line_no}: duplicate utterance {text!r}")
        texts.add((role, text))
        rows.append({"role": ROLES[role], "text": text, "labels": labels})
    return rows


def main() -> None:
    rows = parse(HERE / "utterances.txt")
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    n_test = round(TEST_SHARE * len(rows))
    test = set(order[:n_test])
    with (HERE / "devset.jsonl").open("w") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({"id": f"u{i:04d}", "split": "test" if i in test else "dev", **row}) + "\n")
    print(f"{len(rows)} utterances: {len(rows) - n_test} dev, {n_test} test")


if __name__ == "__main__":
    main()
