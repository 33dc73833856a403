"""Benchmark: our vector-preference generator vs a naive optimiser baseline, side by side in one run.

The baseline is the textbook approach the original study used for two agents: a penalised SLSQP
fit of the target cosine from random starts (10 restarts), then rounding to integers that sum to
100. Both draw the same number of preference pairs at the same levels; the table shows the
achieved precision (max and mean |cos - target| after rounding) and the time per draw.

    python bench/preferences.py              # 5 items, 2 agents, 9 levels x 40 draws
    python bench/preferences.py --draws 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from bargain.game import generate_preferences

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99, 0.999)


def to_integers(x: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of a non-negative vector to integers summing to 100."""
    x = 100 * x / x.sum()
    base = np.floor(x).astype(int)
    base[np.argsort(base - x)[: 100 - base.sum()]] += 1
    return base


def naive_draw(rng: np.random.Generator, m: int, c: float) -> np.ndarray:
    def loss(z: np.ndarray) -> float:
        a, b = z[:m], z[m:]
        cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
        return 1000 * (cos - c) ** 2 + 100 * ((a.sum() - 100) ** 2 + (b.sum() - 100) ** 2) / 1e4

    best = None
    for _ in range(10):
        fit = minimize(loss, rng.uniform(0, 100 / m, 2 * m), method="SLSQP", bounds=[(0, 100)] * (2 * m))
        if best is None or fit.fun < best.fun:
            best = fit
    return np.stack([to_integers(best.x[:m] + 1e-9), to_integers(best.x[m:] + 1e-9)])


def cosine(v: np.ndarray) -> float:
    return float(v[0] @ v[1] / (np.linalg.norm(v[0]) * np.linalg.norm(v[1])))


def measure(draw, draws: int, m: int) -> tuple[float, float, float]:
    errors, start = [], time.perf_counter()
    for level in LEVELS:
        for seed in range(draws):
            errors.append(abs(cosine(draw(np.random.default_rng(seed), m, level)) - level))
    per_draw = (time.perf_counter() - start) / (draws * len(LEVELS))
    return max(errors), float(np.mean(errors)), per_draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=40, help="draws per level")
    parser.add_argument("--items", type=int, default=5)
    args = parser.parse_args()
    ours = measure(lambda rng, m, c: generate_preferences(rng, 2, m, c).values, args.draws, args.items)
    naive = measure(naive_draw, args.draws, args.items)
    print(f"{'generator':<22}{'max |err|':>10}{'mean |err|':>12}{'ms/draw':>10}")
    for name, (worst, mean, seconds) in (("bargain", ours), ("naive SLSQP baseline", naive)):
        print(f"{name:<22}{worst:>10.4f}{mean:>12.5f}{1000 * seconds:>10.2f}")
    print(f"ratios (baseline / ours): max error {naive[0] / max(ours[0], 1e-12):.1f}x, "
          f"mean error {naive[1] / max(ours[1], 1e-12):.1f}x, time {naive[2] / ours[2]:.1f}x")


if __name__ == "__main__":
    main()
