"""Output names come from call ids, never from untrusted input paths or values; nothing is
written outside the output folder; file permissions follow the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR

from pipeline.names import path_inside, safe_name
from pipeline.options import Options
from pipeline.runner import run_audio, score_transcripts
from pipeline.store import read_table


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/cron.d/x", "..", ".hidden", "a/b", "a\\b", "x" * 300, "", "ok\x00"])
def test_safe_name_is_a_plain_name(value: str) -> None:
    name = safe_name(value)
    assert name and "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".") and len(name) <= 128


def test_safe_name_keeps_plain_ids_and_separates_unsafe_ones() -> None:
    assert safe_name("call-2026.11_23") == "call-2026.11_23"
    assert safe_name("../a/b") != safe_name("../a_b")


def test_path_inside_refuses_a_symlink_out(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "evil").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        path_inside(tmp_path / "out", "evil")


def test_transcript_call_ids_and_sidecar_values_cannot_escape(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    utterances = [{"speaker": "Agent", "text": "Thank you for calling, my name is Joe."}, {"speaker": "Customer", "text": "Hi Joe."}]
    for k, call_id in enumerate(["../../escaped", "/tmp/absolute", "..", "nested/../../up"]):
        (inputs / f"t{k}.json").write_text(json.dumps({"call_id": call_id, "agent_id": "../../agent", "utterances": utterances}))
    (inputs / "t0.meta.json").write_text(json.dumps({"agent_id": "../../../sidecar", "team": "/etc"}))
    before = _files(tmp_path)
    score_transcripts([inputs], tmp_path / "out", Options())
    outside = {p for p in _files(tmp_path) - before if not p.is_relative_to(tmp_path / "out")}
    assert outside == set()
    ids = [c.call_id for c in read_table(tmp_path / "out", "calls")]
    assert len(ids) == 4 and all(i == safe_name(i) for i in ids)


def test_audio_through_symlinks_and_dotdot_writes_only_under_out(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    link = inputs / "..sneaky name.opus"
    link.symlink_to((SAMPLE_DIR / "poor_opening_mono.opus").resolve())
    out = tmp_path / "out"
    before = _files(tmp_path)
    old = os.umask(0o077)
    try:
        summary = run_audio([tmp_path / "in" / ".." / "in" / link.name], out, Options())
    finally:
        os.umask(old)
    assert summary.n_failed == 0
    new = _files(tmp_path) - before
    assert new and all(p.is_relative_to(out) for p in new)
    (call,) = read_table(out, "calls")
    assert (out / "rttm" / f"{call.call_id}.rttm").is_file()
    for p in new:
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p  # umask 077: private to the owner
