"""Benchmark: how closely the treaty and co-funding generators reach their parameter targets.

Treaty: rho is a population correlation (the copula's), so it is measured on the positions pooled
over many draws, beside the naive generator the specification warns against (a normal around 50%
clipped to [0, 100], whose correlation shrinks towards 0); theta is a per-draw target (max error).
Co-funding: alpha (per-draw cosine) and sigma (realised total budget / total cost), max error.

    python bench/game_preferences.py                # 5 issues/projects, 2 and 3 agents, 2000 draws per level
    python bench/game_preferences.py --draws 10000  # the numbers in the README (about 25 minutes)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bargain.game.cofunding import cost_range, generate_cofunding
from bargain.game.treaty import generate_treaty, min_rho


def pooled_correlation(positions: np.ndarray) -> tuple[float, float]:
    """Mean pairwise Pearson correlation of agents' positions pooled over draws and issues, and its
    sampling standard error ((1 - r^2) / sqrt(pairs), for one pair of agents)."""
    n = positions.shape[1]
    flat = positions.transpose(1, 0, 2).reshape(n, -1).astype(float)
    r = float(np.corrcoef(flat)[np.triu_indices(n, 1)].mean())
    return r, (1 - r**2) / np.sqrt(flat.shape[1])


def naive_positions(rng: np.random.Generator, n: int, k: int, rho: float, sd: float = 0.5) -> np.ndarray:
    """The specification's original bug: N(0.5, sd^2) with correlation rho, clipped to [0, 1]."""
    cov = sd**2 * (np.full((n, n), rho) + (1 - rho) * np.eye(n))
    values, vectors = np.linalg.eigh(cov)
    z = 0.5 + (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T @ rng.standard_normal((n, k))
    return np.rint(100 * np.clip(z, 0, 1))


def cosine_error(v: np.ndarray, target: float) -> float:
    v = v.astype(float)
    norms = np.linalg.norm(v, axis=1)
    cos = v @ v.T / np.outer(norms, norms)
    return float(np.abs(cos - target)[np.triu_indices(len(v), 1)].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="draws per level")
    parser.add_argument("--size", type=int, default=5, help="issues / projects")
    args = parser.parse_args()
    k, draws = args.size, args.draws
    print(f"treaty, {k} issues, {draws} draws per level: pooled position correlation (target rho) "
          "and max |cos - theta| per draw")
    print(f"{'n':>2} {'rho':>8} {'ours':>8} {'se':>7} {'naive':>8} {'theta':>6} {'max err':>8} {'ms/draw':>8}")
    for n in (2, 3):
        for rho in sorted({min_rho(n), -0.8, -0.5, 0.0, 0.5, 0.9, 1.0}):
            if rho < min_rho(n):
                continue
            theta = 0.3
            start = time.perf_counter()
            prefs = [generate_treaty(np.random.default_rng(seed), n, k, rho, theta) for seed in range(draws)]
            per_draw = (time.perf_counter() - start) / draws
            ours, se = pooled_correlation(np.stack([p.positions for p in prefs]))
            naive_rng = np.random.default_rng(0)
            naive, _ = pooled_correlation(np.stack([naive_positions(naive_rng, n, k, rho) for _ in range(draws)]))
            worst = max(cosine_error(p.weights, theta) for p in prefs)
            print(f"{n:>2} {rho:>8.4f} {ours:>8.4f} {se:>7.4f} {naive:>8.4f} {theta:>6} {worst:>8.4f} "
                  f"{1000 * per_draw:>8.2f}")
    print(f"\nco-funding, {k} projects, {draws} draws per level: max |cos - alpha| and max |B/C - sigma| per draw")
    print(f"{'n':>2} {'alpha':>6} {'sigma':>6} {'alpha err':>10} {'sigma err':>10} {'ms/draw':>8}")
    for n in (2, 3):
        for alpha, sigma in ((0.0, 0.3), (0.5, 0.5), (0.9, 1.0)):
            start = time.perf_counter()
            prefs = [generate_cofunding(np.random.default_rng(seed), n, k, alpha, sigma, *cost_range(n, k))
                     for seed in range(draws)]
            per_draw = (time.perf_counter() - start) / draws
            alpha_err = max(cosine_error(p.values, alpha) for p in prefs)
            sigma_err = max(abs(p.scarcity() - sigma) for p in prefs)
            print(f"{n:>2} {alpha:>6} {sigma:>6} {alpha_err:>10.4f} {sigma_err:>10.6f} {1000 * per_draw:>8.2f}")


if __name__ == "__main__":
    main()
