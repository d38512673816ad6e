"""`make bench`: callqa beside raw faster-whisper on the same audio and model settings.

Builds a benchmark set of two-party calls from data/sample/ (each stereo and mono call, at
its own rate and resampled to the other of 8 and 16 kHz: about 29 minutes), then measures,
each in a fresh process so that peak memory is its own:
- raw faster-whisper (decode + batched transcription of every channel, as callqa runs it);
- the whole callqa pipeline (decode, transcribe, diarize, score, write), 1 and 2 workers;
- re-scoring the stored transcripts;
- peak memory of the pipeline over 10 and over 100 short calls (it must not grow with the count).
Writes out/bench/bench.json and bench.md and prints the table.

Usage: python -m pipeline.bench [--sample-dir data/sample] [--out out/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import wave
from importlib.metadata import version
from pathlib import Path

import numpy as np

from pipeline.options import Options, TranscribeOptions
from pipeline.stages.ingest import decode_channels, probe
from pipeline.stages.transcribe import FasterWhisperTranscriber

RATES = (8000, 16000)


def build_set(sample_dir: Path, out_dir: Path) -> dict[str, list[Path]]:
    """Stereo and mono two-party calls as 16-bit wav, each at 8 and at 16 kHz."""
    from faster_whisper import decode_audio

    sets: dict[str, list[Path]] = {"stereo": [], "mono": []}
    for script_path in sorted(sample_dir.glob("*.script.json")):
        script = json.loads(script_path.read_text())
        if script.get("n_speakers", 2) != 2:
            continue
        source = sample_dir / script["audio"]
        kind = "stereo" if script["channels"] == 2 else "mono"
        for rate in RATES:
            target = out_dir / kind / f"{script['call']}_{rate // 1000}k.wav"
            if not target.exists():
                decoded = decode_audio(str(source), sampling_rate=rate, split_stereo=kind == "stereo")
                channels = np.stack(decoded, axis=1) if kind == "stereo" else decoded[:, None]
                target.parent.mkdir(parents=True, exist_ok=True)
                with wave.open(str(target), "wb") as f:
                    f.setnchannels(channels.shape[1])
                    f.setsampwidth(2)
                    f.setframerate(rate)
                    f.writeframes((np.clip(channels, -1, 1) * 32767).astype("<i2").tobytes())
            sets[kind].append(target)
    return sets


def build_short_calls(stereo: list[Path], out_dir: Path, n: int, seconds: float = 12.0) -> list[Path]:
    """`n` distinct short stereo calls cut from the stereo set (a different slice, and so a different
    call id, for each), for the memory-versus-count measurement."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        source = stereo[i % len(stereo)]
        target = out_dir / f"short_{i:03d}.wav"
        if not target.exists():
            with wave.open(str(source)) as f:
                rate, width, channels = f.getframerate(), f.getsampwidth(), f.getnchannels()
                f.setpos(int((i // len(stereo)) * 2.0 * rate))
                frames = f.readframes(int(seconds * rate))
            with wave.open(str(target), "wb") as f:
                f.setnchannels(channels)
                f.setsampwidth(width)
                f.setframerate(rate)
                f.writeframes(frames)
        paths.append(target)
    return paths


def _usage() -> dict[str, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "peak_rss_mb": max(own.ru_maxrss, children.ru_maxrss) / 1024,
    }


def measure_raw(paths: list[Path]) -> dict:
    """faster-whisper alone: the same model, settings and per-channel VAD as callqa."""
    started = time.perf_counter()
    transcriber = FasterWhisperTranscriber(TranscribeOptions())
    audio_s = n_words = 0
    for path in paths:
        channels, _ = probe(path)
        for samples in decode_channels(path, channels):
            n_words += len(transcriber.words(samples))
        audio_s += samples.size / 16000
    return {"wall_s": time.perf_counter() - started, "audio_s": audio_s, "n_calls": len(paths), "n_words": n_words, **_usage()}


def measure_pipeline(paths: list[Path], out_dir: Path, workers: int) -> dict:
    from pipeline.runner import run_audio

    shutil.rmtree(out_dir, ignore_errors=True)
    inputs = out_dir.parent / f"{out_dir.name}-inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    for path in paths:
        (inputs / path.name).symlink_to(path.resolve())
    summary = run_audio([inputs], out_dir, Options(), workers=workers)
    return {
        "wall_s": summary.wall_s, "audio_s": summary.audio_s, "n_calls": summary.n_done, "n_failed": summary.n_failed,
        "stage_s": summary.stage_s, **_usage(),
    }


def measure_rescore(out_dir: Path) -> dict:
    from pipeline.runner import Keys, RunSettings, Scorer, rescore
    from pipeline.store import read_table

    started = time.perf_counter()
    Scorer(Options(), Keys(model="", settings=""))  # the load alone, to report it apart
    load_s = time.perf_counter() - started
    summary = rescore(out_dir, Options(), settings=RunSettings(force=True))
    n_utterances = len(read_table(out_dir, "utterances"))
    score_s = summary.stage_s.get("score", summary.wall_s)
    return {
        "wall_s": summary.wall_s, "load_s": load_s, "score_s": score_s, "n_calls": summary.n_done,
        "n_utterances": n_utterances, "audio_s": sum(c.duration_s or 0 for c in read_table(out_dir, "calls")), **_usage(),
    }


def _child(kind: str, *args: str) -> dict:
    """One measurement in a fresh interpreter, so its peak memory and CPU time are its own."""
    command = [sys.executable, "-m", "pipeline.bench", "--measure", kind, *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    packages = ("callqa", "faster-whisper", "ctranslate2", "spacy", "torch", "resemblyzer")
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), **{p: version(p) for p in packages}}


def row(name: str, m: dict, raw: dict | None = None) -> dict:
    return {
        "run": name,
        "calls": m["n_calls"],
        "audio_min": round(m["audio_s"] / 60, 1),
        "wall_s": round(m["wall_s"], 1),
        "rtf_x": round(m["audio_s"] / m["wall_s"], 1),
        "calls_per_s": round(m["n_calls"] / m["wall_s"], 3),
        "cpu_s": round(m["cpu_s"], 1),
        "peak_mb": round(m["peak_rss_mb"]),
        "vs_raw": round(m["wall_s"] / raw["wall_s"], 2) if raw else None,
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join("" if v is None else str(v) for v in r.values()) + " |" for r in rows])


def run_bench(sample_dir: Path, out_dir: Path) -> dict:
    sets = build_set(sample_dir, out_dir / "audio")
    every = sets["stereo"] + sets["mono"]
    encode = lambda paths: ",".join(map(str, paths))  # noqa: E731
    m = {
        "raw_stereo": _child("raw", encode(sets["stereo"])),
        "pipeline_stereo": _child("pipeline", encode(sets["stereo"]), str(out_dir / "run-stereo"), "1"),
        "raw_mono": _child("raw", encode(sets["mono"])),
        "pipeline_mono": _child("pipeline", encode(sets["mono"]), str(out_dir / "run-mono"), "1"),
        "raw_all": _child("raw", encode(every)),
        "pipeline_all_1": _child("pipeline", encode(every), str(out_dir / "run-all-1"), "1"),
        "pipeline_all_2": _child("pipeline", encode(every), str(out_dir / "run-all-2"), "2"),
    }
    m["rescore"] = _child("rescore", str(out_dir / "run-all-1"))
    for n in (10, 100):
        m[f"short_{n}"] = _child("pipeline", encode(build_short_calls(sets["stereo"], out_dir / "short", n)), str(out_dir / f"run-short-{n}"), "1")
    rows = [
        row("raw faster-whisper, stereo", m["raw_stereo"]),
        row("callqa, stereo, 1 worker", m["pipeline_stereo"], m["raw_stereo"]),
        row("raw faster-whisper, mono", m["raw_mono"]),
        row("callqa, mono (with diarization), 1 worker", m["pipeline_mono"], m["raw_mono"]),
        row("raw faster-whisper, all", m["raw_all"]),
        row("callqa, all, 1 worker", m["pipeline_all_1"], m["raw_all"]),
        row("callqa, all, 2 workers", m["pipeline_all_2"], m["raw_all"]),
        row("callqa, 10 short calls, 1 worker", m["short_10"]),
        row("callqa, 100 short calls, 1 worker", m["short_100"]),
    ]
    stages = {name: m[name]["stage_s"] for name in ("pipeline_stereo", "pipeline_mono", "pipeline_all_1")}
    r = m["rescore"]
    utterances_per_min = r["n_utterances"] / (r["audio_s"] / 60)
    rescoring = {
        "calls_per_s": round(r["n_calls"] / r["score_s"], 2),
        "utterances_per_s": round(r["n_utterances"] / r["score_s"]),
        "five_minute_calls_per_s": round(r["n_utterances"] / r["score_s"] / (5 * utterances_per_min), 2),
        "load_s": round(r["load_s"], 2),
        "peak_mb": round(r["peak_rss_mb"]),
    }
    return {"machine": machine(), "rows": rows, "stage_s": stages, "rescoring": rescoring, "raw": m}


def report(result: dict) -> str:
    share = lambda stages: ", ".join(f"{k} {100 * v / sum(stages.values()):.0f}%" for k, v in stages.items())  # noqa: E731
    lines = [
        f"Machine: {result['machine']['cores']} cores, {result['machine']['cpu']}; "
        + ", ".join(f"{k} {v}" for k, v in result["machine"].items() if k not in ("cores", "cpu")),
        "",
        markdown(result["rows"]),
        "",
        "Stage shares of the pipeline's wall time:",
        *[f"- {name}: {share(stages)}" for name, stages in result["stage_s"].items()],
        "",
        "Re-scoring stored transcripts: {calls_per_s} calls/s, {utterances_per_s} utterances/s "
        "(about {five_minute_calls_per_s} five-minute calls/s); scorer load {load_s} s; peak {peak_mb} MB".format(**result["rescoring"]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample-dir", type=Path, default=Path("data/sample"))
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, *rest = args.measure
        paths = [Path(p) for p in rest[0].split(",")] if kind != "rescore" else []
        measured = {
            "raw": lambda: measure_raw(paths),
            "pipeline": lambda: measure_pipeline(paths, Path(rest[1]), int(rest[2])),
            "rescore": lambda: measure_rescore(Path(rest[0])),
        }[kind]()
        print(json.dumps(measured))
        return
    result = run_bench(args.sample_dir, args.out)
    text = report(result)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    (args.out / "bench.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
