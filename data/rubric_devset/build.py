"""Builds devset.jsonl from utterances.txt and utterances_dev2.txt: validates every label and splits.

Run from anywhere: python data/rubric_devset/build.py. utterances.txt (ids u0000...) is split
70/30 with a fixed seed, decided once from the utterance text alone; utterances_dev2.txt (ids
d0000..., added later, see README) is dev only, so adding it leaves every earlier row's id and
split as they were. The rules are tuned on `dev` and only measured on `test`.
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


def parse(path: Path, texts: set[tuple[str, str]]) -> list[dict]:
    """The rows of one utterance file; `texts` collects (role, text) across files to reject duplicates."""
    rows = []
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
    texts: set[tuple[str, str]] = set()
    rows = parse(HERE / "utterances.txt", texts)
    added = parse(HERE / "utterances_dev2.txt", texts)
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    n_test = round(TEST_SHARE * len(rows))
    test = set(order[:n_test])
    with (HERE / "devset.jsonl").open("w") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({"id": f"u{i:04d}", "split": "test" if i in test else "dev", **row}) + "\n")
        for i, row in enumerate(added):
            f.write(json.dumps({"id": f"d{i:04d}", "split": "dev", **row}) + "\n")
    print(f"{len(rows) + len(added)} utterances: {len(rows) - n_test} + {len(added)} added dev, {n_test} test")


if __name__ == "__main__":
    main()
