"""Agent and team scorecards: per agent (and per team) and period, what their calls scored.

One row per agent or team and period: calls, the mean overall score, the mean score of each
criterion the scores table holds (whatever the rubric was), the mean agent talk share, the mean
number of discovery questions before the first pitch, and the change of the mean score against
the same agent's (or team's) previous period with calls. Criterion scores are scaled to 0-100
like the overall score, as `callqa check` does.

A call is placed in a period by its `call_time`; a call without one (no sidecar, manifest or
file name pattern gave it) by the date of the run that wrote it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ConfigError
from pipeline.store import atomic_file, part_files, read_frame

CALL_COLUMNS = ["call_id", "agent_id", "team", "call_time", "score", "agent_talk_share", "n_questions_before_pitch", "needs_review"]
CRITERION_PREFIX = "score_"  # criterion columns: score_<criterion>, 0-100


class Period(StrEnum):
    day = "day"
    week = "week"
    month = "month"


def period_start(when: pd.Series, period: Period) -> pd.Series:
    """The first day of the day, ISO week (Monday) or month each timestamp falls in."""
    days = when.dt.normalize()
    if period == Period.week:
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    if period == Period.month:
        return days - pd.to_timedelta(days.dt.day - 1, unit="D")
    return days


def period_label(start: pd.Series, period: Period) -> pd.Series:
    """`2026-11-23`, `2026-W48` (ISO week) or `2026-11`."""
    if period == Period.week:
        iso = start.dt.isocalendar()
        return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    return start.dt.strftime("%Y-%m" if period == Period.month else "%Y-%m-%d")


def run_dates(out_dir: Path) -> dict[str, date]:
    """The date of the run that committed each call (the `run_date=` folder of its calls part)."""
    dates: dict[str, date] = {}
    for path in part_files(out_dir, "calls"):
        key, _, value = path.parent.name.partition("=")
        if key != "run_date":
            continue
        for call_id in pq.read_table(path, columns=["call_id"]).column("call_id").to_pylist():
            dates[call_id] = date.fromisoformat(value)
    return dates


def calls_with_time(out_dir: Path) -> pd.DataFrame:
    """The calls table's scorecard columns, with `when`: the call time, else the run's date."""
    calls = read_frame(out_dir, "calls", CALL_COLUMNS)
    fallback = pd.to_datetime(calls["call_id"].map(run_dates(out_dir)))
    return calls.assign(when=pd.to_datetime(calls["call_time"]).fillna(fallback))


def criterion_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Criterion scores as one 0-100 column per criterion (in the order they first appear), indexed by call."""
    names = list(pd.unique(scores["criterion"]))
    wide = scores.pivot_table(index="call_id", columns="criterion", values="score", aggfunc="mean", dropna=False) * 100
    return wide.reindex(columns=names).add_prefix(CRITERION_PREFIX)


def scorecards(calls: pd.DataFrame, scores: pd.DataFrame, period: Period = Period.week) -> pd.DataFrame:
    """One row per agent and period, then one per team and period (teams only when calls carry one).

    `calls` needs CALL_COLUMNS and `when`; `scores` the scores table's call_id, criterion, score.
    Columns: level (agent/team), agent_id, team, period, period_start, calls, needs_review, score,
    score_<criterion>..., agent_talk_share, n_questions_before_pitch, prev_period, score_delta.
    """
    wide = criterion_means(scores)
    frame = calls.join(wide, on="call_id")
    frame = frame.assign(period_start=period_start(frame["when"], period))
    metrics = ["score", *wide.columns, "agent_talk_share", "n_questions_before_pitch"]
    frame[metrics] = frame[metrics].astype("float64")
    parts = [_grouped(frame[frame["agent_id"].notna()], "agent_id", metrics),
             _grouped(frame[frame["team"].notna()], "team", metrics)]
    parts = [p for p in parts if len(p)]
    columns = ["level", "agent_id", "team", "period", "period_start", "calls", "needs_review", *metrics, "prev_period", "score_delta"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in metrics or c == "score_delta" else "object") for c in columns})
    table = pd.concat(parts, ignore_index=True)
    table["period"] = period_label(table["period_start"], period)
    table["period_start"] = table["period_start"].dt.date
    key = table["agent_id"].where(table["level"] == "agent", table["team"])
    previous = table.groupby([table["level"], key], sort=False)
    table["prev_period"] = previous["period"].shift()
    table["score_delta"] = table["score"] - previous["score"].shift()
    return table[columns]


def _grouped(frame: pd.DataFrame, key: str, metrics: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    groups = frame.groupby([key, "period_start"], sort=True)
    table = groups[metrics].mean()
    table.insert(0, "calls", groups.size())
    table.insert(1, "needs_review", groups["needs_review"].sum().astype("int64"))
    table = table.reset_index()
    if key == "agent_id":  # the team(s) the agent's calls of that period were made for
        table["team"] = groups["team"].agg(lambda teams: ",".join(sorted(set(teams.dropna())))).replace("", None).to_numpy()
    else:
        table["agent_id"] = None
    table["level"] = "agent" if key == "agent_id" else "team"
    return table


def agents_table(out_dir: Path, period: Period = Period.week) -> pd.DataFrame:
    """The scorecards of an output folder (see `scorecards`)."""
    return scorecards(calls_with_time(out_dir), read_frame(out_dir, "scores", ["call_id", "criterion", "score"]), period)


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """Write the scorecards atomically as Parquet or CSV (by the file's suffix)."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {path}: use a .parquet or .csv file name.")
    if suffix == ".csv":
        with atomic_file(path, "w") as f:
            table.to_csv(f, index=False)
    else:
        with atomic_file(path) as f:
            pq.write_table(pa.Table.from_pandas(table, preserve_index=False), f, compression="zstd")
    return path
