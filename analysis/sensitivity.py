"""Capability sensitivity: the same law fitted on every capability axis, side by side.

Axes: log10 parameters (``params_b``), release date, LMArena score (``arena_elo``), the offline
ladder's ``skill``, and ``bt_rating``, the in-game Bradley-Terry / Plackett-Luce rating of each
model from this store's own complete games. The last is fitted to the same outcomes it explains,
so it agrees with the data by construction; read it as a consistency check, not as evidence.

An axis is used when at least two focal models have a value on it. Per group and axis the table
gives the slope with its interval and p-value, the slope per standard deviation of the axis over
the focal models (comparable across axes), R^2 on the outcome's scale and the conclusion (``+``,
``-`` or ``n.s.`` at the 95% level). ``flag`` marks groups whose conclusion changes sign or
significance with the axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.fits import OUTCOMES, fit_law
from analysis.load import capability, capability_label

AXES = ("params_b", "release_date", "arena_elo", "skill", "bt_rating")
COLUMNS = ("axis", "axis_label", "outcome", "n_models", "n_obs", "n_clusters", "slope", "slope_ci_low",
           "slope_ci_high", "slope_p", "slope_per_sd", "r2", "conclusion", "flag")


def axis_values(agents: pd.DataFrame, ratings: pd.DataFrame, axis: str) -> pd.Series:
    """Capability of every agent row on ``axis`` (NaN where unknown)."""
    if axis == "bt_rating":
        return agents["model"].map(ratings.set_index("model")["rating"]).astype(float)
    return capability(agents, axis)


def sensitivity_table(agents: pd.DataFrame, ratings: pd.DataFrame, keys: list[str], outcome: str = "share",
                      n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per group and available axis: the fitted law of ``outcome`` and whether the conclusion holds."""
    focal = agents[agents["is_focal"] & (agents["status"] == "complete")].dropna(subset=[outcome])
    rows = []
    for axis in AXES:
        rated = focal.assign(capability=axis_values(focal, ratings, axis)).dropna(subset=["capability"])
        levels = rated.groupby("model")["capability"].first()
        if levels.nunique() < 2:
            continue
        label = "in-game rating (Elo)" if axis == "bt_rating" else capability_label(axis)
        for i, (group, df) in enumerate(rated.groupby(keys, sort=True, dropna=False)):
            group = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
            fit = fit_law(df["capability"], df[outcome], df["draw_id"], OUTCOMES[outcome], n_boot=n_boot,
                          seed=seed + i).row
            fit = {k: fit.get(k, np.nan) for k in ("n_obs", "n_clusters", "slope", "slope_ci_low", "slope_ci_high",
                                                    "slope_p", "r2")}
            rows.append({**group, "axis": axis, "axis_label": label, "outcome": outcome,
                         "n_models": df["model"].nunique(), **fit,
                         "slope_per_sd": fit["slope"] * float(levels.std(ddof=1)),
                         "conclusion": _conclusion(fit)})
    if not rows:
        return pd.DataFrame(columns=[*keys, *COLUMNS])
    table = pd.DataFrame(rows)
    table["flag"] = table.groupby(keys, dropna=False)["conclusion"].transform(_flag)
    return table.sort_values(keys, kind="stable", ignore_index=True).reindex(columns=[*keys, *COLUMNS])


def _conclusion(fit: dict) -> str:
    """'+' or '-' when the 95% interval excludes 0, 'n.s.' when it does not, '' when nothing could be fitted."""
    if np.isnan(fit["slope"]):
        return ""
    if fit["slope_ci_low"] > 0 or fit["slope_ci_high"] < 0:
        return "+" if fit["slope"] > 0 else "-"
    return "n.s."


def _flag(conclusions: pd.Series) -> str:
    """'' if every axis agrees; else which part of the conclusion changes with the axis."""
    seen = set(conclusions) - {""}
    if {"+", "-"} <= seen:
        return "sign changes"
    if len(seen) > 1:
        return "significance changes"
    return ""
