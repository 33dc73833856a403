"""Agreement statistics with cluster-bootstrap intervals: Cohen's kappa, precision and recall.

Messages of one game (or one written scenario) are not independent, so intervals resample whole
clusters, with the same weights trick as the scaling tables (:func:`analysis.stats.cluster_weights`).
"""

from __future__ import annotations

import numpy as np

from analysis.stats import cluster_codes, cluster_weights, percentile_ci


def _kappa(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's kappa of binary ratings ``a`` and ``b`` under each row of weights ``w`` (B, n)."""
    total = w.sum(axis=1)
    observed = w @ (a == b) / total
    pa, pb = w @ a / total, w @ b / total
    expected = pa * pb + (1 - pa) * (1 - pb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1 - 1e-12, (observed - expected) / (1 - expected), np.nan)


def kappa(a, b, clusters, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Cohen's kappa of two binary ratings with a cluster-bootstrap 95% interval.

    Kappa is undefined (NaN) when both raters give one class only; ``agreement`` is the raw share of
    equal ratings, ``pos_a`` / ``pos_b`` how often each rater says yes.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"n": int(a.size), "pos_a": int(a.sum()), "pos_b": int(b.sum()),
           "agreement": float((a == b).mean()) if a.size else np.nan,
           "kappa": np.nan, "kappa_low": np.nan, "kappa_high": np.nan}
    if a.size == 0:
        return out
    out["kappa"] = float(_kappa(np.ones((1, a.size)), a, b)[0])
    codes = cluster_codes(clusters)
    if np.isfinite(out["kappa"]) and codes.max() > 0:
        reps = _kappa(cluster_weights(codes, n_boot, np.random.default_rng(seed)), a, b)
        if np.isfinite(reps).any():
            out["kappa_low"], out["kappa_high"] = (float(x) for x in percentile_ci(reps))
    return out


def precision_recall(hits_pred, n_pred, hits_gold, n_gold, clusters, n_boot: int = 2000,
                     seed: int = 0) -> dict[str, float]:
    """Precision (matched predictions / predictions) and recall (matched gold items / gold items),
    from per-message counts, with cluster-bootstrap 95% intervals."""
    arrays = [np.asarray(x, dtype=float) for x in (hits_pred, n_pred, hits_gold, n_gold)]
    hp, npred, hg, ngold = arrays
    out = {"n_predicted": int(npred.sum()), "n_gold": int(ngold.sum())}
    codes = cluster_codes(clusters)
    w = np.vstack([np.ones(hp.size), cluster_weights(codes, n_boot, np.random.default_rng(seed))]) \
        if codes.size and codes.max() > 0 else np.ones((1, hp.size))
    for name, num, den in (("precision", hp, npred), ("recall", hg, ngold)):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (w @ num) / (w @ den)
        out[name] = float(values[0])
        lo, hi = percentile_ci(values[1:]) if values.size > 1 and np.isfinite(values[1:]).any() else (np.nan, np.nan)
        out[f"{name}_low"], out[f"{name}_high"] = float(lo), float(hi)
    return out
