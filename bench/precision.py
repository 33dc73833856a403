"""Measure the precision table of vector preferences: max |cos - c| per (items, agents) size.

For every size m = 2..12, n = 2..min(m, 10) it draws ``--seeds`` preference sets (default 1,000)
and records the largest pairwise cosine error, the seed and level where it happened, the mean
error and the time per draw. Even seeds use the fixed levels below in turn, odd seeds a uniform
random level, so both the awkward corners (c = 0.001, 0.995 ...) and the whole range are covered.
Draw s of size (m, n) uses ``np.random.default_rng([s, m, n])`` for its level and its vectors, so
tests can replay any draw (``draw(seed, m, n)``).

    python bench/precision.py                       # the full table (about an hour on one core)
    python bench/precision.py --seeds 50 --sizes 8x4 5x2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bargain.game import Preferences, generate_preferences
from bargain.game.preferences import HEADROOM

LEVELS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98,
          0.99, 0.995, 0.999, 1.0)
SIZES = tuple((m, n) for m in range(2, 13) for n in range(2, min(m, 10) + 1))


def draw(seed: int, m: int, n: int) -> tuple[float, Preferences]:
    """The level and preferences of draw ``seed`` of size (m items, n agents)."""
    rng = np.random.default_rng([seed, m, n])
    c = LEVELS[(seed // 2) % len(LEVELS)] if seed % 2 == 0 else float(rng.uniform())
    return c, generate_preferences(rng, n, m, c)


def max_error(prefs: Preferences, c: float) -> float:
    return max((abs(cos - c) for cos in prefs.cosines().values()), default=0.0)


def measure_size(m: int, n: int, seeds: int) -> dict:
    """Worst, mean and time per draw of ``seeds`` draws of size (m items, n agents)."""
    errors, worst = [], (-1.0, None, None)
    start = time.process_time()
    for seed in range(seeds):
        c, prefs = draw(seed, m, n)
        err = max_error(prefs, c)
        errors.append(err)
        worst = max(worst, (err, seed, c), key=lambda w: w[0])
    return {"m": m, "n": n, "seeds": seeds, "max": worst[0], "worst_seed": worst[1], "worst_level": worst[2],
            "mean": float(np.mean(errors)), "ms_per_draw": 1000 * (time.process_time() - start) / seeds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="draws per size (default 1000)")
    parser.add_argument("--sizes", nargs="*", default=None, help="sizes as MxN (items x agents); default all")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes] if args.sizes else SIZES
    rows = []
    print(f"{'m':>3}{'n':>3}{'max |err|':>11}{'bound':>8}{'worst seed':>11}{'level':>8}{'mean':>10}{'ms/draw':>9}",
          flush=True)
    for m, n in sizes:
        row = measure_size(m, n, args.seeds)
        rows.append(row)
        bound = np.ceil(HEADROOM * row["max"] * 1e4 - 1e-9) / 1e4  # as PRECISION is derived
        print(f"{m:>3}{n:>3}{row['max']:>11.5f}{bound:>8.4f}{row['worst_seed']:>11}{row['worst_level']:>8.4f}"
              f"{row['mean']:>10.5f}{row['ms_per_draw']:>9.1f}", flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
