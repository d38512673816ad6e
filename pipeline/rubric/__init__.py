"""The rubric: criteria and patterns loaded from data, validated with errors that name the fix.

A rubric file may say `extends = "default"` (or a path to another rubric): its criteria are
merged key by key over the base's (a criterion table replaces only the keys it names),
its pattern files are added, and `remove = ["criterion"]` drops base criteria.
Per-rule constraints live in `[rules."rule.id"]` tables (see RULE_KEYS).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import RubricError
from pipeline.rubric.classifier import RULE_SUFFIX, ClassifierConfig, TrainingExample

DEFAULT_RUBRIC = Path(__file__).parent / "default.toml"

# The parameters each kind of criterion needs, and the ones it may take.
KIND_PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "talk_ratio": (frozenset({"band"}), frozenset({"band_by_team", "quick_response_s"})),
    "count": (frozenset({"target"}), frozenset({"labels"})),
    "balance": (frozenset({"target", "positive", "negative"}), frozenset({"penalty"})),
    "never": (frozenset({"max_allowed"}), frozenset({"labels"})),
    "elements": (frozenset({"elements"}), frozenset({
        "optional", "window_sentences", "min_sentence_words", "window_turns", "window_seconds", "window_from",
    })),
    "discovery": (frozenset({"min_questions", "pitch_marker"}), frozenset({"not_discovery"})),
    "interruptions": (frozenset({"max_allowed", "min_overlap_s", "backchannels"}), frozenset()),
    "escalation": (frozenset({"trigger", "within_turns"}), frozenset({"trigger_sentiment_below"})),
    "sentiment": (frozenset({"min_end"}), frozenset({"max_drop"})),
    "mentions": (frozenset({"names", "max_agent_mentions"}), frozenset()),
}
ROLES = ("agent", "customer", "any")
# Constraints a rule's hits must meet, beyond its spaCy pattern. Labels refer to criteria or markers.
RULE_KEYS = {
    "only_in_question": bool,  # the sentence must be a question (the tagger decides when there is no "?")
    "not_in_question": bool,  # the sentence must not be a question
    "requires_in_sentence": list,  # another label must fire in the same sentence
    "unless_in_sentence": list,  # ...must not fire in the same sentence
    "unless_in_clause": list,  # ...must not fire in the same clause (a sentence splits at "but", "so", "because", ...)
    "unless_in_turn": list,  # ...must not fire anywhere in the same utterance
    "unless_negated": bool,  # no "not", "n't", "never", "no" in the 3 words before the hit
}


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

    def labels(self) -> tuple[str, ...]:
        """The pattern labels whose hits this criterion reads."""
        return tuple(self.params.get("labels", (self.name,)))

    def reads(self) -> set[str]:
        """Every pattern label and rule id whose hits can change this criterion: its own labels, both sides of a
        balance, triggers, the pitch marker, the rules an `elements` criterion looks for."""
        p = self.params
        read = set(p["elements"]) | set(p.get("optional", ())) if self.kind == "elements" else set(self.labels())
        read |= set(p.get("positive", ())) | set(p.get("negative", ())) | set(p.get("trigger", ()))
        return read | ({p["pitch_marker"]} if "pitch_marker" in p else set())

    def refuses(self) -> set[str]:
        """What a counterexample of this criterion must not fire (labels or rule ids): its name and what it reads in
        its own role's turns; triggers are read in the other role's."""
        return {self.name} | self.reads() - set(self.params.get("trigger", ()))


@dataclass(frozen=True)
class Rubric:
    version: str
    path: Path
    criteria: tuple[Criterion, ...]
    patterns: tuple[dict, ...] = field(repr=False)
    markers: tuple[str, ...] = ()
    rules: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    classifier: ClassifierConfig | None = None

    def rule_ids(self, label: str | None = None) -> set[str]:
        return {p["id"] for p in self.patterns if label is None or p["label"] == label}

    def criterion(self, name: str) -> Criterion:
        return next(c for c in self.criteria if c.name == name)


def _fail(path: Path, where: str, problem: str, fix: str) -> RubricError:
    return RubricError(f"{path}: {where}: {problem}. Fix: {fix}.")


def _load_patterns(rubric_path: Path, path: Path, labels: set[str], removed: frozenset[str] = frozenset()) -> list[dict]:
    if not path.is_file():
        raise _fail(rubric_path, "patterns", f"pattern file {path.name} does not exist ({path})", "correct the path (relative to the rubric file)")
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
        if pattern["label"] in removed:  # a criterion the rubric removed from its base
            continue
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
    if params.get("window_from", "start") not in ("start", "end"):
        raise _fail(path, f"{where}.params", f"window_from {params['window_from']!r} is not valid", 'use "start" or "end"')
    if not raw.get("source"):
        raise _fail(path, where, "no source", "quote the sentence of the source document the criterion comes from in source = \"...\"")
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
    labels = {c.name for c in rubric.criteria} | set(rubric.markers)
    for c in rubric.criteria:
        named = list(c.params.get("elements", ())) + list(c.params.get("optional", ())) + [r for e in c.examples for r in e.rules]
        if unknown := [r for r in named if r not in known]:
            raise _fail(rubric.path, f"criteria.{c.name}", f"rule ids {unknown} have no pattern", "add patterns with these ids or correct the ids")
        marker = c.params.get("pitch_marker")
        if marker is not None and marker not in rubric.markers:
            raise _fail(rubric.path, f"criteria.{c.name}.params", f"pitch_marker {marker!r} is not declared", f"add {marker!r} to markers")
        for key in ("labels", "positive", "negative", "not_discovery", "trigger"):
            if unknown := [lab for lab in c.params.get(key, ()) if lab not in labels]:
                raise _fail(rubric.path, f"criteria.{c.name}.params.{key}", f"labels {unknown} are not criteria or markers",
                            f"use criterion names or markers ({sorted(labels)})")
    modelled = {f"{label}.{RULE_SUFFIX}" for label in labels}  # a classifier's hits of a label, where one gives it
    for rule_id, constraints in rubric.rules.items():
        if rule_id in modelled and set(constraints) - {"unless_in_sentence"}:
            raise _fail(rubric.path, f'rules."{rule_id}"', "a classifier hit takes unless_in_sentence alone",
                        "remove the other constraints (the classifier judges whole sentences)")
        if rule_id not in known | modelled:
            raise _fail(rubric.path, f'rules."{rule_id}"', "no pattern has this rule id", "correct the id or add a pattern for it")
        for key, value in constraints.items():
            if key not in RULE_KEYS:
                raise _fail(rubric.path, f'rules."{rule_id}"', f"unknown constraint {key!r}", f"use one of {sorted(RULE_KEYS)}")
            if not isinstance(value, RULE_KEYS[key]):
                raise _fail(rubric.path, f'rules."{rule_id}".{key}', f"{value!r} is not a {RULE_KEYS[key].__name__}", "see the default rubric")
            if RULE_KEYS[key] is list and (unknown := [lab for lab in value if lab not in labels]):
                raise _fail(rubric.path, f'rules."{rule_id}".{key}', f"labels {unknown} are not criteria or markers", f"use one of {sorted(labels)}")


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise _fail(path, "file", "the rubric file does not exist", "pass --rubric with an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, "file", f"not valid TOML ({exc})", "check the syntax at that line") from None


def _merged(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The rubric's data with `extends` resolved: pattern paths made absolute, criteria merged."""
    if path in seen:
        raise _fail(path, "extends", "the rubric extends itself (a cycle)", "remove the cycle of extends")
    data = _read_toml(path)
    data["patterns"] = [(path.parent / p).resolve() for p in data.get("patterns", ())]
    if isinstance(data.get("classifier"), dict) and isinstance(data["classifier"].get("data"), str):
        data["classifier"]["data"] = (path.parent / data["classifier"]["data"]).resolve()
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    base_path = DEFAULT_RUBRIC if base_name == "default" else (path.parent / base_name).resolve()
    if not base_path.is_file():
        fix = 'write extends = "default" or a path relative to this file'
        raise _fail(path, "extends", f"{base_name!r} is neither \"default\" nor an existing file", fix)
    base = _merged(base_path, (*seen, path))
    criteria = {name: dict(raw) for name, raw in base.get("criteria", {}).items()}
    for name in data.get("remove", ()):
        if criteria.pop(name, None) is None:
            raise _fail(path, "remove", f"the base rubric has no criterion {name!r}", f"use one of {sorted(base.get('criteria', {}))}")
    for name, raw in data.get("criteria", {}).items():
        merged = criteria.setdefault(name, {})
        for key, value in raw.items():
            merged[key] = {**merged.get(key, {}), **value} if key == "params" and isinstance(value, dict) else value
    rules = {rid: dict(r) for rid, r in base.get("rules", {}).items()}
    for rid, r in data.get("rules", {}).items():
        rules[rid] = {**rules.get(rid, {}), **r}
    return {
        "version": data.get("version", base.get("version")),
        "patterns": base["patterns"] + [p for p in data["patterns"] if p not in base["patterns"]],
        "markers": list(dict.fromkeys([*base.get("markers", ()), *data.get("markers", ())])),
        "criteria": criteria,
        "rules": rules,
        "removed": [*base.get("removed", ()), *data.get("remove", ())],
        "classifier": data.get("classifier", base.get("classifier")),
    }


def _classifier(path: Path, raw: object, labels: set[str], rule_ids: set[str], removed: frozenset[str]) -> ClassifierConfig | None:
    """The `[classifier]` table: data = a labelled set (relative to the rubric file), labels = {set label = rubric
    label or pattern rule id}, threshold = probability from which a target is given, veto_below = probability under
    which its pattern hits stand down, min_words = shortest text it judges, encoder = the fine-tuned encoder's share of
    each probability (0: n-grams alone)."""
    if raw is None or raw is False:  # `classifier = false`: patterns only, also when the base rubric has one
        return None
    where = "classifier"
    if not isinstance(raw, dict) or set(raw) - {"data", "labels", "threshold", "veto_below", "min_words", "encoder"}:
        raise _fail(path, where, "expects a table with the keys data, labels, threshold, veto_below, min_words and encoder only, or false",
                    "see the README's example; write classifier = false for patterns only")
    data = raw.get("data")
    if not isinstance(data, Path) or not data.is_file():
        raise _fail(path, f"{where}.data", f"labelled set {data} does not exist", "give a devset.jsonl-style file, relative to the rubric file")
    mapping = raw.get("labels")
    if not isinstance(mapping, dict) or not mapping or not all(isinstance(v, str) for v in mapping.values()):
        raise _fail(path, f"{where}.labels", "missing or not a table of set label = rubric label", 'write labels = { pitch = "pitch" }')
    mapping = {k: v for k, v in mapping.items() if v.split(".", 1)[0] not in removed}  # a criterion removed from the base
    if not mapping:
        return None
    if len(set(mapping.values())) < len(mapping):
        raise _fail(path, f"{where}.labels", "two set labels give the same target", "keep one set label per rubric label or rule id")
    if unknown := sorted(v for v in mapping.values() if v not in labels | rule_ids):
        raise _fail(path, f"{where}.labels", f"{unknown} are neither criteria, markers nor pattern rule ids",
                    f"use one of {sorted(labels)} or a rule id such as {min(rule_ids, default='opening.company')!r}")
    threshold = raw.get("threshold", 0.5)
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise _fail(path, f"{where}.threshold", f"{threshold!r} is not a probability between 0 and 1", "write e.g. threshold = 0.5")
    veto_below = raw.get("veto_below", 0.0)
    if not isinstance(veto_below, int | float) or isinstance(veto_below, bool) or not 0 <= veto_below < threshold:
        raise _fail(path, f"{where}.veto_below", f"{veto_below!r} is not a probability from 0 up to the threshold {threshold}",
                    "write e.g. veto_below = 0.1, or 0 to keep every pattern hit")
    min_words = raw.get("min_words", ClassifierConfig.min_words)
    if not isinstance(min_words, int) or isinstance(min_words, bool) or min_words < 1:
        raise _fail(path, f"{where}.min_words", f"{min_words!r} is not a positive whole number of words", "write e.g. min_words = 4")
    encoder = raw.get("encoder", 0.0)
    if not isinstance(encoder, int | float) or isinstance(encoder, bool) or not 0 <= encoder <= 1:
        raise _fail(path, f"{where}.encoder", f"{encoder!r} is not a share between 0 and 1",
                    "write e.g. encoder = 0.7 (the fine-tuned encoder's share; the n-grams' is the rest), or 0 for n-grams alone")
    return ClassifierConfig(data=data, labels=mapping, threshold=float(threshold), min_words=min_words, veto_below=float(veto_below),
                            encoder=float(encoder))


def _classifier_examples(criteria: tuple[Criterion, ...], targets: set[str]) -> tuple[TrainingExample, ...]:
    """The rubric's own examples as training rows for the targets they speak to: an example is a positive of the
    targets its rules give, a counterexample a negative of the targets its criterion reads (so a user who adds
    a counterexample the classifier fires on teaches it, as the tests demand)."""
    rows = []
    for c in criteria:
        for example in c.examples:
            if given := frozenset(t for t in targets if any(rule == t or rule.split(".", 1)[0] == t for rule in example.rules)):
                rows.append(TrainingExample(example.text, positive=given))
        refused_by_tests = c.refuses()
        if refused := frozenset(t for t in targets if t in refused_by_tests or t.split(".", 1)[0] in refused_by_tests):
            rows += [TrainingExample(text, negative=refused) for text in c.counterexamples]
    return tuple(rows)


def _mention_patterns(criteria: tuple[Criterion, ...]) -> list[dict]:
    """Token patterns for the names a `mentions` criterion lists (e.g. competitors), in the forms speech-to-text
    writes them (see `_name_forms`)."""
    return [
        {"label": c.name, "id": f"{c.name}.named", "pattern": form}
        for c in criteria if c.kind == "mentions" for name in c.params["names"] for form in _name_forms(name)
    ]


def _name_forms(name: str) -> list[list[dict] | str]:
    """A one-word name as written ("Skyline", not "the city skyline"); a name of several words, or one written in
    camel case, in any case, the camel-case one also split into words of three letters or more ("BlueWave": "bluewave",
    "blue wave"), as speech-to-text writes them ("metro cable", "blue wave motors"); a name with other characters
    ("T-Mobile", "AT&T") as a phrase, in any case, so it is matched as the tokenizer splits it."""
    words = name.split()
    if len(words) > 1:
        return [[{"LOWER": w.lower()} for w in words]]
    if not name.isalnum():
        return [name]
    parts = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?=[A-Z][a-z]|$)", name)
    if len(parts) < 2:
        return [[{"ORTH": name}]]
    split = [[{"LOWER": p.lower()} for p in parts]] if min(map(len, parts)) >= 3 else []  # not "iPhone" as "i phone"
    return [[{"LOWER": name.lower()}], *split]


def load_rubric(path: Path | None = None) -> Rubric:
    """Load and validate a rubric TOML file (the bundled default when `path` is None)."""
    path = (path or DEFAULT_RUBRIC).resolve()
    data = _merged(path)
    if not isinstance(data.get("version"), str):
        raise _fail(path, "version", "missing or not a string", 'add version = "YYYY.MM.N" at the top')
    if not data.get("criteria"):
        raise _fail(path, "criteria", "no criteria defined", "add at least one [criteria.NAME] table")
    criteria = tuple(_criterion(path, name, raw) for name, raw in data["criteria"].items())
    markers = tuple(data.get("markers", ()))
    labels = {c.name for c in criteria} | set(markers)
    removed = frozenset(data.get("removed", ())) - labels
    patterns = tuple(p for f in data["patterns"] for p in _load_patterns(path, f, labels, removed)) + tuple(_mention_patterns(criteria))
    rules = {rid: r for rid, r in data.get("rules", {}).items() if rid.split(".", 1)[0] not in removed}
    classifier = _classifier(path, data.get("classifier"), labels, {p["id"] for p in patterns if "id" in p}, removed)
    if classifier is not None:
        classifier = dataclasses.replace(classifier, examples=_classifier_examples(criteria, set(classifier.labels.values())))
    rubric = Rubric(version=data["version"], path=path, criteria=criteria, patterns=patterns, markers=markers, rules=rules,
                    classifier=classifier)
    _check_rule_references(rubric)
    return rubric
