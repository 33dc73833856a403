"""Scaling laws: the focal model's outcome against its capability, per opponent and condition.

For each group (opponent x varying env settings x competition level) and outcome:

- ``share`` (focal share of the total, agreements only) is fitted by a fractional logit
  (Bernoulli quasi-likelihood GLM, logit link): logit E[share] = a + b * capability.
- ``exploitation_index`` ((u - u_NBS) / u_NBS, every complete game, -1 on no deal) is unbounded
  above, so it is fitted by least squares: E[EI] = a + b * capability.

Standard errors are cluster-robust by preference draw (every ladder model plays the same draws, and
counterbalanced games replay them): the cluster jackknife (CV3) drives the Wald interval with t(G-1)
critical values, and the usual sandwich (CR1) is reported beside it. Bootstrap intervals resample
whole draws. A saturating alternative - the same link with capability capped at a plateau knot, profiled
over the observed capability levels - is compared by AIC (QAIC for the fractional logit). The
crossover is the capability at which the fitted outcome reaches the focal model's Nash-bargaining
value (its mean NBS share for ``share``; 0 for the exploitation index). The backtest refits without
the strongest model and predicts its mean outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as sps

from analysis.stats import (
    ALPHA,
    cells,
    cluster_codes,
    cluster_mean_ci,
    cluster_weights,
    fit_glm,
    inverse_link,
    loglik,
    percentile_ci,
)

log = logging.getLogger(__name__)

OUTCOMES = {"share": "logit", "exploitation_index": "gaussian"}
# The plotted points also show the payoff itself (no law is fitted to it: its scale varies by game).
POINT_OUTCOMES = (*OUTCOMES, "discounted_utility")


@dataclass
class LawFit:
    """One fitted law. ``beta`` and ``boot`` are (intercept, slope) on the raw capability scale."""

    family: str
    beta: np.ndarray
    boot: np.ndarray
    row: dict = field(default_factory=dict)

    def curve(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted mean and 95% bootstrap band on ``grid``."""
        X = np.column_stack([np.ones_like(grid), grid])
        mean = inverse_link(X @ self.beta, self.family)
        lo, hi = percentile_ci(inverse_link(self.boot @ X.T, self.family))
        return mean, lo, hi


def fit_law(x, y, clusters, family: str, n_boot: int = 1000, seed: int = 0,
            reference: float = np.nan) -> LawFit:
    """Fit ``y ~ x`` with cluster-robust and cluster-bootstrap uncertainty, AIC check and backtest."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    codes = cluster_codes(clusters)
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    levels = np.unique(x)
    row: dict = {"family": family, "n_obs": int(y.size), "n_clusters": n_clusters,
                 "n_levels": int(levels.size), "mean": float(y.mean()) if y.size else np.nan}
    nan2 = np.full(2, np.nan)
    if levels.size < 2 or n_clusters < 2 or np.ptp(y) == 0:
        row["note"] = "needs >= 2 capability levels, >= 2 preference draws and a varying outcome"
        return LawFit(family, nan2, np.full((1, 2), np.nan), row)
    rng = np.random.default_rng(seed)

    # Centre x so the intercept is well conditioned even on axes such as release year.
    center = float(x.mean())
    X = np.column_stack([np.ones_like(x), x - center])
    fam = sm.families.Binomial() if family == "logit" else sm.families.Gaussian()
    res = sm.GLM(y, X, family=fam).fit(cov_type="cluster", cov_kwds={"groups": codes})
    beta_c = np.asarray(res.params)
    Xc, yc, nc, cc = cells(X, y, codes)
    se = _jackknife_se(Xc, yc, nc, cc, family)
    tcrit = sps.t.ppf(1 - ALPHA / 2, n_clusters - 1)
    boot_c = fit_glm(Xc, yc, cluster_weights(cc, n_boot, rng) * nc, family)
    beta = _uncenter(beta_c, center)
    boot = _uncenter(boot_c, center)
    b_lo, b_hi = percentile_ci(boot[:, 1])
    fitted = inverse_link(beta[0] + beta[1] * x, family)
    row.update({
        "intercept": beta[0], "slope": beta[1], "slope_se": se, "slope_se_cr1": float(np.asarray(res.bse)[1]),
        "r2": 1 - float(np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2)),  # on the outcome's scale
        "slope_ci_low": beta[1] - tcrit * se, "slope_ci_high": beta[1] + tcrit * se,
        "slope_p": float(2 * sps.t.sf(abs(beta[1] / se), n_clusters - 1)) if se > 0 else np.nan,
        "slope_boot_low": b_lo, "slope_boot_high": b_hi,
        "boot_failed": int(np.isnan(boot[:, 1]).sum()),
    })
    row.update(_aic(X, y, family, center))
    row.update(_crossover(beta, boot, reference, family, levels))
    row.update(_backtest(x, y, codes, family, levels, n_boot, rng))
    return LawFit(family, beta, boot, row)


def _jackknife_se(X: np.ndarray, y: np.ndarray, counts: np.ndarray, codes: np.ndarray, family: str) -> float:
    """Cluster-jackknife (CV3) standard error of the slope: refit leaving out one draw at a time.

    With tens of clusters the usual sandwich (CR1) understates the spread; the jackknife does not
    (MacKinnon, Nielsen & Webb 2023), and all leave-one-out fits run as one weighted batch, on the
    cells of :func:`analysis.stats.cells` (a clusters x cells matrix, not clusters x observations).
    """
    n_clusters = int(codes.max()) + 1
    weights = (codes[None, :] != np.arange(n_clusters)[:, None]) * counts
    slopes = fit_glm(X, y, weights, family)[:, 1]
    slopes = slopes[np.isfinite(slopes)]
    if slopes.size < 2:
        return np.nan
    return float(np.sqrt((n_clusters - 1) / n_clusters * np.sum((slopes - slopes.mean()) ** 2)))


def _uncenter(beta: np.ndarray, center: float) -> np.ndarray:
    beta = np.array(beta, dtype=float)
    beta[..., 0] -= beta[..., 1] * center
    return beta


def _aic(X: np.ndarray, y: np.ndarray, family: str, center: float) -> dict:
    """Information criterion of the linear law vs a plateau law (capability capped at the best knot).

    Least squares: AIC with the ML variance. Fractional logit: QAIC = -2 LL / c + 2k, where the
    dispersion c (Pearson chi2 / df of the linear law) puts the Bernoulli quasi-likelihood on the
    scale of the data's real spread - shares vary far less than coin flips, and without c every
    difference in fit would drown in the parameter penalty.
    """
    ones = np.ones((1, y.size))
    lin = fit_glm(X, y, ones, family)[0]
    mu = inverse_link(X @ lin, family)
    scale = 1.0
    if family == "logit":
        scale = max(float(np.sum((y - mu) ** 2 / np.clip(mu * (1 - mu), 1e-12, None))) / (y.size - 2), 1e-12)

    def criterion(mu: np.ndarray, k: int) -> float:
        return 2 * (k + 1) - 2 * loglik(y, mu, family) / scale  # +1: the variance or the dispersion

    aic_lin = criterion(mu, 2)
    out = {"aic_linear": aic_lin, "aic_plateau": np.nan, "plateau_knot": np.nan, "preferred": "linear"}
    xc = X[:, 1]
    best = (np.inf, np.nan)
    for k in np.unique(xc)[1:-1]:  # a knot at the top level is the linear law
        Xk = np.column_stack([X[:, 0], np.minimum(xc, k)])
        b = fit_glm(Xk, y, ones, family)[0]
        if np.isfinite(b).all():
            best = min(best, (criterion(inverse_link(Xk @ b, family), 3), k))
    if np.isfinite(best[0]):
        out["aic_plateau"] = best[0]
        out["plateau_knot"] = best[1] + center
        out["preferred"] = "plateau" if best[0] < aic_lin else "linear"
    return out


def _crossover(beta: np.ndarray, boot: np.ndarray, reference: float, family: str,
               levels: np.ndarray) -> dict:
    """Capability where the fitted mean reaches ``reference`` (e.g. the NBS share)."""
    if not np.isfinite(reference) or (family == "logit" and not 0 < reference < 1):
        return {"reference": reference, "crossover": np.nan, "crossover_low": np.nan,
                "crossover_high": np.nan, "crossover_in_range": False}
    target = np.log(reference / (1 - reference)) if family == "logit" else reference
    with np.errstate(divide="ignore", invalid="ignore"):
        point = (target - beta[0]) / beta[1]
        reps = (target - boot[:, 0]) / boot[:, 1]
    lo, hi = percentile_ci(np.where(np.isfinite(reps), reps, np.nan))
    return {"reference": reference, "crossover": point, "crossover_low": lo, "crossover_high": hi,
            "crossover_in_range": bool(levels.min() <= point <= levels.max())}


def _backtest(x: np.ndarray, y: np.ndarray, codes: np.ndarray, family: str, levels: np.ndarray,
              n_boot: int, rng: np.random.Generator) -> dict:
    """Fit without the strongest model's level, predict its mean, report the error."""
    out = {"backtest_capability": np.nan, "backtest_observed": np.nan, "backtest_predicted": np.nan,
           "backtest_error": np.nan, "backtest_low": np.nan, "backtest_high": np.nan,
           "backtest_covered": False}
    if levels.size < 3:
        return out
    top = levels.max()
    train = x < top
    sub_codes = cluster_codes(codes[train])
    if sub_codes.max() < 1:
        return out
    center = float(x[train].mean())
    Xc, yc, nc, cc = cells(np.column_stack([np.ones(train.sum()), x[train] - center]), y[train], sub_codes)
    beta = fit_glm(Xc, yc, nc[None], family)[0]
    boot = fit_glm(Xc, yc, cluster_weights(cc, n_boot, rng) * nc, family)
    xt = np.array([1.0, top - center])
    pred = float(inverse_link(xt @ beta, family))
    lo, hi = percentile_ci(inverse_link(boot @ xt, family))
    observed = float(y[~train].mean())
    out.update({"backtest_capability": top, "backtest_observed": observed, "backtest_predicted": pred,
                "backtest_error": pred - observed, "backtest_low": float(lo), "backtest_high": float(hi),
                "backtest_covered": bool(lo <= observed <= hi)})
    return out


def focal_rows(agents: pd.DataFrame, cap: pd.Series) -> pd.DataFrame:
    """Complete games' focal rows with a ``capability`` column; rows without capability are dropped."""
    focal = agents[agents["is_focal"] & (agents["status"] == "complete")].copy()
    focal["capability"] = cap.loc[focal.index]
    missing = focal["capability"].isna()
    if missing.any():
        models = sorted(focal.loc[missing, "model"].unique())
        log.warning("capability missing for %s (%d focal rows); they are left out of the fits",
                    ", ".join(models), int(missing.sum()))
    return focal[~missing]


def scaling_fits(focal: pd.DataFrame, keys: list[str], n_boot: int = 1000,
                 seed: int = 0) -> list[tuple[dict, str, LawFit]]:
    """Fit every outcome in every group of ``keys``; returns (group, outcome, fit) triples."""
    out = []
    for i, (group, df) in enumerate(focal.groupby(keys, sort=True, dropna=False)):
        group = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        for outcome, family in OUTCOMES.items():
            d = df.dropna(subset=[outcome])
            ref = float(d["nbs_share"].mean()) if outcome == "share" else 0.0
            fit = fit_law(d["capability"], d[outcome], d["draw_id"], family, n_boot=n_boot,
                          seed=seed + i, reference=ref)
            out.append((group, outcome, fit))
    return out


def scaling_table(fits: list[tuple[dict, str, LawFit]]) -> pd.DataFrame:
    """One row per group and outcome."""
    return pd.DataFrame([{**group, "outcome": outcome, **fit.row} for group, outcome, fit in fits])


def scaling_points(focal: pd.DataFrame, keys: list[str], n_boot: int = 1000,
                   seed: int = 0) -> pd.DataFrame:
    """Mean outcomes per model and group with cluster-bootstrap intervals (the points of the plot)."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, df in focal.groupby(keys + ["model"], sort=True, dropna=False):
        row = dict(zip(keys + ["model"], group))
        row.update({"capability": float(df["capability"].iloc[0]), "n_games": len(df),
                    "agreement_rate": float(df["agreement"].mean()),
                    "nbs_share": float(df["nbs_share"].mean())})
        for outcome in POINT_OUTCOMES:
            m, lo, hi = cluster_mean_ci(df[outcome], df["draw_id"], n_boot, rng)
            row.update({outcome: m, f"{outcome}_low": lo, f"{outcome}_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def scaling_curves(fits: list[tuple[dict, str, LawFit]], points: pd.DataFrame, keys: list[str],
                   n_grid: int = 50) -> pd.DataFrame:
    """Each fitted law and its 95% bootstrap band on a grid over its group's capability range."""
    rows = []
    for group, outcome, fit in fits:
        sel = np.logical_and.reduce([(points[k] == v).to_numpy() for k, v in group.items()])
        capability = points.loc[sel, "capability"]
        if not np.isfinite(fit.beta).all() or capability.empty:
            continue
        grid = np.linspace(capability.min(), capability.max(), n_grid)
        mean, lo, hi = fit.curve(grid)
        rows += [{**group, "outcome": outcome, "capability": x, "fit": m, "fit_low": a, "fit_high": b}
                 for x, m, a, b in zip(grid, mean, lo, hi)]
    return pd.DataFrame(rows, columns=[*keys, "outcome", "capability", "fit", "fit_low", "fit_high"])
