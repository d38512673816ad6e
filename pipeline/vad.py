"""Voice activity over recordings of any length: faster-whisper's Silero VAD, in pieces when long.

Silero's recurrent state drifts through long stretches without speech and then misses speech
it finds on its own: on the two-hour bad-input recording (line noise with a call in three
parts) one pass found only the first part, and a sample call preceded by 60 s of 8 kHz line
noise lost a quarter of its detected speech. Recordings longer than LONG_RECORDING_S are
therefore run through the VAD in PIECE_S pieces, each from a fresh state warmed up on the
LEAD_IN_S before it (which also bounds its memory: one pass over two hours holds about 1 GB
of windows). Shorter recordings take
one pass, exactly as faster-whisper does, so their results do not change.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
LONG_RECORDING_S = 600.0  # longer than any sample call; calls this long are where long holds happen
PIECE_S = 30.0  # with the lead-in, the model never runs more than 40 s from a fresh state
LEAD_IN_S = 10.0  # audio read before each piece to warm the model up; its regions belong to the previous piece


def is_long(samples: np.ndarray) -> bool:
    return len(samples) > LONG_RECORDING_S * SAMPLE_RATE


def speech_timestamps(samples: np.ndarray, options) -> list[dict[str, int]]:
    """Speech regions as {"start", "end"} sample indices, like faster-whisper's get_speech_timestamps.

    A long recording goes in PIECE_S pieces, each read with the LEAD_IN_S before it so the
    model is warmed up at the piece's start (a cold start misses onsets: WER 0.43 against 0.20
    on a sample call cut in 30 s pieces without it); a region running over a piece boundary
    is joined back."""
    from faster_whisper.vad import get_speech_timestamps

    if not is_long(samples):
        return get_speech_timestamps(samples, options)
    piece, lead_in = int(PIECE_S * SAMPLE_RATE), int(LEAD_IN_S * SAMPLE_RATE)
    regions: list[dict[str, int]] = []
    for first in range(0, len(samples), piece):
        read_from = max(0, first - lead_in)
        for region in get_speech_timestamps(samples[read_from : first + piece], options):
            start, end = max(first, read_from + region["start"]), min(first + piece, read_from + region["end"])
            if end <= start:
                continue
            if start == first and regions and regions[-1]["end"] == first:  # cut by the boundary: one region again
                regions[-1]["end"] = end
            else:
                regions.append({"start": start, "end": end})
    return regions


def clips(regions: list[dict[str, int]], max_s: float = 30.0) -> list[tuple[float, float]]:
    """Consecutive speech regions joined into clips of at most `max_s` seconds (Whisper's window),
    in seconds; a region longer than that (rare: faster-whisper's VAD splits them) is cut."""
    limit = int(max_s * SAMPLE_RATE)
    joined: list[list[int]] = []
    for region in regions:
        for start in range(region["start"], region["end"], limit):
            end = min(start + limit, region["end"])
            if joined and end - joined[-1][0] <= limit:
                joined[-1][1] = end
            else:
                joined.append([start, end])
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in joined]
