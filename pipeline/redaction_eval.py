"""`make eval-pii`: recall and precision of the redaction per entity type on data/pii_eval/.

    python -m pipeline.redaction_eval [--data data/pii_eval/pii_eval.jsonl] [--split dev|test|all] [--json out.json]

A planted entity is *found* when every letter and digit of it (all its parts, when it is
split across turns) lies inside a redacted span, and a span over it carries its type; it is
*covered* when it is fully redacted whatever the type (no leak). A redacted span is *right*
when it overlaps a planted entity of its type. A clean utterance (one with nothing planted)
is *changed* when any span was redacted in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.options import REDACT_ENTITIES, RedactOptions
from pipeline.records import Utterance
from pipeline.stages.redact import Redactor, Span

DATA = Path(__file__).resolve().parent.parent / "data" / "pii_eval" / "pii_eval.jsonl"
TARGET_RECALL = {"CARD_NUMBER": 0.99, "US_SSN": 0.99}
DEFAULT_RECALL = 0.95
MAX_CLEAN_CHANGED = 0.02


@dataclass
class Tally:
    planted: Counter = field(default_factory=Counter)
    found: Counter = field(default_factory=Counter)
    covered: Counter = field(default_factory=Counter)
    predicted: Counter = field(default_factory=Counter)
    right: Counter = field(default_factory=Counter)
    clean: int = 0
    clean_changed: int = 0
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)


def load(path: Path = DATA, split: str = "all") -> list[dict]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [i for i in items if split == "all" or i["split"] == split]


def utterances_of(item: dict) -> list[Utterance]:
    return [
        Utterance(call_id=item["id"], utterance_idx=k, speaker=t["speaker"], role=t["role"], channel=None, start_s=None,
                  end_s=None, text=t["text"], n_words=len(t["text"].split()))
        for k, t in enumerate(item["turns"])
    ]


def _covered(text: str, start: int, end: int, spans: list[Span]) -> bool:
    return all(any(s.start <= k < s.end for s in spans) for k in range(start, end) if text[k].isalnum())


def score_item(item: dict, spans: list[Span], tally: Tally) -> None:
    turns = item["turns"]
    parts: dict[int, list[tuple[int, dict]]] = {}
    for k, turn in enumerate(turns):
        for e in turn["entities"]:
            parts.setdefault(e["id"], []).append((k, e))
    for entity_parts in parts.values():
        entity = entity_parts[0][1]["type"]
        tally.planted[entity] += 1
        covered = all(_covered(turns[k]["text"], e["start"], e["end"], [s for s in spans if s.utt == k]) for k, e in entity_parts)
        typed = all(any(s.utt == k and s.start < e["end"] and e["start"] < s.end and s.entity == entity for s in spans)
                    for k, e in entity_parts)
        tally.covered[entity] += covered
        tally.found[entity] += covered and typed
        if not (covered and typed):
            said = " | ".join(turns[k]["text"][e["start"]: e["end"]] for k, e in entity_parts)
            got = [(s.entity, turns[s.utt]["text"][s.start: s.end]) for s in spans if any(s.utt == k for k, _ in entity_parts)]
            tally.misses.append(f"{item['id']} {entity}: {said!r} -> {got}")
    for s in spans:
        tally.predicted[s.entity] += 1
        right = any(e["type"] == s.entity and s.start < e["end"] and e["start"] < s.end for e in turns[s.utt]["entities"])
        tally.right[s.entity] += right
        if not right:
            tally.false_alarms.append(f"{item['id']} {s.entity}: {turns[s.utt]['text'][s.start: s.end]!r} in {turns[s.utt]['text']!r}")
    for k, turn in enumerate(turns):
        if not turn["entities"]:
            tally.clean += 1
            tally.clean_changed += any(s.utt == k for s in spans)


def evaluate(items: list[dict], redactor: Redactor) -> Tally:
    tally = Tally()
    for item in items:
        score_item(item, redactor.detect(utterances_of(item)), tally)
    return tally


def rows(tally: Tally) -> list[dict]:
    out = []
    for entity in REDACT_ENTITIES:
        planted, predicted = tally.planted[entity], tally.predicted[entity]
        out.append({
            "entity": entity,
            "planted": planted,
            "recall": tally.found[entity] / planted if planted else None,
            "no_leak": tally.covered[entity] / planted if planted else None,
            "precision": tally.right[entity] / predicted if predicted else None,
            "target_recall": TARGET_RECALL.get(entity, DEFAULT_RECALL),
        })
    return out


def clean_changed_share(tally: Tally) -> float:
    return tally.clean_changed / tally.clean if tally.clean else 0.0


def unmet(tally: Tally) -> list[str]:
    """The targets this tally misses, in words (empty when all are met)."""
    problems = [
        f"{r['entity']} recall {r['recall']:.3f} < {r['target_recall']}" for r in rows(tally)
        if r["recall"] is not None and r["recall"] < r["target_recall"]
    ]
    if clean_changed_share(tally) > MAX_CLEAN_CHANGED:
        problems.append(f"clean utterances changed {clean_changed_share(tally):.3f} > {MAX_CLEAN_CHANGED}")
    return problems


def table(tally: Tally, title: str) -> str:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    lines = [f"{title}", "| entity | planted | recall | no leak | precision | target recall |", "|---|---|---|---|---|---|"]
    for r in rows(tally):
        lines.append(f"| {r['entity']} | {r['planted']} | {fmt(r['recall'])} | {fmt(r['no_leak'])} | {fmt(r['precision'])} | "
                     f"{r['target_recall']} |")
    lines.append(f"clean utterances changed: {tally.clean_changed}/{tally.clean} = {clean_changed_share(tally):.3f} "
                 f"(target <= {MAX_CLEAN_CHANGED})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", choices=["dev", "test", "all"], default=None, help="one part only (default: dev and test apart)")
    parser.add_argument("--errors", action="store_true", help="list every miss and false alarm (synthetic data only)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    redactor = Redactor(RedactOptions())
    splits = [args.split] if args.split else ["dev", "test", "all"]
    results = {}
    for split in splits:
        items = load(args.data, split)
        tally = evaluate(items, redactor)
        title = {"dev": "dev (the rules were tuned on it)", "test": "test (held out)", "all": "whole set"}[split]
        print(table(tally, f"\n{title}: {len(items)} dialogues, {sum(len(i['turns']) for i in items)} utterances"))
        if args.errors:
            print("\n".join(["misses:", *tally.misses, "false alarms:", *tally.false_alarms]))
        results[split] = {"rows": rows(tally), "clean_changed": clean_changed_share(tally), "unmet": unmet(tally)}
        print("targets met" if not unmet(tally) else "targets not met: " + "; ".join(unmet(tally)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if not results[splits[-1]]["unmet"] else 1  # the whole set (or the one part asked for) decides

if __name__ == "__main__":
    sys.exit(main())
