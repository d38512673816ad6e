"""The HTML report for QA leads: one self-contained file that opens offline (no server, no CDN).

What it holds: the distribution of call scores, pass rates per criterion, the agent's talk share
against the rubric's target band, the calls to review first (failures, calls flagged for review,
then the lowest scores), agent and team scorecards (pipeline.agents), and for the first
`max_calls` calls of that list a section with the transcript coloured by role, the findings
highlighted in the text and a timeline of who spoke when.

Charts are plotly figures; plotly.js is embedded once. Everything taken from the data (transcript
text, file names, agent ids) goes through Jinja's autoescape or `markupsafe.escape`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from plotly.offline import get_plotlyjs

from pipeline.agents import CRITERION_PREFIX, Period, calls_with_time, scorecards
from pipeline.records import Finding, Utterance
from pipeline.rubric import Rubric
from pipeline.store import atomic_file, read_frame, read_table, require_transcribed

MAX_CALLS = 200
ROLE_COLOURS = {"agent": "#2563eb", "customer": "#059669", "unknown": "#6b7280"}
CHART_CONFIG = {"displaylogo": False, "responsive": True}
HIGHLIGHTED_KINDS = ("hit", "flag")  # misses have no words; metrics span whole stretches of talk


@dataclass(frozen=True)
class Band:
    """The agent talk-share target of the rubric's talk_ratio criterion, overall and per team."""

    low: float
    high: float
    by_team: Mapping[str, tuple[float, float]]


def talk_band(rubric: Rubric) -> Band | None:
    """The band of the first criterion of kind talk_ratio (`params.band`, `params.band_by_team`)."""
    criterion = next((c for c in rubric.criteria if c.kind == "talk_ratio"), None)
    if criterion is None:
        return None
    low, high = criterion.params["band"]
    by_team = {team: (float(lo), float(hi)) for team, (lo, hi) in criterion.params.get("band_by_team", {}).items()}
    return Band(float(low), float(high), by_team)


def review_order(calls: pd.DataFrame, scores: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Failed calls first, then calls flagged for review, then the rest by score (unscored first, then lowest).
    Columns: call_id, source_path, agent_id, score, needs_review, reason, failed_criteria, has_transcript."""
    failed = scores[scores["passed"] == False].groupby("call_id")["criterion"].agg(", ".join)  # noqa: E712 (nullable)
    done = calls.assign(
        reason=calls["review_reason"].where(calls["needs_review"], None),
        failed_criteria=calls["call_id"].map(failed).fillna(""),
        has_transcript=True,
        rank=calls["needs_review"].map({True: 1, False: 2}),
    )
    broken = pd.DataFrame({
        "call_id": failures["call_id"], "source_path": failures["source_path"], "agent_id": None, "score": float("nan"),
        "needs_review": True, "reason": "failed at " + failures["stage"] + ": " + failures["error_type"] + ": " + failures["message"],
        "failed_criteria": "", "has_transcript": False, "rank": 0,
    })
    columns = ["call_id", "source_path", "agent_id", "score", "needs_review", "reason", "failed_criteria", "has_transcript", "rank"]
    ordered = pd.concat([frame[columns] for frame in (broken, done) if len(frame)], ignore_index=True)
    return ordered.sort_values(["rank", "score", "source_path"], na_position="first", kind="stable").drop(columns="rank")


# Charts


def _html(figure: go.Figure, name: str) -> Markup:
    figure.update_layout(margin={"l": 60, "r": 40, "t": 50, "b": 50}, height=figure.layout.height or 360, template="plotly_white")
    return Markup(figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}", config=CHART_CONFIG))


def score_chart(calls: pd.DataFrame) -> Markup:
    figure = go.Figure(go.Histogram(x=calls["score"].dropna(), xbins={"start": 0, "end": 100, "size": 5}, marker_color="#2563eb",
                                    hovertemplate="score %{x}: %{y} calls<extra></extra>"))
    figure.update_layout(title="Call scores", xaxis_title="score (0-100)", yaxis_title="calls", xaxis_range=[0, 100], bargap=0.05)
    return _html(figure, "scores")


def pass_rates(scores: pd.DataFrame) -> pd.DataFrame:
    """Per criterion (in rubric order): calls judged, calls passed, pass rate in percent."""
    judged = scores[scores["passed"].notna()]
    table = judged.groupby("criterion", sort=False)["passed"].agg(judged="size", passed="sum")
    table = table.reindex([c for c in pd.unique(scores["criterion"]) if c in table.index])
    return table.assign(rate=100 * table["passed"] / table["judged"]).reset_index()


def pass_rate_chart(rates: pd.DataFrame) -> Markup:
    colours = ["#dc2626" if r < 50 else "#f59e0b" if r < 80 else "#16a34a" for r in rates["rate"]]
    figure = go.Figure(go.Bar(x=rates["rate"], y=rates["criterion"], orientation="h", marker_color=colours,
                              text=[f"{r:.0f}%" for r in rates["rate"]], textposition="outside", cliponaxis=False,
                              customdata=rates[["passed", "judged"]], hovertemplate="%{y}: %{customdata[0]} of %{customdata[1]} calls passed"
                              "<extra></extra>"))
    figure.update_layout(title="Pass rate per criterion", xaxis_title="% of judged calls that passed", xaxis_range=[0, 100],
                         yaxis_autorange="reversed", height=max(360, 28 * len(rates) + 100))
    return _html(figure, "pass-rates")


def talk_chart(calls: pd.DataFrame, band: Band | None) -> Markup:
    shares = calls[calls["agent_talk_share"].notna()]
    if shares["agent_id"].notna().any():
        by_agent = shares.assign(agent=shares["agent_id"].fillna("(no agent id)"))
        figure = go.Figure(go.Box(x=by_agent["agent_talk_share"], y=by_agent["agent"], orientation="h", boxpoints="all", jitter=0.4,
                                  marker_color="#2563eb", hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
        figure.update_layout(yaxis_title="agent", yaxis_categoryorder="category descending", height=max(360, 22 * by_agent["agent"].nunique() + 120))
    else:
        figure = go.Figure(go.Histogram(x=shares["agent_talk_share"], xbins={"start": 0, "end": 1, "size": 0.025}, marker_color="#2563eb",
                                        hovertemplate="talk share %{x}: %{y} calls<extra></extra>"))
        figure.update_layout(yaxis_title="calls", bargap=0.05)
    if band is not None:
        figure.add_vrect(x0=band.low, x1=band.high, fillcolor="#16a34a", opacity=0.12, line_width=0,
                         annotation_text=f"target {band.low:.2f}-{band.high:.2f}", annotation_position="top left")
    figure.update_layout(title="Agent talk share against the target band", xaxis_title="agent share of talk time", xaxis_range=[0, 1])
    return _html(figure, "talk-share")


def agent_chart(cards: pd.DataFrame) -> Markup | None:
    """Each agent's latest period, criterion by criterion."""
    agents = cards[cards["level"] == "agent"]
    if agents.empty:
        return None
    latest = agents.sort_values("period_start").groupby("agent_id", sort=True).tail(1).sort_values("agent_id")
    criteria = [c for c in cards.columns if c.startswith(CRITERION_PREFIX) and c != "score_delta"]
    labels = [c.removeprefix(CRITERION_PREFIX) for c in criteria]
    rows = [f"{a} ({p})" for a, p in zip(latest["agent_id"], latest["period"], strict=True)]
    figure = go.Figure(go.Heatmap(z=latest[criteria].to_numpy(), x=labels, y=rows, zmin=0, zmax=100, colorscale="RdYlGn",
                                  hovertemplate="%{y}<br>%{x}: %{z:.0f}<extra></extra>", colorbar={"title": "0-100"}))
    figure.update_layout(title="Mean criterion scores per agent (latest period)", yaxis_autorange="reversed",
                         height=max(360, 26 * len(rows) + 160), xaxis_tickangle=-30)
    return _html(figure, "agents")


# Transcripts


@dataclass(frozen=True)
class Line:
    """One utterance as shown: role, speaker, time and its text with the findings marked."""

    idx: int
    role: str
    speaker: str
    start: str
    text: Markup
    flagged: bool


def clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return ""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def highlight(text: str, findings: Iterable[Finding]) -> Markup:
    """The utterance text, escaped, with each finding's words wrapped in a <mark> (narrowest first, no overlaps:
    a pattern's few words win over the classifier's whole sentence); a finding whose words are not found in the
    text, or overlap a mark, gets a badge after it."""
    spans: list[tuple[int, int, Finding]] = []
    badges: list[Finding] = []
    lowered = text.lower()
    for finding in sorted(findings, key=lambda f: len(f.text or "")):
        words = (finding.text or "").strip()
        at = lowered.find(words.lower()) if words else -1
        if at < 0 or any(at < end and at + len(words) > start for start, end, _ in spans):
            badges.append(finding)
        else:
            spans.append((at, at + len(words), finding))
    parts, cursor = [], 0
    for start, end, finding in sorted(spans, key=lambda s: s[0]):
        parts += [escape(text[cursor:start]), _mark(text[start:end], finding)]
        cursor = end
    parts.append(escape(text[cursor:]))
    parts += [Markup('<span class="badge {}" title="{}">{}</span>').format(f.kind, _tip(f), f.rule_id) for f in badges]
    return Markup("").join(parts)


def _tip(finding: Finding) -> str:
    return f"{finding.rule_id} ({finding.kind})" + (f": {finding.detail}" if finding.detail else "")


def _mark(words: str, finding: Finding) -> Markup:
    return Markup('<mark class="{}" title="{}">{}</mark>').format(finding.kind, _tip(finding), words)


def transcript(utterances: list[Utterance], findings: list[Finding]) -> list[Line]:
    by_utterance: dict[int, list[Finding]] = {}
    for f in findings:
        if f.kind in HIGHLIGHTED_KINDS and f.utterance_idx is not None:
            by_utterance.setdefault(f.utterance_idx, []).append(f)
    return [Line(u.utterance_idx, u.role, u.speaker, clock(u.start_s), highlight(u.text, by_utterance.get(u.utterance_idx, [])),
                 any(f.kind == "flag" for f in by_utterance.get(u.utterance_idx, [])))
            for u in utterances]


@dataclass(frozen=True)
class Bar:
    left: float  # percent of the call
    width: float
    role: str
    tip: str


def timeline(utterances: list[Utterance], duration_s: float | None) -> list[tuple[str, str, list[Bar]]]:
    """One lane per speaker (label, role, bars), placed in percent of the call's length."""
    timed = [u for u in utterances if u.start_s is not None and u.end_s is not None]
    end = max([duration_s or 0.0, *(u.end_s for u in timed)]) if timed else 0.0
    if end <= 0:
        return []
    lanes: dict[str, list[Bar]] = {}
    roles: dict[str, str] = {}
    for u in timed:
        roles.setdefault(u.speaker, u.role)
        tip = f"{u.speaker} ({u.role}) {clock(u.start_s)}-{clock(u.end_s)}: {u.text[:120]}"
        lanes.setdefault(u.speaker, []).append(Bar(100 * u.start_s / end, max(0.2, 100 * (u.end_s - u.start_s) / end), u.role, tip))
    return [(speaker, roles[speaker], bars) for speaker, bars in sorted(lanes.items())]


# The report


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("pipeline", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v, digits=0: "-" if v is None or v != v else f"{v:.{digits}f}"
    env.filters["signed"] = lambda v: "-" if v is None or v != v else f"{v:+.0f}"
    env.filters["heat"] = _heat
    env.filters["clock"] = clock
    return env


def _heat(value: float | None) -> str:
    """A background colour for a 0-100 score: red to amber to green."""
    if value is None or value != value:
        return "transparent"
    return f"hsl({1.2 * max(0.0, min(100.0, value)):.0f}, 70%, 88%)"


def _plain(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts with None (not NaN/NaT) where a value is missing, for the template."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _call_sections(out_dir: Path, calls: pd.DataFrame, scores: pd.DataFrame, call_ids: list[str]) -> list[dict]:
    if not call_ids:
        return []
    utterances, findings = read_table(out_dir, "utterances", call_ids=call_ids), read_table(out_dir, "findings", call_ids=call_ids)
    said: dict[str, list[Utterance]] = {}
    for u in utterances:
        said.setdefault(u.call_id, []).append(u)
    found: dict[str, list[Finding]] = {}
    for f in findings:
        found.setdefault(f.call_id, []).append(f)
    rows = calls.set_index("call_id")
    by_call = {cid: frame for cid, frame in scores[scores["call_id"].isin(call_ids)].groupby("call_id", sort=False)}
    sections = []
    for call_id in call_ids:
        call = _plain(rows.loc[[call_id]].reset_index())[0]
        mine = sorted(said.get(call_id, []), key=lambda u: u.utterance_idx)
        evidence = found.get(call_id, [])
        sections.append({
            "call_id": call_id, "call": call,
            "scores": _plain(by_call[call_id]) if call_id in by_call else [],
            "missing": [f for f in evidence if f.kind == "miss"],
            "flags": [f for f in evidence if f.kind == "flag"],
            "lines": transcript(mine, evidence),
            "lanes": timeline(mine, call["duration_s"]),
        })
    return sections


def build_report(out_dir: Path, rubric: Rubric, max_calls: int = MAX_CALLS, period: Period = Period.week) -> str:
    """The report of an output folder as one HTML document."""
    require_transcribed(out_dir)
    calls = calls_with_time(out_dir).merge(
        read_frame(out_dir, "calls", ["call_id", "source_path", "duration_s", "review_reason", "diarization_mode", "rubric_version"]),
        on="call_id")
    scores = read_frame(out_dir, "scores", ["call_id", "criterion", "score", "passed", "detail"])
    failures = read_frame(out_dir, "failures")
    order = review_order(calls, scores, failures)
    cards = scorecards(calls, scores[["call_id", "criterion", "score"]], period)
    shown = order[order["has_transcript"]]["call_id"].head(max_calls).tolist()
    band = talk_band(rubric)
    charts = [score_chart(calls), pass_rate_chart(pass_rates(scores)), talk_chart(calls, band)]
    charts += [c for c in [agent_chart(cards)] if c is not None]
    context = {
        "title": f"callqa report: {out_dir.name or out_dir}",
        "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "version": version("callqa"), "out_dir": str(out_dir),
        "rubric_versions": ", ".join(sorted(calls["rubric_version"].dropna().unique())) or "-", "rubric": rubric,
        "n_calls": len(calls), "n_scored": int(calls["score"].notna().sum()), "n_review": int(calls["needs_review"].sum()),
        "n_failed": len(failures), "mean_score": calls["score"].mean(), "band": band,
        "plotly_js": Markup(get_plotlyjs()), "charts": charts,
        "review": _plain(order.head(max_calls)), "n_review_rows": len(order), "shown": set(shown),
        "cards": _plain(cards),
        "criteria": [c.removeprefix(CRITERION_PREFIX) for c in cards.columns if c.startswith(CRITERION_PREFIX) and c != "score_delta"],
        "sections": _call_sections(out_dir, calls, scores, shown), "max_calls": max_calls,
        "n_with_transcript": int(order["has_transcript"].sum()), "colours": ROLE_COLOURS, "period": period.value,
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_report(out_dir: Path, path: Path, rubric: Rubric, max_calls: int = MAX_CALLS, period: Period = Period.week) -> Path:
    """Build the report and write it atomically to `path`."""
    html = build_report(out_dir, rubric, max_calls, period)
    with atomic_file(path, "w") as f:
        f.write(html)
    return path
