"""Agent and team scorecards over the real sample output, with agent ids, teams and call times
given to copies of its calls (the sample recordings carry none)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.agents import Period, agents_table
from pipeline.cli import app
from pipeline.records import Call
from pipeline.store import Dataset, read_table

MONDAY_W47, MONDAY_W48 = datetime(2026, 11, 16, 9, 30), datetime(2026, 11, 23, 14, 0)


def copy_with_metadata(source: Path, target: Path, metadata: Callable[[int, Call], dict]) -> list[Call]:
    """The source folder's calls, scores and findings in a new dataset, each call changed by `metadata(i, call)`."""
    calls = read_table(source, "calls")
    scores, findings, utterances = (read_table(source, t) for t in ("scores", "findings", "utterances"))
    changed = [dataclasses.replace(call, **metadata(i, call)) for i, call in enumerate(calls)]
    dataset = Dataset(target)
    with dataset.locked():
        for call in changed:
            dataset.stage({"calls": [call], "scores": [s for s in scores if s.call_id == call.call_id],
                           "findings": [f for f in findings if f.call_id == call.call_id],
                           "utterances": [u for u in utterances if u.call_id == call.call_id]})
        dataset.commit({"run_id": dataset.run_id})
    return changed


def two_agents_two_weeks(i: int, call: Call) -> dict:
    return {"agent_id": ("ann", "bob")[i % 2], "team": "sales" if i < 10 else None, "call_time": (MONDAY_W47, MONDAY_W48)[i // 7]}


@pytest.fixture(scope="module")
def agents_out(sample_run: Path, tmp_path_factory) -> tuple[Path, list[Call]]:
    target = tmp_path_factory.mktemp("agents")
    return target, copy_with_metadata(sample_run, target, two_agents_two_weeks)


def test_scorecards_hold_each_agent_and_week_with_their_means(agents_out):
    out_dir, calls = agents_out
    table = agents_table(out_dir, Period.week).set_index(["level", "agent_id", "period"])
    for agent in ("ann", "bob"):
        for week, monday in (("2026-W47", MONDAY_W47), ("2026-W48", MONDAY_W48)):
            mine = [c for c in calls if c.agent_id == agent and c.call_time == monday]
            row = table.loc[("agent", agent, week)]
            assert row["calls"] == len(mine)
            assert row["score"] == pytest.approx(statistics.mean(c.score for c in mine))
            assert row["agent_talk_share"] == pytest.approx(statistics.mean(c.agent_talk_share for c in mine))
            assert row["n_questions_before_pitch"] == pytest.approx(statistics.mean(c.n_questions_before_pitch for c in mine))
        first, second = table.loc[("agent", agent, "2026-W47")], table.loc[("agent", agent, "2026-W48")]
        assert pd.isna(first["score_delta"]) and second["prev_period"] == "2026-W47"
        assert second["score_delta"] == pytest.approx(second["score"] - first["score"])


def test_scorecards_have_one_column_per_criterion_of_the_scores_table(sample_run, agents_out):
    out_dir, calls = agents_out
    scores = read_table(sample_run, "scores")
    criteria = list(dict.fromkeys(s.criterion for s in scores))
    table = agents_table(out_dir, Period.week)
    assert [c for c in table.columns if c.startswith("score_") and c != "score_delta"] == [f"score_{c}" for c in criteria]
    ann_w47 = {c.call_id for c in calls if c.agent_id == "ann" and c.call_time == MONDAY_W47}
    row = table[(table["agent_id"] == "ann") & (table["period"] == "2026-W47")].iloc[0]
    for criterion in criteria:
        judged = [s.score for s in scores if s.call_id in ann_w47 and s.criterion == criterion and s.score is not None]
        if judged:
            assert row[f"score_{criterion}"] == pytest.approx(100 * statistics.mean(judged))
        else:
            assert pd.isna(row[f"score_{criterion}"])


def test_scorecards_per_team_count_only_calls_with_a_team(agents_out):
    out_dir, calls = agents_out
    table = agents_table(out_dir, Period.month)
    teams = table[table["level"] == "team"]
    assert list(teams["team"]) == ["sales"] and list(teams["period"]) == ["2026-11"]
    assert teams["calls"].iloc[0] == sum(c.team == "sales" for c in calls)
    assert teams["agent_id"].isna().all()


def test_calls_without_call_time_fall_in_the_period_of_their_run(sample_run, tmp_path):
    copy_with_metadata(sample_run, tmp_path, lambda i, call: {"agent_id": "ann", "call_time": None})
    (part,) = (tmp_path / "calls").glob("run_date=*/*.parquet")
    run_day = part.parent.name.removeprefix("run_date=")
    table = agents_table(tmp_path, Period.day)
    assert list(table["period"]) == [run_day]
    assert table["calls"].iloc[0] == len(read_table(sample_run, "calls"))


def test_agents_command_prints_and_writes_the_table(agents_out, tmp_path):
    out_dir, calls = agents_out
    target = tmp_path / "agents.csv"
    result = CliRunner().invoke(app, ["agents", str(out_dir), "--period", "week", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert "ann" in result.stdout and "2026-W48" in result.stdout
    written = pd.read_csv(target)
    assert len(written) == 2 * 2 + 2  # two agents and one team, two weeks each
    assert set(written["level"]) == {"agent", "team"}


def test_agents_command_says_how_to_give_agent_ids_when_calls_have_none(sample_run):
    result = CliRunner().invoke(app, ["agents", str(sample_run)])
    assert result.exit_code == 0
    assert "agent id" in result.stderr and "sidecar" in result.stderr


@pytest.mark.parametrize("args, message", [(["--period", "year"], "year"), (["--out", "agents.txt"], ".csv")])
def test_agents_command_rejects_bad_options(agents_out, args, message):
    result = CliRunner().invoke(app, ["agents", str(agents_out[0]), *args])
    assert result.exit_code == 2
    assert message in result.output + result.stderr
