"""Shared fixtures: paths into data/sample/, the loaded rubric and annotator, and one real
pipeline run over the whole sample (session-scoped: the speech model runs once per session)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.options import Options
from pipeline.rubric import load_rubric
from pipeline.runner import run_audio
from pipeline.stages.score import Annotator

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"


def sample_names() -> list[str]:
    """Every sample call that has a reference script."""
    return sorted(p.name.removesuffix(".script.json") for p in SAMPLE_DIR.glob("*.script.json"))


def load_script(name: str) -> dict:
    return json.loads((SAMPLE_DIR / f"{name}.script.json").read_text())


def load_expected(name: str) -> dict:
    return json.loads((SAMPLE_DIR / f"{name}.expected.json").read_text())


def sample_audio(name: str) -> Path:
    return SAMPLE_DIR / load_script(name)["audio"]


@pytest.fixture(scope="session", autouse=True)
def classifier_cache(request):
    """Trained classifiers go to .pytest_cache/d/callqa (the CLI's subprocesses inherit it), not ~/.cache: kept between
    sessions, as the rubric's encoder takes about 11 minutes to fine-tune the first time; `make clean` removes it."""
    os.environ["CALLQA_CACHE"] = str(request.config.cache.mkdir("callqa"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def rubric():
    return load_rubric()


@pytest.fixture(scope="session")
def annotator(rubric) -> Annotator:
    return Annotator(rubric)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """The whole pipeline, real models, over data/sample/; returns the output folder."""
    out_dir = tmp_path_factory.mktemp("sample_run")
    summary = run_audio([SAMPLE_DIR], out_dir, Options())
    assert summary.n_failed == 0, "a sample call failed"
    return out_dir
