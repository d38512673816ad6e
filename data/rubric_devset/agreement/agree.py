"""How far three blind annotators agree with the set's authors on 600 dev rows, label by label.

usage: python data/rubric_devset/agreement/agree.py   (from the repository root)

sample.tsv maps the annotators' row ids (r000...) to the set's ids; annotatorN.txt hold their labels
(`row|label,label`), written from BRIEF.md alone without the authors' labels.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from pipeline.rubric_eval import LABELS, LabelScore, load_devset

HERE = Path(__file__).parent


def _labels(path: Path) -> dict[str, set[str]]:
    rows = (line.split("|", 1) for line in path.read_text().splitlines() if line.strip())
    return {row: {label for label in labels.split(",") if label} for row, labels in rows}


def f1(predicted: list[bool], gold: list[bool]) -> float:
    return LabelScore.of("", "dev", predicted, gold).f1


def main() -> None:
    by_id = {row["id"]: row for row in load_devset()}
    sample = [line.split("\t") for line in (HERE / "sample.tsv").read_text().splitlines()[1:]]
    rows = [(key, by_id[set_id]) for key, set_id in sample]
    annotators = [_labels(path) for path in sorted(HERE.glob("annotator*.txt"))]
    print(f"{'label':22s} {'n':>4s}  annotator vs author (each)  majority vs author  annotator vs annotator")
    totals: dict[str, list[float]] = {"each": [], "majority": [], "pairs": []}
    for label, (role, _) in LABELS.items():
        judged = [(key, row) for key, row in rows if role in ("any", row["role"])]
        gold = [label in row["labels"] for _, row in judged]
        given = [[label in annotator[key] for key, _ in judged] for annotator in annotators]
        majority = [sum(votes) * 2 > len(votes) for votes in zip(*given, strict=True)]
        each = [f1(g, gold) for g in given]
        pairs = [f1(a, b) for a, b in combinations(given, 2)]
        totals["each"].append(sum(each) / len(each))
        totals["majority"].append(f1(majority, gold))
        totals["pairs"].append(sum(pairs) / len(pairs))
        print(f"{label:22s} {sum(gold):4d}  {' / '.join(f'{f:.2f}' for f in each):>26s}  {f1(majority, gold):17.2f}  {totals['pairs'][-1]:22.2f}")
    print("macro F1: " + ", ".join(f"{name} {sum(v) / len(v):.3f}" for name, v in totals.items()))


if __name__ == "__main__":
    main()
