"""`make eval`: speaker separation and roles measured against the sample calls' references.

For every call of a callqa output folder whose recording has a reference timeline
(`NAME.rttm`) and script (`NAME.script.json`) beside it:
- diarization error rate (pyannote.metrics, 0.25 s collar, overlap scored);
- roles: each found speaker's role against the reference role it overlaps most;
- agent talk share against the reference timeline's.
Then, on the mono calls, the clustering methods side by side, and the cost of diarization
against transcription.

Usage: python -m pipeline.evaluate data/sample OUT_DIR [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.diarization import DiarizeOptions, EmbeddingDiarizer
from pipeline.options import TranscribeOptions
from pipeline.records import Call, Utterance
from pipeline.rttm import Turn, parse_rttm, speaker_turns
from pipeline.stages.ingest import decode_channels
from pipeline.stages.segment import group_utterances
from pipeline.stages.transcribe import FasterWhisperTranscriber, transcribe
from pipeline.store import read_table

COLLAR_S = 0.25
TARGETS = {"der_two_speaker_mono": 0.10, "role_accuracy": 1.0, "talk_share_error": 0.03}  # two-speaker calls


@dataclass(frozen=True)
class CallEval:
    name: str
    mode: str
    channels: int
    n_speakers: int
    n_speakers_ref: int
    der: float
    roles_right: bool
    agent_talk_share: float | None
    agent_talk_share_ref: float
    role_confidence: float | None

    @property
    def talk_share_error(self) -> float | None:
        return None if self.agent_talk_share is None else abs(self.agent_talk_share - self.agent_talk_share_ref)


def _annotation(turns: list[Turn]):
    from pyannote.core import Annotation, Segment

    annotation = Annotation()
    for i, t in enumerate(turns):
        annotation[Segment(t.start_s, t.end_s), i] = t.speaker
    return annotation


def der(reference: list[Turn], hypothesis: list[Turn], duration_s: float) -> float:
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=COLLAR_S, skip_overlap=False)
    return float(metric(_annotation(reference), _annotation(hypothesis), uem=Timeline([Segment(0.0, duration_s)])))


def reference_roles(script: dict) -> dict[str, str]:
    return {t.get("speaker", t["role"]): t["role"] for t in script["turns"]}


def agent_share(turns: list[Turn], role_of: dict[str, str]) -> float:
    talk = defaultdict(float)
    for t in turns:
        talk[role_of.get(t.speaker, "unknown")] += t.end_s - t.start_s
    return talk["agent"] / ((talk["agent"] + talk["customer"]) or 1.0)


def roles_right(utterances: list[Utterance], reference: list[Turn], ref_roles: dict[str, str]) -> bool:
    """Every found speaker has the role of the reference speaker it overlaps most."""
    overlap: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for u in utterances:
        for t in reference:
            overlap[u.speaker][ref_roles[t.speaker]] += max(0.0, min(u.end_s, t.end_s) - max(u.start_s, t.start_s))
    role_of = {u.speaker: u.role for u in utterances}
    return all(role_of[s] == max(by_role, key=by_role.get) for s, by_role in overlap.items())


def evaluate_call(call: Call, utterances: list[Utterance], sample_dir: Path) -> CallEval | None:
    name = Path(call.source_path).name.split(".")[0]
    rttm, script_path = sample_dir / f"{name}.rttm", sample_dir / f"{name}.script.json"
    if not (rttm.is_file() and script_path.is_file()):
        return None
    script = json.loads(script_path.read_text())
    reference = parse_rttm(rttm.read_text())
    ref_roles = reference_roles(script)
    return CallEval(
        name=name,
        mode=call.diarization_mode,
        channels=call.channels or 0,
        n_speakers=call.n_speakers,
        n_speakers_ref=len(ref_roles),
        der=round(der(reference, speaker_turns(utterances), call.duration_s), 4),
        roles_right=roles_right(utterances, reference, ref_roles),
        agent_talk_share=call.agent_talk_share,
        agent_talk_share_ref=round(agent_share(reference, ref_roles), 3),
        role_confidence=call.role_confidence,
    )


def evaluate_run(out_dir: Path, sample_dir: Path) -> list[CallEval]:
    """Every call of a callqa output folder that has references in `sample_dir`."""
    utterances = defaultdict(list)
    for u in read_table(out_dir, "utterances"):
        utterances[u.call_id].append(u)
    evals = [evaluate_call(c, utterances[c.call_id], sample_dir) for c in read_table(out_dir, "calls")]
    return sorted((e for e in evals if e is not None), key=lambda e: e.name)


def summary(evals: list[CallEval]) -> dict[str, float]:
    mono_two = [e.der for e in evals if e.channels == 1 and e.n_speakers_ref == 2]
    errors = [e.talk_share_error for e in evals if e.talk_share_error is not None and e.n_speakers_ref == 2]
    errors_multi = [e.talk_share_error for e in evals if e.talk_share_error is not None and e.n_speakers_ref > 2]
    return {
        "der_two_speaker_mono": round(sum(mono_two) / len(mono_two), 4) if mono_two else float("nan"),
        "der_two_speaker_mono_max": max(mono_two, default=float("nan")),
        "role_accuracy": round(sum(e.roles_right for e in evals) / len(evals), 4),
        "talk_share_error": round(sum(errors) / len(errors), 4) if errors else float("nan"),
        "talk_share_error_max": round(max(errors, default=float("nan")), 4),
        "talk_share_error_three_speakers_max": round(max(errors_multi, default=float("nan")), 4),
    }


def compare_methods(out_dir: Path, sample_dir: Path, evals: list[CallEval]) -> list[dict]:
    """Clustering methods side by side on the mono calls, from the stored words; diarization
    time against transcription time of the same audio."""
    calls = {Path(c.source_path).name.split(".")[0]: c for c in read_table(out_dir, "calls")}
    words = defaultdict(list)
    for w in read_table(out_dir, "words"):
        words[w.call_id].append(w)
    transcriber = FasterWhisperTranscriber(TranscribeOptions())
    rows = []
    for e in (e for e in evals if e.channels == 1):
        call = calls[e.name]
        audio = decode_channels(Path(call.source_path), 1)
        reference = parse_rttm((sample_dir / f"{e.name}.rttm").read_text())
        started = time.perf_counter()
        transcribe(call, audio, transcriber)
        row = {"call": e.name, "duration_s": call.duration_s, "transcribe_s": round(time.perf_counter() - started, 2)}
        for method in ("spectral", "agglomerative"):
            diarizer = EmbeddingDiarizer(DiarizeOptions(method=method, min_speakers=e.n_speakers_ref, max_speakers=e.n_speakers_ref))
            started = time.perf_counter()
            labelled = diarizer.assign(words[call.call_id], audio)
            row[f"{method}_s"] = round(time.perf_counter() - started, 2)
            _, utterances = group_utterances(labelled, 1.0)
            row[f"der_{method}"] = round(der(reference, speaker_turns(utterances), call.duration_s), 4)
        rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("-" if r[c] is None else str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sample_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    evals = evaluate_run(args.out_dir, args.sample_dir)
    rows = [{**asdict(e), "talk_share_error": None if e.talk_share_error is None else round(e.talk_share_error, 3)} for e in evals]
    print(_table(rows), end="\n\n")
    figures = summary(evals)
    for key, value in figures.items():
        target = TARGETS.get(key, TARGETS.get(key.removesuffix("_max")))
        if target is None:
            print(f"{key}: {value}")
            continue
        ok = value >= target if key == "role_accuracy" else value <= target
        print(f"{key}: {value} (target {'>=' if key == 'role_accuracy' else '<='} {target}) {'ok' if ok else 'MISSED'}")
    methods = compare_methods(args.out_dir, args.sample_dir, evals)
    print("\nClustering methods on the mono calls (same embeddings, true speaker count):\n")
    print(_table(methods))
    ratio = sum(r["spectral_s"] for r in methods) / sum(r["transcribe_s"] for r in methods)
    print(f"\ndiarization / transcription time on mono calls: {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"calls": rows, "summary": figures, "methods": methods, "diarize_over_transcribe": ratio}, indent=2))


if __name__ == "__main__":
    main()
