"""Which speaker is the agent and which the customer, from what each says, with a confidence.

Cues are data (rubric/roles.toml). Below the confidence threshold a speaker's role stays
`unknown` and the call is flagged for review: a role is never guessed silently.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import RubricError
from pipeline.records import Utterance

DEFAULT_ROLE_CUES = Path(__file__).parent / "rubric" / "roles.toml"


@dataclass(frozen=True)
class Cue:
    id: str
    role: str
    weight: float
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class RoleCues:
    version: str
    threshold: float
    scale: float
    opener_weight: float
    max_hits_per_cue: int
    cues: tuple[Cue, ...]


@dataclass(frozen=True)
class RoleDecision:
    roles: dict[str, str]  # speaker -> agent / customer / unknown
    agent_probability: dict[str, float]
    confidence: float  # the least certain speaker's certainty, 0.5-1

    @property
    def complete(self) -> bool:
        return {"agent", "customer"} <= set(self.roles.values()) and "unknown" not in self.roles.values()


def load_role_cues(path: Path | None = None) -> RoleCues:
    """Load and validate the role cue file."""
    path = path or DEFAULT_ROLE_CUES
    try:
        data = tomllib.loads(path.read_text())
        cues = tuple(
            Cue(id=c["id"], role=c["role"], weight=float(c["weight"]), phrases=tuple(c["phrases"])) for c in data["cues"]
        )
        role_cues = RoleCues(
            version=data["version"],
            threshold=float(data["threshold"]),
            scale=float(data["scale"]),
            opener_weight=float(data["opener_weight"]),
            max_hits_per_cue=int(data["max_hits_per_cue"]),
            cues=cues,
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        fix = f"follow the layout of the bundled {DEFAULT_ROLE_CUES.name}"
        raise RubricError(f"{path}: role cues are invalid ({type(exc).__name__}: {exc}). Fix: {fix}.") from None
    if bad := [c.id for c in cues if c.role not in ("agent", "customer")]:
        raise RubricError(f"{path}: cues {bad} have a role other than agent or customer. Fix: set role = \"agent\" or \"customer\".")
    if not 0.5 < role_cues.threshold < 1:
        raise RubricError(f"{path}: threshold {role_cues.threshold} is not between 0.5 and 1. Fix: use e.g. 0.8.")
    return role_cues


class RoleClassifier:
    """Phrase cues matched with spaCy's tokenizer only (fast), scored per speaker."""

    def __init__(self, cues: RoleCues):
        import spacy
        from spacy.matcher import PhraseMatcher

        self.cues = cues
        self.nlp = spacy.blank("en")
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        for cue in cues.cues:
            self.matcher.add(cue.id, [self.nlp.make_doc(p) for p in cue.phrases])
        self.cue_by_id = {c.id: c for c in cues.cues}

    def agent_scores(self, utterances: Sequence[Utterance]) -> dict[str, float]:
        """Agent cues minus customer cues, per speaker, plus the opener's bonus."""
        hits: Counter[tuple[str, str]] = Counter()
        for u, doc in zip(utterances, self.nlp.pipe(u.text for u in utterances), strict=True):
            for match_id, _, _ in self.matcher(doc):
                hits[(u.speaker, self.nlp.vocab.strings[match_id])] += 1
        scores = dict.fromkeys(dict.fromkeys(u.speaker for u in utterances), 0.0)
        for (speaker, cue_id), n in hits.items():
            cue = self.cue_by_id[cue_id]
            sign = 1.0 if cue.role == "agent" else -1.0
            scores[speaker] += sign * cue.weight * min(n, self.cues.max_hits_per_cue)
        if utterances:
            scores[min(utterances, key=lambda u: (u.start_s or 0.0, u.utterance_idx)).speaker] += self.cues.opener_weight
        return scores

    def decide(self, utterances: Sequence[Utterance]) -> RoleDecision:
        scores = self.agent_scores(utterances)
        if len(scores) < 2:
            return RoleDecision(dict.fromkeys(scores, "unknown"), dict.fromkeys(scores, 0.5), 0.5)
        probability = {}
        for speaker, score in scores.items():
            others = [s for other, s in scores.items() if other != speaker]
            probability[speaker] = 1.0 / (1.0 + math.exp(-(score - sum(others) / len(others)) / self.cues.scale))
        threshold = self.cues.threshold
        roles = {
            speaker: "agent" if p >= threshold else "customer" if p <= 1 - threshold else "unknown"
            for speaker, p in probability.items()
        }
        confidence = min(max(p, 1 - p) for p in probability.values())
        return RoleDecision(roles, {s: round(p, 3) for s, p in probability.items()}, round(confidence, 3))
