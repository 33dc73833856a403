"""Descriptive tables: seat (order) effects, outcomes by competition level, competence vs strategy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats import cluster_mean_ci

ALL = "all"


def seat_effects(agents: pd.DataFrame, keys: list[str], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Seat advantage from counterbalanced games, per group and pooled.

    A draw played once with the focal model in every seat forms a set; the advantage of seat s in
    that set is the focal share at s minus the focal share averaged over the set's seats, so the model
    and the preferences cancel. Sets where any game failed or ended without a deal are left out.
    """
    focal = agents[agents["is_focal"] & (agents["status"] == "complete")]
    cols = ["model"] + keys
    by_set = focal.groupby(["experiment_id", "draw_index"])["share"]
    size, count = by_set.transform("size"), by_set.transform("count")
    seats = focal.groupby(["experiment_id", "draw_index"])["focal_seat"].transform("nunique")
    full = (size == focal["n_agents"]) & (seats == focal["n_agents"]) & (count == size)
    dev = focal[full].assign(advantage=focal["share"] - by_set.transform("mean"))
    columns = cols + ["seat", "advantage", "low", "high", "n_sets"]
    if dev.empty:
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng(seed)
    rows = []
    for group_cols in (cols, []):
        for group, d in dev.groupby(group_cols + ["focal_seat"], sort=True, dropna=False):
            row = dict(zip(group_cols + ["seat"], group))
            row.update({c: ALL for c in cols if c not in group_cols})
            m, lo, hi = cluster_mean_ci(d["advantage"], d["draw_id"], n_boot, rng)
            rows.append({**row, "advantage": m, "low": lo, "high": hi, "n_sets": len(d)})
    return pd.DataFrame(rows, columns=columns)


def by_competition(games: pd.DataFrame, keys: list[str], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Outcomes per competition level and group (and pooled over models and opponents)."""
    rng = np.random.default_rng(seed)
    done = games[games["status"] == "complete"]
    rows = []
    group_sets = (["competition", *[k for k in keys if k != "competition"], "focal_model"], ["competition"])
    for group_cols in group_sets:
        for group, g in done.groupby(group_cols, sort=True, dropna=False):
            row = dict(zip(group_cols, group if isinstance(group, tuple) else (group,)))
            row.update({c: ALL for c in group_sets[0] if c not in group_cols})
            row.update({
                "n_games": len(g), "agreement_rate": g["agreement"].mean(),
                "mean_agreement_round": g["agreement_round"].astype(float).mean(),
                "pareto_rate": g["pareto_optimal"].astype(float).mean(),
                "ef1_rate": g.loc[g["agreement"], "ef1"].astype(float).mean(),
                "gini": g["gini"].mean(), "focal_nbs_share": g["focal_nbs_share"].mean(),
            })
            for col in ("efficiency", "focal_share", "focal_exploitation_index"):
                m, lo, hi = cluster_mean_ci(g[col], g["draw_id"], n_boot, rng)
                row.update({col: m, f"{col}_low": lo, f"{col}_high": hi})
            rows.append(row)
    return pd.DataFrame(rows)


def validity(agents: pd.DataFrame) -> pd.DataFrame:
    """Per model: format failures, kept apart from payoffs; payoffs also shown in fully valid games.

    ``parse_failure_rate`` counts model calls whose reply failed to parse (re-asks included);
    ``invalid_move_rate`` counts proposals and votes finally recorded invalid. The ``*_valid_games``
    columns average over games in which no seat made an invalid move, so format failures are never
    read as tough bargaining.
    """
    rows = []
    for (model, role), d in agents.groupby(["model", "role"], sort=True):
        done = d[d["status"] == "complete"]
        valid = d[d["valid_game"]]
        rows.append({
            "model": model, "role": role, "n_games": len(d), "n_error_games": int((d["status"] != "complete").sum()),
            "n_calls": int(d["n_calls"].sum()),
            "parse_failure_rate": _ratio(d["parse_failures"].sum(), d["n_calls"].sum()),
            "reask_rate": _ratio(d["reasks"].sum(), d["n_calls"].sum()),
            "n_moves": int(d["moves"].sum()),
            "invalid_move_rate": _ratio((d["invalid_proposals"] + d["invalid_votes"]).sum(), d["moves"].sum()),
            "games_with_invalid_rate": float((done["invalid_moves"] > 0).mean()) if len(done) else np.nan,
            "share": done["share"].mean(), "share_valid_games": valid["share"].mean(),
            "exploitation_index": done["exploitation_index"].mean(),
            "exploitation_index_valid_games": valid["exploitation_index"].mean(),
            "n_valid_games": len(valid),
        })
    return pd.DataFrame(rows)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else np.nan
