"""The rubric's patterns matched on a doc, as spaCy's SpanRuler would, at a fraction of its cost.

spaCy's Matcher tries every token pattern at every token, so its cost grows with the number of
patterns. Most rubric patterns begin with a fixed word or word set ("i", "we", {"send", "email"}):
a pattern cannot match a doc that lacks every word one of its required tokens may be. Token
patterns are therefore grouped by such a word set (one without stop words where the pattern has
one), and a group runs only on docs containing one of its words and, for one of its patterns at
least, a word of every other set that pattern requires; patterns with no required word (shapes,
optional tokens) run on every doc. Phrase patterns go to one PhraseMatcher, which is
cheap at any size.

A token pattern's first or last token that only names words it must not be (`{"LOWER": {"NOT_IN": [...]}}`)
is a guard, context rather than evidence: "what kind of problems" matches a pattern that asks the word before
"problems" not to be "found" or "fixed", and the evidence is "problems", not "of problems".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

# A doc's words, for the lookup, are its tokens' lowercase forms and norms ("'ll" has the norm "will"): a pattern's
# words on these attributes are looked up lowercased, on NORM as they are.
LOWERCASED_ATTRS = ("ORTH", "TEXT", "LOWER")


def required_words(pattern: list[dict]) -> list[frozenset[str]]:
    """The word sets a doc must meet, one word of each, for the pattern to match: those of the tokens the pattern
    cannot skip and that name their words."""
    return [words for token in pattern if _required(token) and (words := _words(token)) is not None]


def trigger_words(pattern: list[dict]) -> frozenset[str] | None:
    """The required word set a pattern is grouped by: preferring sets without stop words (nearly every utterance
    has "you" or "the"), then the smallest. None when every token the pattern cannot skip can be any word."""
    return min(required_words(pattern), key=lambda words: (not words.isdisjoint(STOP_WORDS), len(words)), default=None)


class UnmatchableWord(ValueError):
    """A token pattern names a word the tokenizer never gives as one token."""


def tokenizes_whole(tokenizer, word: str) -> bool:
    """Whether the tokenizer gives `word` as one token, in some casing, on its own or as a clitic ("'ve" in "we've"):
    a token pattern's word it never gives ("double-check", "it's", "team's": it splits them) can never match."""
    lower = word.lower()
    contexts = ("x {} x", "i{} x", "we{} x")
    return any(t.lower_ == lower for form in dict.fromkeys((word, word.capitalize(), word.upper()))
               for context in contexts for t in tokenizer(context.format(form)))


def _check_words(tokenizer, whole: Callable[[str], bool], rule_id: str, pattern: list[dict]) -> None:
    for token in pattern:
        for attr in LOWERCASED_ATTRS:  # NORM values are norms ("will" for "'ll"), not words the tokenizer gives
            value = token.get(attr)
            words = [value] if isinstance(value, str) else [*value.get("IN", ()), *value.get("NOT_IN", ())] if isinstance(value, Mapping) else []
            for word in words:
                if not whole(word):
                    parts = [t.text for t in tokenizer(word)]
                    raise UnmatchableWord(
                        f"rule {rule_id}: {word!r} is never one token (the tokenizer splits it into {parts}), so that token "
                        f"cannot match. Fix: drop it, or write it as {len(parts)} tokens or as a phrase pattern")


def _guard(token: dict) -> bool:
    """A token that matches exactly one word, named only by the words it must not be."""
    return "OP" not in token and len(token) == 1 and any(
        isinstance(value, Mapping) and set(value) == {"NOT_IN"} for value in token.values())


def _required(token: dict) -> bool:
    op = token.get("OP")
    return op in (None, "+") or (op.startswith("{") and not op.startswith(("{0", "{,")))


def _words(token: dict) -> frozenset[str] | None:
    for attr in (*LOWERCASED_ATTRS, "NORM"):
        value = token.get(attr)
        if isinstance(value, str):
            words = {value}
        elif isinstance(value, Mapping) and set(value) == {"IN"}:
            words = set(value["IN"])
        else:
            continue
        return frozenset(w.lower() for w in words) if attr in LOWERCASED_ATTRS else frozenset(words)
    return None


class RubricMatcher:
    """Spans labelled and identified like SpanRuler's, for patterns in spaCy's pattern format."""

    def __init__(self, nlp, patterns: Iterable[dict]):
        vocab = nlp.vocab
        self.phrases = PhraseMatcher(vocab, attr="LOWER", validate=True)
        self.anywhere = Matcher(vocab, validate=True)
        groups: dict[frozenset[str], Matcher] = {}
        # per group, each pattern's required word sets as hashes: a group runs only if one of its patterns can match
        self.requirements: dict[int, list[tuple[frozenset[int], ...]]] = {}
        self.keys: dict[int, tuple[str, str]] = {}
        self.guards: dict[int, tuple[int, int]] = {}  # per token pattern's key: its guard tokens at the start and the end
        whole = functools.cache(lambda word: tokenizes_whole(nlp.tokenizer, word))  # 4,000 words, repeated across patterns
        for n, entry in enumerate(patterns):
            pattern = entry["pattern"]
            key = repr((entry["label"], entry.get("id", ""), None if isinstance(pattern, str) else n))  # one key a token pattern: its guards
            self.keys[vocab.strings.add(key)] = (entry["label"], entry.get("id", ""))
            if isinstance(pattern, str):
                self.phrases.add(key, [nlp.make_doc(pattern)])
                continue
            _check_words(nlp.tokenizer, whole, entry["id"], pattern)
            if len(pattern) > 1 and (_guard(pattern[0]) or _guard(pattern[-1])):
                self.guards[vocab.strings[key]] = (int(_guard(pattern[0])), int(_guard(pattern[-1])))
            words = trigger_words(pattern)
            matcher = self.anywhere if words is None else groups.setdefault(words, Matcher(vocab, validate=True))
            matcher.add(key, [pattern])
            needed = tuple(frozenset(vocab.strings.add(w) for w in req) for req in required_words(pattern))
            self.requirements.setdefault(id(matcher), []).append(needed)
        self.by_word: dict[int, list[Matcher]] = {}  # keyed by the word's hash, as Doc.to_array gives it
        for words, matcher in groups.items():
            for word in words:
                self.by_word.setdefault(vocab.strings.add(word), []).append(matcher)

    def __call__(self, doc: Doc, with_guards: bool = False) -> list[Span]:
        """Every match as a Span with the pattern's label and id, once each, in document order; without its guard
        tokens unless `with_guards` (then the spans are spaCy's SpanRuler's)."""
        words = set(doc.to_array(["LOWER", "NORM"]).flatten().tolist())
        triggered = {id(m): m for word in words for m in self.by_word.get(word, ())}
        matchers = {key: m for key, m in triggered.items() if self._may_match(key, words)}
        matchers.update((id(m), m) for m in (self.phrases, self.anywhere) if len(m))
        matches = []
        for matcher in matchers.values():
            matches.extend(matcher(doc))
        edges = (lambda key, start, end: (start, end)) if with_guards else self._evidence
        spans = {
            Span(doc, *edges(key, start, end), label=self.keys[key][0], span_id=self.keys[key][1])
            for key, start, end in matches
            if start != end
        }
        return sorted(spans)

    def _evidence(self, key: int, start: int, end: int) -> tuple[int, int]:
        """A match's tokens without its pattern's guards (all of them where nothing else would be left)."""
        lead, trail = self.guards.get(key, (0, 0))
        return (start + lead, end - trail) if end - trail > start + lead else (start, end)

    def _may_match(self, group: int, words: set[int]) -> bool:
        """Whether one of the group's patterns has a word of each of its required sets in the doc: most groups
        that a common word triggers ("the", ",") have no pattern that can match, and a Matcher call costs a
        Python object per token."""
        return any(all(not needed.isdisjoint(words) for needed in pattern) for pattern in self.requirements[group])
