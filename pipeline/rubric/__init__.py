"""The rubric: criteria and patterns loaded from data, validated with errors that name the fix."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import RubricError

DEFAULT_RUBRIC = Path(__file__).parent / "default.toml"

# The parameters each kind of criterion needs, and the ones it may take.
KIND_PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "talk_ratio": (frozenset({"band"}), frozenset()),
    "count": (frozenset({"target"}), frozenset()),
    "elements": (frozenset({"elements"}), frozenset({"optional", "window_sentences", "min_sentence_words"})),
    "discovery": (frozenset({"min_questions", "pitch_marker"}), frozenset({"not_discovery"})),
    "interruptions": (frozenset({"max_allowed", "min_overlap_s", "backchannels"}), frozenset()),
}
ROLES = ("agent", "customer")


@dataclass(frozen=True)
class Example:
    """A text and what must fire on it: rule ids, or a question type (`open`/`closed`)."""

    text: str
    rules: tuple[str, ...] = ()
    question: str | None = None


@dataclass(frozen=True)
class Criterion:
    name: str
    kind: str
    role: str
    weight: float
    description: str
    source: str
    params: Mapping[str, object]
    examples: tuple[Example, ...] = ()
    counterexamples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    version: str
    path: Path
    criteria: tuple[Criterion, ...]
    patterns: tuple[dict, ...] = field(repr=False)
    markers: tuple[str, ...] = ()

    def rule_ids(self, label: str | None = None) -> set[str]:
        return {p["id"] for p in self.patterns if label is None or p["label"] == label}


def _fail(path: Path, where: str, problem: str, fix: str) -> RubricError:
    return RubricError(f"{path}: {where}: {problem}. Fix: {fix}.")


def _load_patterns(rubric_path: Path, pattern_file: str, labels: set[str]) -> list[dict]:
    path = (rubric_path.parent / pattern_file).resolve()
    if not path.is_file():
        raise _fail(rubric_path, "patterns", f"pattern file {pattern_file} does not exist", "correct the path (relative to the rubric file)")
    patterns = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pattern = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, f"line {line_no}", f"not valid JSON ({exc.msg})", "write one JSON object per line") from None
        missing = {"label", "id", "pattern"} - set(pattern)
        if missing:
            fix = 'give every pattern a "label" (criterion), an "id" (rule) and a "pattern"'
            raise _fail(path, f"line {line_no}", f"missing {sorted(missing)}", fix)
        if not isinstance(pattern["label"], str) or not isinstance(pattern["id"], str):
            raise _fail(path, f"line {line_no}", "label and id must be strings", 'write e.g. "label": "empathy", "id": "empathy.my_rule"')
        if pattern["label"] not in labels:
            raise _fail(path, f"line {line_no}", f"label {pattern['label']!r} is not a criterion or marker", f"use one of {sorted(labels)}")
        if not pattern["id"].startswith(pattern["label"] + "."):
            label = pattern["label"]
            raise _fail(path, f"line {line_no}", f"rule id {pattern['id']!r} is not namespaced", f"start it with {label!r}, e.g. {label}.my_rule")
        patterns.append(pattern)
    return patterns


def _examples(path: Path, name: str, raw: Mapping) -> tuple[tuple[Example, ...], tuple[str, ...]]:
    try:
        examples = tuple(
            Example(text=e["text"], rules=tuple(e.get("rules", ())), question=e.get("question"))
            for e in raw.get("match", ())
        )
    except (KeyError, TypeError):
        raise _fail(path, f"criteria.{name}.examples.match", "an example is malformed", 'write { text = "...", rules = ["rule.id"] }') from None
    return examples, tuple(raw.get("no_match", ()))


def _criterion(path: Path, name: str, raw: Mapping) -> Criterion:
    where = f"criteria.{name}"
    kind = raw.get("kind")
    if kind not in KIND_PARAMS:
        raise _fail(path, where, f"unknown kind {kind!r}", f"use one of {sorted(KIND_PARAMS)}")
    role = raw.get("role", "agent")
    if role not in ROLES:
        raise _fail(path, where, f"role {role!r} is not valid", f"use one of {list(ROLES)}")
    weight = raw.get("weight")
    if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
        raise _fail(path, where, f"weight {weight!r} is not a non-negative number", "set weight = 1.0 (0 reports the criterion without scoring it)")
    params = raw.get("params", {})
    required, optional = KIND_PARAMS[kind]
    if missing := required - set(params):
        raise _fail(path, f"{where}.params", f"missing {sorted(missing)} for kind {kind!r}", f"add {sorted(missing)}")
    if unknown := set(params) - required - optional:
        raise _fail(path, f"{where}.params", f"unknown {sorted(unknown)} for kind {kind!r}", f"remove them; valid are {sorted(required | optional)}")
    examples, counterexamples = _examples(path, name, raw.get("examples", {}))
    return Criterion(
        name=name,
        kind=kind,
        role=role,
        weight=float(weight),
        description=raw.get("description", ""),
        source=raw.get("source", ""),
        params=params,
        examples=examples,
        counterexamples=counterexamples,
    )


def _check_rule_references(rubric: Rubric) -> None:
    known = rubric.rule_ids()
    for c in rubric.criteria:
        named = list(c.params.get("elements", ())) + list(c.params.get("optional", ())) + [r for e in c.examples for r in e.rules]
        if unknown := [r for r in named if r not in known]:
            raise _fail(rubric.path, f"criteria.{c.name}", f"rule ids {unknown} have no pattern", "add patterns with these ids or correct the ids")
        marker = c.params.get("pitch_marker")
        if marker is not None and marker not in rubric.markers:
            raise _fail(rubric.path, f"criteria.{c.name}.params", f"pitch_marker {marker!r} is not declared", f"add {marker!r} to markers")


def load_rubric(path: Path | None = None) -> Rubric:
    """Load and validate a rubric TOML file (the bundled default when `path` is None)."""
    path = (path or DEFAULT_RUBRIC).resolve()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise _fail(path, "file", "the rubric file does not exist", "pass --rubric with an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, "file", f"not valid TOML ({exc})", "check the syntax at that line") from None
    if not isinstance(data.get("version"), str):
        raise _fail(path, "version", "missing or not a string", 'add version = "YYYY.MM.N" at the top')
    if not data.get("criteria"):
        raise _fail(path, "criteria", "no criteria defined", "add at least one [criteria.NAME] table")
    criteria = tuple(_criterion(path, name, raw) for name, raw in data["criteria"].items())
    markers = tuple(data.get("markers", ()))
    labels = {c.name for c in criteria} | set(markers)
    patterns = tuple(p for f in data.get("patterns", ()) for p in _load_patterns(path, f, labels))
    rubric = Rubric(version=data["version"], path=path, criteria=criteria, patterns=patterns, markers=markers)
    _check_rule_references(rubric)
    return rubric
