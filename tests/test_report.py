"""The HTML report over the real sample output, a 1,000-call copy of it, and in headless Chromium."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.records import Failure, Finding
from pipeline.report import build_report, highlight, review_order, talk_band, write_report
from pipeline.store import read_frame, read_table, table_dir, write_part

TABLES = ("calls", "utterances", "findings", "scores", "failures")


def replicate(source: Path, target: Path, n_calls: int, change=lambda k, call: {}) -> None:
    """`n_calls` copies of the source's calls (cycling through them) under new ids, with agents, teams and
    call times spread over three weeks, written as one part per table."""
    calls = read_table(source, "calls")
    rows = {t: read_table(source, t) for t in ("utterances", "findings", "scores")}
    written: dict[str, list] = {"calls": [], **{t: [] for t in rows}}
    for k in range(n_calls):
        call = calls[k % len(calls)]
        call_id = f"{k:05d}{call.call_id}"
        metadata = {"agent_id": f"agent{k % 25:02d}", "team": ("sales", "support")[k % 2],
                    "call_time": datetime(2026, 11, 2) + timedelta(hours=7 * k % (24 * 21))}
        written["calls"].append(dataclasses.replace(call, call_id=call_id, **{**metadata, **change(k, call)}))
        for table, records in rows.items():
            written[table] += [dataclasses.replace(r, call_id=call_id) for r in records if r.call_id == call.call_id]
    for table, records in written.items():
        write_part(table_dir(target, table) / "run_date=2026-11-23" / "part-copy-00001.parquet", table, records, {})


@pytest.fixture(scope="module")
def with_agents(sample_run, tmp_path_factory) -> Path:
    """The sample's 14 calls with agent ids, teams and call times."""
    target = tmp_path_factory.mktemp("report_agents")
    replicate(sample_run, target, len(read_table(sample_run, "calls")))
    return target


@pytest.fixture(scope="module")
def sample_report(sample_run, rubric) -> str:
    return build_report(sample_run, rubric)


def test_report_has_a_section_with_transcript_and_timeline_for_every_sample_call(sample_run, sample_report):
    calls = read_table(sample_run, "calls")
    utterances = read_table(sample_run, "utterances")
    for call in calls:
        section = sample_report.split(f'id="call-{call.call_id}"', 1)[1].split("</section>", 1)[0]
        assert section.count('<div class="utt ') == sum(u.call_id == call.call_id for u in utterances)
        speakers = {u.speaker for u in utterances if u.call_id == call.call_id}
        assert section.count('<div class="lane">') == len(speakers)
    assert "calls to review first of the" not in sample_report  # all 14 shown: no cap note


def test_report_marks_the_findings_in_the_transcript(sample_run, sample_report):
    findings = read_table(sample_run, "findings")
    flags = [f for f in findings if f.kind == "flag" and f.utterance_idx is not None]
    assert flags, "the sample has flagged moments (the pitch-first calls)"
    for flag in flags:
        section = sample_report.split(f'id="call-{flag.call_id}"', 1)[1].split("</section>", 1)[0]
        assert re.search(rf'<(mark|span) class="(flag|badge flag)" title="{re.escape(flag.rule_id)}', section), flag.rule_id
    hits = [f for f in findings if f.kind == "hit" and f.utterance_idx is not None]
    modelled = [f for f in hits if (f.detail or "").startswith("classifier")]  # a whole sentence: a badge where it overlaps
    assert modelled, "the classifier finds something in the sample"
    for hit in modelled:
        section = sample_report.split(f'id="call-{hit.call_id}"', 1)[1].split("</section>", 1)[0]
        assert re.search(rf'class="(hit|badge hit)" title="{re.escape(hit.rule_id)} \(hit\): classifier, probability', section)
    # pattern hits: a few overlap another mark or differ from the words
    assert sample_report.count('<mark class="hit"') >= 0.8 * (len(hits) - len(modelled))


def test_report_shows_the_rubric_talk_band_and_pass_rates(sample_run, sample_report, rubric):
    band = talk_band(rubric)
    assert f"target {band.low:.2f}-{band.high:.2f}" in sample_report
    for criterion in set(read_frame(sample_run, "scores", ["criterion"])["criterion"]):
        assert f'"{criterion}"' in sample_report  # a bar of the pass-rate chart


def test_highlight_escapes_the_text_and_marks_the_words():
    finding = Finding("c", "discovery", "discovery.pitch_first", "flag", "agent", 0, 0.0, 1.0, "we OFFER", "pitch first")
    missing = Finding("c", "opening", "opening.greeting", "hit", "agent", 0, 0.0, 1.0, "good morning")
    html = str(highlight("<b>We offer</b> & more", [finding, missing]))
    assert html.startswith("&lt;b&gt;<mark class=\"flag\" title=\"discovery.pitch_first (flag): pitch first\">We offer</mark>&lt;/b&gt; &amp; more")
    assert '<span class="badge hit" title="opening.greeting (hit)">opening.greeting</span>' in html


def test_report_escapes_everything_taken_from_the_data(sample_run, tmp_path, rubric):
    attack = "<script>alert('x')</script>"
    replicate(sample_run, tmp_path, 3, change=lambda k, call: {"agent_id": attack, "review_reason": attack, "needs_review": True})
    utterances = read_table(tmp_path, "utterances")
    first = dataclasses.replace(utterances[0], text=attack + " hello")
    write_part(table_dir(tmp_path, "utterances") / "run_date=2026-11-23" / "part-copy-00001.parquet", "utterances",
               [first, *utterances[1:]], {})
    html = build_report(tmp_path, rubric)
    assert attack not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; hello" in html


def test_review_order_puts_failures_then_flagged_calls_then_the_lowest_scores(sample_run):
    calls = read_frame(sample_run, "calls")
    flagged = calls["score"].idxmax()
    calls.loc[flagged, ["needs_review", "review_reason"]] = [True, "role confidence 0.51"]
    failures = pd.DataFrame([dataclasses.asdict(Failure(None, "broken.wav", "ingest", "AudioError", "cannot decode"))])
    order = review_order(calls, read_frame(sample_run, "scores"), failures)
    assert list(order["source_path"][:2]) == ["broken.wav", calls.loc[flagged, "source_path"]]
    rest = order["score"][2:].tolist()
    assert rest == sorted(rest) and len(order) == len(calls) + 1


def test_report_of_1000_calls_builds_in_seconds_and_caps_the_call_sections(sample_run, tmp_path, rubric):
    replicate(sample_run, tmp_path / "out", 1000)
    started = time.perf_counter()
    path = write_report(tmp_path / "out", tmp_path / "report.html", rubric, max_calls=200)
    elapsed = time.perf_counter() - started
    html = path.read_text()
    assert elapsed < 20, f"{elapsed:.1f} s"  # 1.6 s measured on 2 shared cores
    assert html.count('<section class="call"') == 200
    assert "calls to review first of the 1000 with a transcript" in html
    assert path.stat().st_size < 15e6
    calls = read_frame(tmp_path / "out", "calls", ["agent_id", "call_time"])
    agent_weeks = {(a, t.isocalendar()[:2]) for a, t in zip(calls["agent_id"], calls["call_time"], strict=True)}
    assert html.count("<tr>\n    <td>agent</td>") == len(agent_weeks)


def test_report_command_writes_the_file(with_agents, tmp_path):
    target = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(with_agents), "-o", str(target), "--max-calls", "3"])
    assert result.exit_code == 0, result.output
    assert "report written to" in result.stderr
    assert target.read_text().count('<section class="call"') == 3


def test_report_command_on_a_folder_without_calls_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and not (tmp_path / "r.html").exists()


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None and os.environ.get("CI"):
        pytest.fail("chromium is not installed (CI is set): apt-get install chromium")
    return found


def render(browser: str, page: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium (offline: nothing to fetch)."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=180, check=True,
        )
    return done.stdout


def test_report_charts_render_in_headless_chromium(with_agents, tmp_path, rubric):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); set CI to make this a failure")
    page = write_report(with_agents, tmp_path / "report.html", rubric)
    dom = render(browser, page)
    charts = dom.split('class="chart" data-chart="')[1:]
    assert len(charts) == 4  # scores, pass rates, talk share, agents
    for chart in charts:
        number, body = chart.split('"', 1)
        assert 'class="main-svg"' in body.split('<h2 id="review">', 1)[0], f"chart {number} did not render"
    assert dom.count('class="main-svg"') >= 4
    assert dom.count('<section class="call"') == len(read_table(with_agents, "calls"))


@pytest.mark.parametrize("command", ["report", "agents"])
def test_help_explains_the_commands(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: callqa " + command in result.output
