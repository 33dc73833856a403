"""Competence apart from strategy: every law on all games, on valid games, and as a two-part model.

A model that cannot follow the reply format loses payoff for another reason than a model that
bargains badly, so each group's focal outcome is fitted against capability

(a) on all complete games (the scaling table),
(b) on valid games only: complete, and every move of every seat valid after the re-asks, and
(c) as a two-part model: part 1 is P(valid game) ~ logit(a + b * capability) on all complete
    games (competence), part 2 the outcome given valid play, i.e. fit (b) (strategy). Together
    E[y] = P(valid) E[y | valid] + (1 - P(valid)) E[y | not valid].

The table is long: ``sample`` is ``all`` or ``valid``, ``outcome`` is ``share``,
``exploitation_index`` or ``valid_game`` (part 1, on all games).
"""

from __future__ import annotations

import pandas as pd

from analysis.fits import OUTCOMES, fit_law

COLUMNS = ("sample", "outcome", "family", "n_obs", "n_clusters", "mean", "slope", "slope_ci_low", "slope_ci_high",
           "slope_p", "slope_boot_low", "slope_boot_high", "r2")


def competence_table(scaling: pd.DataFrame, focal: pd.DataFrame, keys: list[str], n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Fits (a), (b) and part 1 of (c) per group; ``scaling`` holds fit (a) (see :func:`fits.scaling_table`)."""
    rows = [] if scaling.empty else [{**row, "sample": "all"} for row in scaling.to_dict("records")]
    for i, (group, df) in enumerate(focal.groupby(keys, sort=True, dropna=False)):
        group = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        valid = df[df["valid_game"]]
        for outcome, family in OUTCOMES.items():
            d = valid.dropna(subset=[outcome])
            fit = fit_law(d["capability"], d[outcome], d["draw_id"], family, n_boot=n_boot, seed=seed + i)
            rows.append({**group, "sample": "valid", "outcome": outcome, **fit.row})
        fit = fit_law(df["capability"], df["valid_game"].astype(float), df["draw_id"], "logit", n_boot=n_boot,
                      seed=seed + i)
        rows.append({**group, "sample": "all", "outcome": "valid_game", **fit.row})
    if not rows:
        return pd.DataFrame(columns=[*keys, *COLUMNS])
    table = pd.DataFrame(rows).reindex(columns=[*keys, *COLUMNS])
    order = {"all": 0, "valid": 1}
    return table.sort_values([*keys, "outcome", "sample"], key=lambda c: c.map(order) if c.name == "sample" else c,
                             ignore_index=True)
