"""RTTM, the speaker-timeline format every diarization tool reads and writes.

One line per turn: `SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import AudioError
from pipeline.records import Utterance


class Turn(NamedTuple):
    start_s: float
    end_s: float
    speaker: str


def format_rttm(file_id: str, turns: Iterable[Turn]) -> str:
    return "".join(
        f"SPEAKER {file_id} 1 {t.start_s:.3f} {t.end_s - t.start_s:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
        for t in sorted(turns)
    )


def parse_rttm(text: str, source: str = "RTTM") -> list[Turn]:
    """Turns of the SPEAKER lines; other line types are ignored."""
    turns = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
            speaker = fields[7]
        except (IndexError, ValueError):
            raise AudioError(f"{source} line {line_no} is not an RTTM SPEAKER line (start, duration and speaker expected).") from None
        turns.append(Turn(start, start + duration, speaker))
    if not turns:
        raise AudioError(f"{source} holds no SPEAKER lines.")
    return sorted(turns)


def speaker_turns(utterances: Sequence[Utterance], max_gap_s: float = 1.0) -> list[Turn]:
    """The speaker timeline: each speaker's utterances merged across pauses of at most
    `max_gap_s` in which nobody else starts talking (utterances split at every sentence)."""
    turns: list[list] = []
    last_of: dict[str, int] = {}
    for u in sorted((u for u in utterances if u.start_s is not None and u.end_s is not None), key=lambda u: u.start_s):
        i = last_of.get(u.speaker)
        if i is not None and u.start_s - turns[i][1] <= max_gap_s and not any(
            t[2] != u.speaker and turns[i][1] < t[0] <= u.start_s for t in turns[i + 1 :]
        ):
            turns[i][1] = max(turns[i][1], u.end_s)
        else:
            last_of[u.speaker] = len(turns)
            turns.append([u.start_s, u.end_s, u.speaker])
    return [Turn(*t) for t in turns]


def find_rttm(folder: Path, audio: Path, call_id: str) -> Path:
    """`<audio stem>.rttm` or `<call_id>.rttm` in `folder`."""
    for name in (f"{audio.stem}.rttm", f"{call_id}.rttm"):
        if (folder / name).is_file():
            return folder / name
    raise AudioError(f"no RTTM for this call in {folder} (looked for {audio.stem}.rttm and {call_id}.rttm).")
