"""Voice activity over recordings of any length: faster-whisper's Silero VAD, in pieces when long.

Silero's recurrent state drifts through long stretches without speech and then misses speech
it finds on its own: on the two-hour bad-input recording (line noise with a call in three
parts) one pass found only the first part, and a sample call preceded by 60 s of 8 kHz line
noise lost a quarter of its detected speech. Recordings longer than LONG_RECORDING_S are
therefore run through the VAD in PIECE_S pieces, each from a fresh state (which also bounds
its memory: one pass over two hours holds about 1 GB of windows). Shorter recordings take
one pass, exactly as faster-whisper does, so their results do not change.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
LONG_RECORDING_S = 600.0  # longer than any sample call; calls this long are where long holds happen
PIECE_S = 30.0  # speech within 20 s of a fresh state is found as in a short recording


def is_long(samples: np.ndarray) -> bool:
    return len(samples) > LONG_RECORDING_S * SAMPLE_RATE


def speech_timestamps(samples: np.ndarray, options) -> list[dict[str, int]]:
    """Speech regions as {"start", "end"} sample indices, like faster-whisper's get_speech_timestamps."""
    from faster_whisper.vad import get_speech_timestamps

    if not is_long(samples):
        return get_speech_timestamps(samples, options)
    piece = int(PIECE_S * SAMPLE_RATE)
    return [
        {"start": first + region["start"], "end": first + region["end"]}
        for first in range(0, len(samples), piece)
        for region in get_speech_timestamps(samples[first : first + piece], options)
    ]


def clips(regions: list[dict[str, int]], max_s: float = 30.0) -> list[tuple[float, float]]:
    """Consecutive speech regions joined into clips of at most `max_s` seconds (Whisper's window), in seconds."""
    joined: list[list[int]] = []
    for region in regions:
        if joined and region["end"] - joined[-1][0] <= max_s * SAMPLE_RATE:
            joined[-1][1] = region["end"]
        else:
            joined.append([region["start"], region["end"]])
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in joined]
