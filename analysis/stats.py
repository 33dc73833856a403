"""Small statistical kernels shared by the tables: cluster bootstrap weights and batched GLM fits.

The cluster bootstrap resamples whole preference draws: drawing C clusters with replacement is the
same as giving every observation of cluster c the weight "times c was drawn", so all replicates are
fitted at once as weighted problems (one row of ``W`` per replicate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

ALPHA = 0.05  # every interval in the analysis is a 95% interval


def cluster_codes(clusters) -> np.ndarray:
    """Map cluster labels to 0..C-1, in the labels' sorted order (hashing, not sorting, the labels)."""
    codes, _ = pd.factorize(np.asarray(clusters).ravel(), sort=True, use_na_sentinel=False)
    return codes


def cluster_counts(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each cluster is drawn in each replicate of a cluster bootstrap: (n_boot, n_clusters)."""
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)


def cluster_weights(codes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Observation weights (n_boot, n) of a cluster bootstrap: multinomial cluster counts."""
    return cluster_counts(int(codes.max()) + 1, n_boot, rng)[:, codes].astype(float)


def cells(X: np.ndarray, y: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pool observations sharing a cluster and a design row: (X, mean y, count, cluster) per cell.

    A GLM fit with weight ``w * count`` on the cells equals the fit with weight ``w`` on every
    observation (the score and the Hessian are sums over observations, linear in y within a cell),
    so the bootstrap and jackknife work on (clusters x capability levels) cells instead of games.
    """
    keys, inverse, counts = np.unique(np.column_stack([codes, X]), axis=0, return_inverse=True, return_counts=True)
    ysum = np.bincount(inverse.ravel(), weights=y, minlength=len(keys))
    return keys[:, 1:], ysum / counts, counts.astype(float), keys[:, 0].astype(int)


def percentile_ci(samples: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap replicates, ignoring failed (NaN) replicates."""
    lo, hi = np.nanpercentile(samples, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)], axis=axis)
    return lo, hi


def cluster_mean_ci(y, clusters, n_boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean of ``y`` with a cluster-bootstrap percentile interval (NaNs in ``y`` dropped)."""
    y = np.asarray(y, dtype=float)
    keep = ~np.isnan(y)
    y = y[keep]
    if y.size == 0:
        return np.nan, np.nan, np.nan
    codes = cluster_codes(np.asarray(clusters)[keep])
    if codes.max() == 0:
        return float(y.mean()), np.nan, np.nan
    n_clusters = int(codes.max()) + 1
    counts = cluster_counts(n_clusters, n_boot, rng)  # per cluster, not per observation: memory ~ clusters
    sums, sizes = np.bincount(codes, weights=y, minlength=n_clusters), np.bincount(codes, minlength=n_clusters)
    lo, hi = percentile_ci(counts @ sums / (counts @ sizes))
    return float(y.mean()), float(lo), float(hi)


def fit_glm(X: np.ndarray, y: np.ndarray, W: np.ndarray, family: str, iters: int = 100) -> np.ndarray:
    """Weighted GLM coefficients for every row of ``W`` (shape (B, n)) -> (B, p).

    ``family`` is ``"logit"`` (fractional logit: Bernoulli quasi-likelihood, y in [0, 1]) or
    ``"gaussian"`` (least squares). Replicates that do not converge come back as NaN.
    """
    p = X.shape[1]
    ridge = 1e-10 * np.eye(p)
    if family == "gaussian":
        A = np.einsum("bn,np,nq->bpq", W, X, X) + ridge
        return _solve(A, (W * y) @ X)
    if family != "logit":
        raise ValueError(f"family={family!r} must be 'logit' or 'gaussian'")
    mean = np.clip((W @ y) / W.sum(axis=1), 1e-6, 1 - 1e-6)
    beta = np.zeros((W.shape[0], p))
    beta[:, 0] = np.log(mean / (1 - mean))
    for _ in range(iters):
        mu = expit(beta @ X.T)
        grad = (W * (y - mu)) @ X
        hess = np.einsum("bn,np,nq->bpq", W * mu * (1 - mu), X, X) + ridge
        step = _solve(hess, grad)
        # Cap huge Newton steps: near-separated replicates otherwise overshoot to inf.
        step = np.where(np.abs(step) > 5, 5 * np.sign(step), step)
        beta = beta + step
        if np.nanmax(np.abs(step)) < 1e-9:
            break
    unconverged = ~(np.abs(step) < 1e-6).all(axis=1)
    beta[unconverged] = np.nan
    return beta


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.full(b.shape, np.nan)
    ok = np.abs(np.linalg.det(A)) > 1e-12
    if ok.any():
        out[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
    return out


def inverse_link(eta: np.ndarray, family: str) -> np.ndarray:
    """Mean from the linear predictor."""
    return expit(eta) if family == "logit" else eta


def loglik(y: np.ndarray, mu: np.ndarray, family: str) -> float:
    """Log (quasi-)likelihood: Bernoulli for the fractional logit, Gaussian with ML variance."""
    if family == "logit":
        mu = np.clip(mu, 1e-12, 1 - 1e-12)
        return float(np.sum(y * np.log(mu) + (1 - y) * np.log(1 - mu)))
    n = y.size
    rss = float(np.sum((y - mu) ** 2))
    return -0.5 * n * (np.log(2 * np.pi * max(rss, 1e-300) / n) + 1)
