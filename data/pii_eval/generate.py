"""Generate the redaction test set: short dialogues with planted customer data and clean ones.

    python data/pii_eval/generate.py            # rewrites data/pii_eval/pii_eval.jsonl

Every line is one dialogue: {"id", "split" (dev/test), "kind" (an entity type or "clean"),
"turns": [{"speaker", "role", "text", "entities": [{"type", "start", "end", "id"}]}]}.
Character offsets are into the turn's text; one entity split across turns ("four one one one"
... "okay" ... "two two two two") has one part per turn, all with the same id. Fixed seed:
the file is the same on every run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 8
OUT = Path(__file__).resolve().parent / "pii_eval.jsonl"

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
FIRST = ["Maria", "David", "Priya", "Ahmed", "Olivia", "James", "Wei", "Fatima", "Carlos", "Emily", "Kwame", "Sofia", "Liam",
         "Aisha", "Mateo", "Hannah", "Ravi", "Chloe", "Diego", "Nora", "Tomasz", "Grace", "Yusuf", "Elena", "Marcus", "Ingrid"]
LAST = ["Lopez", "Chen", "Sharma", "Khan", "Okafor", "Brennan", "Nakamura", "Haddad", "Kowalski", "Fischer", "Mensah",
        "Rossi", "Patel", "Oconnor", "Gallagher", "Lindqvist", "Moreno", "Abernathy", "Dubois", "Hughes", "Novak", "Ferreira"]
STREETS = ["Maple", "Oak", "Elm", "Birch", "Cedar Ridge", "Harbor View", "Lincoln", "Washington", "Sunset", "Willow Creek",
           "Pine", "Mill", "Chestnut", "Highland", "Lakeshore", "Jefferson"]
SUFFIXES = ["Street", "Avenue", "Road", "Lane", "Drive", "Boulevard", "Court", "Way", "Place", "Terrace", "St", "Ave"]
DOMAINS = [("gmail", "com"), ("yahoo", "com"), ("outlook", "com"), ("hotmail", "com"), ("icloud", "com"), ("proton", "me"),
           ("comcast", "net"), ("northwind", "org")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
            "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
            "twentieth", "twenty first", "twenty second", "twenty third", "twenty fourth", "twenty fifth", "twenty sixth",
            "twenty seventh", "twenty eighth"]
FILLERS = ["uh", "um"]
ACKS = ["Okay.", "Mm-hm.", "Go ahead.", "Got it.", "Yes.", "Right."]


class Dialogue:
    """Turns built from plain strings and planted entities."""

    def __init__(self, kind: str):
        self.kind, self.turns, self.next_id = kind, [], 0

    def turn(self, speaker: str, *pieces) -> Dialogue:
        """Pieces: str, or (type, text) for an entity, or (type, text, id) to continue one."""
        text, entities = "", []
        for piece in pieces:
            if isinstance(piece, str):
                text += piece
                continue
            entity, value, *given = piece
            entity_id = given[0] if given else self.new_id()
            entities.append({"type": entity, "start": len(text), "end": len(text) + len(value), "id": entity_id})
            text += value
        self.turns.append({"speaker": speaker, "role": speaker, "text": text, "entities": entities})
        return self

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for check in range(10):
        digits = body + str(check)
        total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(int(c) for c in reversed(digits)))
        if total % 10 == 0:
            return digits


def say_digits(digits: str, rng: random.Random, groups: list[int] | None = None, style: str | None = None) -> str:
    """One spoken or written form of a digit string."""
    style = style or rng.choice(["grouped", "dashed", "solid", "words", "words_commas", "oh", "double", "fillers", "mixed", "pairs"])
    groups = groups or [4] * (len(digits) // 4) + ([len(digits) % 4] if len(digits) % 4 else [])
    parts, k = [], 0
    for g in groups:
        parts.append(digits[k: k + g])
        k += g

    def words(part: str, oh: bool = False, double: bool = False) -> str:
        out, i = [], 0
        while i < len(part):
            word = "oh" if oh and part[i] == "0" else DIGIT_WORDS[int(part[i])]
            if double and i + 1 < len(part) and part[i + 1] == part[i]:
                out.append(f"double {word}")
                i += 2
            else:
                out.append(word)
                i += 1
        return " ".join(out)

    def pairs(part: str) -> str:
        if len(part) == 4 and part[0] != "0" and part[2] != "0":
            return " ".join(_two(part[j: j + 2]) for j in (0, 2))
        return words(part, oh=True)

    if style == "grouped":
        return " ".join(parts)
    if style == "dashed":
        return "-".join(parts)
    if style == "solid":
        return digits
    if style == "words":
        return " ".join(words(p) for p in parts)
    if style == "words_commas":
        return ", ".join(words(p) for p in parts)
    if style == "oh":
        return ", ".join(words(p, oh=True) for p in parts)
    if style == "double":
        return ", ".join(words(p, oh=True, double=True) for p in parts)
    if style == "fillers":
        return f" {rng.choice(FILLERS)} ".join(words(p) for p in parts)
    if style == "mixed":
        return " ".join(p if i % 2 else words(p) for i, p in enumerate(parts))
    return ", ".join(pairs(p) for p in parts)


def _two(pair: str) -> str:
    n = int(pair)
    if n < 10:
        return f"oh {DIGIT_WORDS[n]}"
    if n < 20:
        return TEENS[n - 10]
    return TENS[n // 10] + ("" if n % 10 == 0 else f" {DIGIT_WORDS[n % 10]}")


def lower_asr(dialogue: Dialogue) -> Dialogue:
    """The same dialogue as an uncased, unpunctuated transcript (some telephony exports)."""
    for turn in dialogue.turns:
        text = turn["text"]
        # sentence punctuation only (before a space or at the end), not the dots of an e-mail address;
        # same length, so the offsets stay valid
        keep = [" " if c in ".,?!" and (k + 1 == len(text) or text[k + 1] == " ") else c.lower() for k, c in enumerate(text)]
        turn["text"] = "".join(keep)
    return dialogue


# --- planted entities -----------------------------------------------------------------------------
def card(rng: random.Random) -> Dialogue:
    amex = rng.random() < 0.2
    digits = luhn_complete(rng.choice(["34", "37"]), 15, rng) if amex else luhn_complete(rng.choice(["4", "51", "55"]), 16, rng)
    groups = [4, 6, 5] if amex else [4, 4, 4, 4]
    spoken = say_digits(digits, rng, groups)
    d = Dialogue("CARD_NUMBER")
    form = rng.randrange(6)
    if form == 0:
        d.turn("customer", "My card number is ", ("CARD_NUMBER", spoken), ".")
    elif form == 1:
        d.turn("agent", "What's the long number on the front of the card?").turn("customer", "It's ", ("CARD_NUMBER", spoken), ".")
    elif form == 2:
        d.turn("agent", "Can I get the card number, please?").turn("customer", rng.choice(["Sure, ", "Yeah, ", ""]), ("CARD_NUMBER", spoken))
    elif form in (3, 4):  # split across the customer's turns, the agent acknowledging in between (or not)
        half = len(groups) // 2
        cut = sum(groups[:half])
        first, second = say_digits(digits[:cut], rng, groups[:half]), say_digits(digits[cut:], rng, groups[half:])
        entity = d.new_id()
        d.turn("customer", rng.choice(["My card number is ", "Okay, my visa is ", "The card is "]), ("CARD_NUMBER", first, entity))
        if form == 3:
            d.turn("agent", rng.choice(ACKS))
        d.turn("customer", ("CARD_NUMBER", second, entity), rng.choice([".", ", and it expires next year.", ""]))
    else:
        d.turn("customer", "I want to pay with my ", rng.choice(["visa", "mastercard", "debit card", "credit card"]), ", it's ",
               ("CARD_NUMBER", spoken), ".")
        d.turn("agent", "Let me read that back: ", ("CARD_NUMBER", spoken), ".")
    return d


def ssn(rng: random.Random) -> Dialogue:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    digits = f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
    spoken = say_digits(digits, rng, [3, 2, 4])
    d = Dialogue("US_SSN")
    form = rng.randrange(5)
    if form == 0:
        d.turn("customer", rng.choice(["My social is ", "My social security number is ", "SSN is "]), ("US_SSN", spoken), ".")
    elif form == 1:
        d.turn("agent", "To verify, can I have your social security number?").turn("customer", rng.choice(["Yes, ", "Sure. ", ""]),
                                                                                     ("US_SSN", spoken), ".")
    elif form == 2:
        entity = d.new_id()
        d.turn("agent", "I'll need your social.")
        d.turn("customer", ("US_SSN", say_digits(digits[:5], rng, [3, 2]), entity))
        d.turn("agent", rng.choice(ACKS))
        d.turn("customer", ("US_SSN", say_digits(digits[5:], rng, [4]), entity), ".")
    elif form == 3:
        d.turn("agent", "Can you confirm the last four of your social?").turn("customer", "It's ", ("US_SSN", say_digits(digits[5:], rng, [4])), ".")
    else:
        d.turn("customer", "The social on the account should be ", ("US_SSN", spoken), ", " + rng.choice(FILLERS) + ", I think.")
    return d


def phone(rng: random.Random) -> Dialogue:
    digits = rng.choice(["2", "3", "4", "6", "7", "8"]) + "".join(str(rng.randrange(10)) for _ in range(2)) + "555" + \
        f"{rng.randrange(10000):04d}"
    form = rng.randrange(6)
    spoken = say_digits(digits, rng, [3, 3, 4])
    if rng.random() < 0.15:
        spoken = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    d = Dialogue("PHONE_NUMBER")
    if form == 0:
        d.turn("customer", rng.choice(["You can reach me at ", "My cell is ", "Call me back on ", "My phone number is "]),
               ("PHONE_NUMBER", spoken), ".")
    elif form == 1:
        d.turn("agent", "What's the best number to reach you?").turn("customer", rng.choice(["", "It's ", "Sure, "]),
                                                                      ("PHONE_NUMBER", spoken), ".")
    elif form == 2:
        entity = d.new_id()
        d.turn("customer", "My number is ", ("PHONE_NUMBER", say_digits(digits[:6], rng, [3, 3]), entity))
        d.turn("agent", rng.choice(ACKS))
        d.turn("customer", ("PHONE_NUMBER", say_digits(digits[6:], rng, [4]), entity), ".")
    elif form == 3:
        d.turn("customer", "Area code ", ("PHONE_NUMBER", say_digits(digits, rng, [3, 3, 4], "words_commas")), ", that's my mobile.")
    elif form == 4:
        d.turn("agent", "And a callback number in case we get disconnected?").turn("customer", ("PHONE_NUMBER", spoken))
    else:
        d.turn("customer", "Text me at ", ("PHONE_NUMBER", "1 " + spoken), " when it ships.")
    return d


def account(rng: random.Random) -> Dialogue:
    digits = str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(rng.choice([7, 8, 9, 10, 11])))
    spoken = say_digits(digits, rng)
    d = Dialogue("ACCOUNT_NUMBER")
    form = rng.randrange(5)
    if form == 0:
        d.turn("customer", rng.choice(["My account number is ", "The account is ", "Account number "]), ("ACCOUNT_NUMBER", spoken), ".")
    elif form == 1:
        d.turn("agent", "Can I have your account number?").turn("customer", rng.choice(["Yes, ", "Sure, ", ""]), ("ACCOUNT_NUMBER", spoken))
    elif form == 2:
        routing = "0" + "".join(str(rng.randrange(10)) for _ in range(8))
        d.turn("customer", "The routing number is ", ("ACCOUNT_NUMBER", say_digits(routing, rng, [3, 3, 3])), " and the checking account is ",
               ("ACCOUNT_NUMBER", spoken), ".")
    elif form == 3:
        entity = d.new_id()
        cut = len(digits) // 2
        d.turn("customer", "It's account ", ("ACCOUNT_NUMBER", say_digits(digits[:cut], rng, [cut]), entity))
        d.turn("customer", ("ACCOUNT_NUMBER", say_digits(digits[cut:], rng, [len(digits) - cut]), entity), ".")
    else:
        d.turn("agent", "I'll need the member ID on your account.").turn("customer", rng.choice(FILLERS).capitalize() + ", ",
                                                                           ("ACCOUNT_NUMBER", spoken), ".")
    return d


def email(rng: random.Random) -> Dialogue:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    domain, tld = rng.choice(DOMAINS)
    n = rng.randrange(10, 99)
    form = rng.randrange(6)
    if form == 0:
        value = f"{first}.{last}@{domain}.{tld}"
    elif form == 1:
        value = f"{first} dot {last} at {domain} dot {tld}"
    elif form == 2:
        value = f"{first[0]} {last} {say_digits(str(n), rng, [2], 'pairs')} at {domain} dot {tld}"
    elif form == 3:
        value = f"{first} underscore {last} at {domain}.{tld}"
    elif form == 4:
        value = f"{' '.join(first)} at {domain} dot {tld}"
    else:
        value = f"{first}{n} at {domain} dot {tld}"
    d = Dialogue("EMAIL_ADDRESS")
    if rng.random() < 0.5:
        d.turn("customer", rng.choice(["My email is ", "You can email me at ", "Send it to ", "The email on file is "]),
               ("EMAIL_ADDRESS", value), rng.choice([".", ", thanks.", ""]))
    else:
        d.turn("agent", "What's a good email address for the receipt?").turn("customer", rng.choice(["It's ", "", "Sure, it's "]),
                                                                              ("EMAIL_ADDRESS", value), ".")
    return d


def _house_number(rng: random.Random) -> str:
    n = rng.choice([rng.randrange(1, 100), rng.randrange(100, 1000), rng.randrange(1000, 10000)])
    form = rng.randrange(3)
    if form == 0:
        return str(n)
    if form == 1:
        return " ".join(DIGIT_WORDS[int(c)] for c in str(n))
    return say_digits(str(n), rng, [len(str(n))], "pairs") if len(str(n)) in (2, 4) else str(n)


def address(rng: random.Random) -> Dialogue:
    street = f"{_house_number(rng)} {rng.choice(['', '', 'North ', 'West '])}{rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    if rng.random() < 0.3:
        street += rng.choice([", apartment 4B", " unit 12", ", suite 300", " apartment three"])
    d = Dialogue("STREET_ADDRESS")
    form = rng.randrange(4)
    if form == 0:
        d.turn("customer", rng.choice(["I live at ", "My address is ", "Ship it to ", "We moved to "]), ("STREET_ADDRESS", street),
               rng.choice([".", ", Springfield.", " in Portland."]))
    elif form == 1:
        d.turn("agent", "What's the service address?").turn("customer", rng.choice(["", "It's ", "Sure, "]), ("STREET_ADDRESS", street), ".")
    elif form == 2:
        d.turn("customer", "The modem is at our office, ", ("STREET_ADDRESS", street), ", second floor.")
    else:
        d.turn("customer", "Send the technician to ", ("STREET_ADDRESS", street), " between nine and noon.")
    return d


def dob(rng: random.Random) -> Dialogue:
    month, day, year = rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(1940, 2006)
    form = rng.randrange(6)
    year_words = f"nineteen {_two(str(year % 100).zfill(2))}" if year < 2000 else f"two thousand {DIGIT_WORDS[year % 10]}"
    if form == 0:
        value = f"{MONTHS[month - 1]} {day}, {year}"
    elif form == 1:
        value = f"{MONTHS[month - 1]} {ORDINALS[day - 1]}, {year_words}"
    elif form == 2:
        value = f"{month:02d}/{day:02d}/{year}"
    elif form == 3:
        value = f"{_two(f'{month:02d}')}, {_two(f'{day:02d}')}, {_two(str(year % 100).zfill(2))}"
    elif form == 4:
        value = f"{ORDINALS[day - 1]} of {MONTHS[month - 1]}, {year_words}"
    else:
        value = f"{MONTHS[month - 1]} {day}th {year}"
    d = Dialogue("DATE_OF_BIRTH")
    if rng.random() < 0.5:
        d.turn("customer", rng.choice(["My date of birth is ", "I was born on ", "My birthday is ", "DOB is "]),
               "the " if form == 4 else "", ("DATE_OF_BIRTH", value), ".")
    else:
        d.turn("agent", rng.choice(["And your date of birth?", "Can you confirm your birth date?"])).turn(
            "customer", rng.choice(["", "It's ", "Sure, ", "Um, "]), "the " if form == 4 else "", ("DATE_OF_BIRTH", value), ".")
    return d


def person(rng: random.Random) -> Dialogue:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    d = Dialogue("PERSON")
    form = rng.randrange(7)
    if form == 0:
        d.turn("customer", "Hi, my name is ", ("PERSON", f"{first} {last}"), " and I'm calling about my bill.")
    elif form == 1:
        d.turn("agent", "May I have your name, please?")
        d.turn("customer", rng.choice(["Sure, ", "Yes, it's ", ""]), ("PERSON", f"{first} {last}"), ".")
    elif form == 2:
        d.turn("customer", "Hello, this is ", ("PERSON", first), ", I have a question about my order.")
        d.turn("agent", "Of course, ", ("PERSON", first), ". What's the question?")
    elif form == 3:
        d.turn("customer", "It's ", ("PERSON", f"{first} {last}"), rng.choice([" calling back.", ", I called yesterday."]))
    elif form == 4:
        d.turn("agent", "Thank you, ", rng.choice(["Mr. ", "Mrs. ", "Ms. "]), ("PERSON", last), ". Let me pull that up.")
    elif form == 5:
        d.turn("customer", "My last name is ", ("PERSON", last), ", ", ("PERSON", " ".join(last.upper())), ".")
    else:
        d.turn("agent", "Who am I speaking with today?").turn("customer", "This is ", ("PERSON", first), ".")
    return d


# --- clean dialogues: nothing in them may change -------------------------------------------------
CLEAN = [
    "Thank you for calling Northwind Internet, my name is Joe. How can I help you today?",
    "Good morning, this is Anna from Contoso. What can I do for you?",
    "I ordered 250 boxes of the XR-200 filters last week.",
    "The model number is XR-200 and the part number is A12-7730.",
    "My order number is 55512345.",
    "The ticket number is 8841 2210, I opened it yesterday.",
    "It costs $49.99 a month, or forty nine ninety nine.",
    "The Premium plan is seventy nine dollars a month for 500 megabits.",
    "I paid two hundred and fifty dollars on my credit card.",
    "My card was declined twice this morning.",
    "The technician can come at three thirty or at 9:45.",
    "Can I have your date of birth?",
    "What's the best phone number to reach you?",
    "Can I get the card number, please?",
    "I've been a customer for 12 years.",
    "The bill is due on March 15th.",
    "I called on the 3rd and again on the 10th.",
    "The outage started on 12/05 around noon.",
    "We have 3 lines and 2 tablets on the account.",
    "It drops two or three times a day.",
    "I need 12 units of the SKU 4471 by Friday.",
    "Press 1 for billing or 2 for support.",
    "The router is a Contoso Galaxy 6, version 2.4.1.",
    "My office is on Main Street, near the station.",
    "It's been about 2 or 3 weeks now.",
    "I'd like to upgrade to the 24 month contract.",
    "The tracking number is 1Z 999 AA1 0123 4567.",
    "Your confirmation number is 7730 4412 9981.",
    "I'll transfer you to our billing team now.",
    "Extension 4412 is the retention desk.",
    "I've had the phone for about 18 months.",
    "Is it still 15 percent off if I pay today?",
    "That comes to 1,299 dollars with tax.",
    "I'm calling about the Fabrikam Pro 14 laptop.",
    "Can you confirm the email on the account?",
    "The promo code is SPRING24.",
    "We're open from 8 to 6, Monday to Friday.",
    "The account was opened in 2019.",
    "I live about 20 minutes from the store.",
    "Your case number is 4410 2388.",
    "I'll credit 30 dollars to your next bill.",
    "It happened around 7:15 this morning.",
    "The speed test says 94 down and 11 up.",
    "The flight was UA 928 and my room is 204.",
    "I'm sorry to hear that, I can imagine how frustrating it is.",
    "So if I understand correctly, the modem restarts every hour?",
    "I'll take care of it personally and call you back by Friday.",
    "Could you restart the router and tell me what the lights do?",
    "My daughter's birthday is next week, so I need it before then.",
    "The invoice number is 2024 1187.",
    "Mm-hm, okay, that makes sense.",
    "We need 40 chairs and 8 tables for the event on June 2nd.",
    "Is the 2024 model any better than the 2023 one?",
    "The Netflix charge is 15.49 and the Disney one is 7.99.",
    "I'm fine, thanks. I'm calling about my internet.",
    "It's broken again, the light keeps blinking.",
    "Way too slow, honestly.",
    "Our plan has 100 gigs of data and 5 lines.",
    "The serial number is SN 4821 7733 0912.",
    "Reference 88412 should be on your email.",
    "I've called 4 times about this.",
    "Dial 611 from your phone for support.",
    "The app shows version 11.2 and build 3401.",
    "I'll send you a 10 dollar credit by email.",
    "The store on Oak Avenue closes at 9.",
    "Windows 11 keeps dropping the wifi.",
    "The charge was on the 21st of last month.",
    "Unit price is 3.50 and we ordered 400.",
    "Take Route 66 for about 5 miles.",
    "The quote number is 3302 1198 7765.",
    "I'll be on vacation from July 4th to the 12th.",
    "It's a 4K TV, 65 inches.",
    "Let me check that for you, one moment.",
    "My card ends in a new expiry date, so I updated it online.",
    "The promo ends on December 31st.",
    "We got 2 modems but only 1 works.",
]
CLEAN_DIALOGUES = [
    [("agent", "What's the best number to reach you?"), ("customer", "The one on file is fine.")],
    [("agent", "Can you confirm your date of birth?"), ("customer", "Sure, one second, let me find my glasses.")],
    [("agent", "And the card number?"), ("customer", "Actually, I'd rather pay by check.")],
    [("customer", "I need 3 of them."), ("agent", "Okay."), ("customer", "And 2 more for the office.")],
    [("agent", "How many lines do you need?"), ("customer", "Four, maybe five.")],
    [("agent", "What time works for you?"), ("customer", "Between 2 and 4 on Thursday.")],
    [("customer", "It costs 49."), ("customer", "99 is what the website said though.")],
    [("agent", "Thank you for calling Contoso, this is Sam speaking."), ("customer", "Hi Sam, my internet is down.")],
    [("agent", "May I have the order number?"), ("customer", "It's order 5512 3344.")],
    [("agent", "What's the model of your router?"), ("customer", "The XR-200, version 3.")],
]


def clean(rng: random.Random, index: int) -> Dialogue:
    d = Dialogue("clean")
    if index < len(CLEAN):
        return d.turn("agent" if index < 2 or index % 3 == 0 else "customer", CLEAN[index])  # the first two are greetings
    for speaker, text in CLEAN_DIALOGUES[index - len(CLEAN)]:
        d.turn(speaker, text)
    return d


MAKERS = {"CARD_NUMBER": card, "ACCOUNT_NUMBER": account, "US_SSN": ssn, "PHONE_NUMBER": phone, "EMAIL_ADDRESS": email,
          "STREET_ADDRESS": address, "DATE_OF_BIRTH": dob, "PERSON": person}
PER_TYPE = 40
UNCASED_SHARE = 0.2


def generate() -> list[dict]:
    rng = random.Random(SEED)
    items = []
    for kind, make in MAKERS.items():
        for k in range(PER_TYPE):
            dialogue = make(rng)
            if rng.random() < UNCASED_SHARE:
                dialogue = lower_asr(dialogue)
            items.append({"id": f"{kind.lower()}-{k:03d}", "kind": kind, "turns": dialogue.turns})
    for k in range(len(CLEAN) + len(CLEAN_DIALOGUES)):
        dialogue = clean(rng, k)
        if k % 5 == 4:
            dialogue = lower_asr(dialogue)
        items.append({"id": f"clean-{k:03d}", "kind": "clean", "turns": dialogue.turns})
    split_rng = random.Random(SEED + 1)  # half of each kind tunes the rules (dev), the other half is held out (test)
    by_kind: dict[str, list[dict]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], []).append(item)
    for group in by_kind.values():
        order = list(range(len(group)))
        split_rng.shuffle(order)
        for rank, i in enumerate(order):
            group[i]["split"] = "dev" if rank % 2 == 0 else "test"
    return [{"id": i["id"], "split": i["split"], "kind": i["kind"], "turns": i["turns"]} for i in items]


if __name__ == "__main__":
    items = generate()
    OUT.write_text("".join(json.dumps(item) + "\n" for item in items))
    n_turns = sum(len(i["turns"]) for i in items)
    print(f"{len(items)} dialogues, {n_turns} utterances -> {OUT}")
