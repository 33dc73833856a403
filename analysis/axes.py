"""Tables of the experimental axes: name effects, ecologies, prompt robustness and access scaling.

- ``name_effect``: like the seat effect, per display name: the share of the seat holding the name minus
  the mean share of the seats of the same game, so the model and the draw cancel where every name held
  every seat (``seats`` says which it held).
- ``ecology``: games of n >= 3. An invasion has one focal model among n - 1 copies of a resident, a
  mixed ecology any other lineup. Every seat's payoff relative to the other seats of its game
  (utility minus their mean), its share relative to an equal split (share x n) and relative to the
  reference solution (exploitation index, (u - u_NBS) / u_NBS).
- ``perturbation_variance``: the focal share's variance split into model, perturbation and
  preference-draw parts (main-effect sums of squares over the total; the rest is interaction and noise).
- ``perturbation_slope``: the capability slope of the focal share per perturbation (from the scaling
  fits) beside the unperturbed one, with Cochran's Q test of equal slopes: ``stable`` when it does not
  reject at 5% and every slope has the unperturbed slope's sign.
- ``access``: per cell played at several numbers of drafts k, the focal share, the calls and the cost per game.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.stats import ALPHA, cluster_mean_ci
from analysis.tables import ALL

DEFAULT_NAME = re.compile(r"^Agent_\d+$")


def name_effects(agents: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Share advantage of every display name that is not a default ``Agent_k``, per model and pooled."""
    columns = ["model", "name", "advantage", "low", "high", "n_games", "seats"]
    done = agents[(agents["status"] == "complete") & agents["share"].notna()]
    default = done["name"].astype(str).str.match(DEFAULT_NAME)
    d = done[~default.groupby([done["experiment_id"], done["game_index"]]).transform("all").astype(bool)]
    if d.empty:
        return pd.DataFrame(columns=columns)
    d = d.assign(advantage=d["share"] - d.groupby(["experiment_id", "game_index"])["share"].transform("mean"))
    rng = np.random.default_rng(seed)
    rows = []
    for group_cols in (["model", "name"], ["name"]):
        for group, g in d.groupby(group_cols, sort=True):
            group = group if isinstance(group, tuple) else (group,)
            m, lo, hi = cluster_mean_ci(g["advantage"], g["draw_id"], n_boot, rng)
            rows.append({"model": ALL, **dict(zip(group_cols, group)), "advantage": m, "low": lo, "high": hi,
                         "n_games": len(g), "seats": ",".join(map(str, sorted(g["seat"].unique())))})
    return pd.DataFrame(rows, columns=columns)


def ecology(agents: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per design, size, model and what it played against: payoffs relative to the others and to the reference."""
    columns = ["design", "n_agents", "model", "against", "n_games", "vs_others", "vs_others_low", "vs_others_high",
               "relative_share", "exploitation_index", "exploitation_index_low", "exploitation_index_high"]
    d = agents[(agents["status"] == "complete") & (agents["n_agents"] >= 3)].copy()
    if d.empty:
        return pd.DataFrame(columns=columns)
    game = d.groupby(["experiment_id", "game_index"])
    total, n = game["discounted_utility"].transform("sum"), d["n_agents"]
    d["vs_others"] = d["discounted_utility"] - (total - d["discounted_utility"]) / (n - 1)
    d["relative_share"] = d["share"] * n
    lineups = game.apply(_lineup, include_groups=False)
    d = d.join(lineups, on=["experiment_id", "game_index"])
    d["against"] = np.where(d["design"] == "invasion",
                            np.where(d["is_focal"], d["resident"], d["focal_model"]), "mixed")
    rng = np.random.default_rng(seed)
    rows = []
    for (design, size, model, against), g in d.groupby(["design", "n_agents", "model", "against"], sort=True):
        vs, vs_lo, vs_hi = cluster_mean_ci(g["vs_others"], g["draw_id"], n_boot, rng)
        ei, ei_lo, ei_hi = cluster_mean_ci(g["exploitation_index"], g["draw_id"], n_boot, rng)
        rows.append({"design": design, "n_agents": int(size), "model": model, "against": against,
                     "n_games": g[["experiment_id", "game_index"]].drop_duplicates().shape[0],
                     "vs_others": vs, "vs_others_low": vs_lo, "vs_others_high": vs_hi,
                     "relative_share": g["relative_share"].mean(), "exploitation_index": ei,
                     "exploitation_index_low": ei_lo, "exploitation_index_high": ei_hi})
    return pd.DataFrame(rows, columns=columns)


def _lineup(seats: pd.DataFrame) -> pd.Series:
    """A game's design: invasion (one focal model, every other seat one resident model) or mixed."""
    focal = seats["is_focal"]
    others = seats.loc[~focal, "model"].unique()
    invasion = len(others) == 1 and others[0] != seats.loc[focal, "model"].iloc[0]
    return pd.Series({"design": "invasion" if invasion else "mixed", "resident": others[0] if invasion else None})


def perturbation_variance(games: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Shares of the focal share's variance explained by the model, the perturbation and the preference draw,
    per cell of the condition fields other than the perturbation's."""
    cells = [k for k in keys if not k.startswith("perturb.")]
    columns = [*cells, "n_games", "variance", "model", "perturbation", "draw", "residual"]
    d = games[(games["status"] == "complete") & games["focal_share"].notna()]
    rows = []
    for cell, g in d.groupby(cells, sort=True, dropna=False):
        if g["perturbation"].nunique() < 2:
            continue
        y = g["focal_share"].astype(float)
        total = float(((y - y.mean()) ** 2).sum())
        parts = {name: float((g.groupby(col)["focal_share"].transform("mean") - y.mean()).pow(2).sum()) / total
                 if total > 0 else np.nan for name, col in (("model", "focal_model"), ("perturbation", "perturbation"),
                                                            ("draw", "draw_id"))}
        rows.append({**dict(zip(cells, cell if isinstance(cell, tuple) else (cell,))), "n_games": len(g), "variance": total / max(len(g) - 1, 1),
                     **parts, "residual": 1 - sum(parts.values()) if total > 0 else np.nan})
    return pd.DataFrame(rows, columns=columns)


def perturbation_slopes(scaling: pd.DataFrame, keys: list[str], games: pd.DataFrame) -> pd.DataFrame:
    """The focal share's capability slope per perturbation beside the unperturbed one, and whether it is stable.

    The scaling fits are grouped by the condition fields that vary; the ``perturb.*`` ones among them
    tell the perturbations apart (the games name each), the others the cell whose slopes are compared.
    """
    fields = [k for k in keys if k.startswith("perturb.")]
    others = [k for k in keys if k not in fields]
    columns = [*others, "perturbation", "slope", "slope_ci_low", "slope_ci_high", "difference", "heterogeneity_q",
               "heterogeneity_p", "stable"]
    if scaling.empty or not fields or "slope" not in scaling:
        return pd.DataFrame(columns=columns)
    share = scaling[(scaling["outcome"] == "share") & scaling["slope"].notna() & (scaling["slope_se"] > 0)]
    named = games.groupby(keys, dropna=False)["perturbation"].first().reset_index()
    share = share.merge(named, on=keys, how="left")
    rows = []
    for _, g in share.groupby(others, sort=True, dropna=False) if others else [((), share)]:
        if g["perturbation"].nunique() < 2:
            continue
        w = 1 / g["slope_se"] ** 2
        pooled = float((w * g["slope"]).sum() / w.sum())
        q = float((w * (g["slope"] - pooled) ** 2).sum())
        p = float(sps.chi2.sf(q, len(g) - 1))
        base = g.loc[g["perturbation"] == "none", "slope"]
        reference = float(base.iloc[0]) if len(base) else pooled
        stable = p >= ALPHA and bool((np.sign(g["slope"]) == np.sign(reference)).all())
        for _, row in g.iterrows():
            rows.append({**{k: row[k] for k in others}, "perturbation": row["perturbation"], "slope": row["slope"],
                         "slope_ci_low": row["slope_ci_low"], "slope_ci_high": row["slope_ci_high"],
                         "difference": row["slope"] - reference, "heterogeneity_q": q, "heterogeneity_p": p,
                         "stable": stable})
    return pd.DataFrame(rows, columns=columns)


def access(games: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per focal model and cell played at several draft counts k: the focal share, calls and cost per game."""
    cells = ["focal_model", "opponent", "game", "n_agents", "perturbation"]
    columns = [*cells, "access_k", "n_games", "focal_share", "focal_share_low", "focal_share_high",
               "calls_per_game", "cost_per_game"]
    d = games[games["status"] == "complete"]
    rng = np.random.default_rng(seed)
    rows = []
    for cell, c in d.groupby(cells, sort=True):
        if c["access_k"].nunique() < 2:
            continue
        for k, g in c.groupby("access_k", sort=True):
            m, lo, hi = cluster_mean_ci(g["focal_share"], g["draw_id"], n_boot, rng)
            rows.append({**dict(zip(cells, cell)), "access_k": int(k), "n_games": len(g), "focal_share": m,
                         "focal_share_low": lo, "focal_share_high": hi,
                         "calls_per_game": g["calls"].mean(), "cost_per_game": g["cost_usd"].mean()})
    return pd.DataFrame(rows, columns=columns)
