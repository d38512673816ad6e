"""No network at run time: the real pipeline runs on a sample call inside a network namespace
with no interfaces but loopback (`unshare -rn`), and succeeds.

Skipped only where namespaces cannot be created AND the CI variable is unset: in CI a missing
namespace is a failure, not a silent skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR

from pipeline.offline import OFFLINE_ENV
from pipeline.store import read_table

ROOT = Path(__file__).resolve().parent.parent


def _unshare_prefix() -> list[str] | None:
    """`unshare -rn` (user namespace too, for non-root) or `unshare -n` (root), whichever works here."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return None


@pytest.fixture(scope="module")
def no_network() -> list[str]:
    prefix = _unshare_prefix()
    if prefix is None:
        if os.environ.get("CI"):
            pytest.fail("cannot create a network namespace (unshare -rn / -n), and CI is set: the offline test must run in CI")
        pytest.skip("network namespaces are not available here (unshare -rn / -n failed)")
    return prefix


def test_namespace_really_has_no_network(no_network: list[str]) -> None:
    probe = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)"
    result = subprocess.run([*no_network, sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode != 0 and ("unreachable" in result.stderr or "OSError" in result.stderr or "Error" in result.stderr)


def test_pipeline_runs_without_network(no_network: list[str], tmp_path: Path) -> None:
    audio = SAMPLE_DIR / "poor_opening_mono.opus"  # the shortest sample: mono, so diarization runs too
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}  # the CLI itself must set them
    result = subprocess.run(
        [*no_network, sys.executable, "-m", "pipeline.cli", "run", str(audio), "--out", str(tmp_path / "out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    calls = read_table(tmp_path / "out", "calls")
    assert len(calls) == 1 and calls[0].status == "scored" and calls[0].score is not None
    assert read_table(tmp_path / "out", "failures") == []


def test_cli_sets_the_offline_switches() -> None:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}
    code = "import os, pipeline.cli; print(os.environ['HF_HUB_OFFLINE'], repr(os.environ['TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.split() == ["1", "''"], result.stderr
