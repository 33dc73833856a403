"""Adaptive sweep vs the full grid on the offline ladder: games and dollars to the same slope intervals.

1. The full grid: sim-weak, sim-base, sim-strong (skill 0.2, 0.5, 0.9) against sim-base at two
   competition levels, DRAWS preference draws per cell, both seat orders; the capability slope of
   the focal share is fitted per level (analysis.fits.fit_law, CV3 95% interval).
2. The adaptive sweep over the same grid into a fresh store, with the grid's spend as its budget and
   the grid's widest slope interval as its threshold.

Reports the games and dollars each used and the intervals each reached. Models are priced (USD 1 /
4 per million input / output tokens) so that dollars mean something offline.

    python -m bench.adaptive            # 10 draws per cell (120 games on the grid)
    python -m bench.adaptive --smoke    # 4 draws per cell
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GRID = ["model=sim-weak,sim-base,sim-strong", "env.competition=0.25,0.9", "model@opponent=sim-base",
        "model.price_input_per_mtok=1", "model.price_output_per_mtok=4",
        "opponent.price_input_per_mtok=1", "opponent.price_output_per_mtok=4"]


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "bargain.run", "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bargain.run failed ({done.returncode}): {done.stderr[-2000:]}")


def grid_widths(store: Path) -> tuple[dict[float, float], int, float]:
    """Slope interval width of the focal share per competition level, games and spend of a store."""
    from analysis.fits import fit_law, focal_rows
    from analysis.load import capability, load_store

    games, agents = load_store(store)
    focal = focal_rows(agents, capability(agents, "skill")).dropna(subset=["share"])
    widths = {}
    for level, df in focal.groupby("competition"):
        row = fit_law(df["capability"], df["share"], df["draw_id"], "logit", n_boot=200).row
        # a level the sweep left with one capability level has no slope: NaN, not a crash
        widths[float(level)] = row.get("slope_ci_high", np.nan) - row.get("slope_ci_low", np.nan)
    return widths, len(games), float(games["cost_usd"].sum())


def measure(smoke: bool) -> list[dict]:
    draws = 4 if smoke else 10
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _run([*GRID, f"n_games={draws}", f"store={root / 'grid'}", f"hydra.sweep.dir={root / 'grid-sweep'}"], root)
        widths, grid_games, grid_usd = grid_widths(root / "grid")
        threshold = max(widths.values())
        _run([*GRID, "hydra/sweeper=adaptive", f"hydra.sweeper.budget_usd={grid_usd:.6f}",
              f"hydra.sweeper.threshold={threshold:.6f}", f"store={root / 'adaptive'}",
              f"hydra.sweep.dir={root / 'adaptive-sweep'}"], root)
        report = json.loads((root / "adaptive-sweep" / "adaptive.json").read_text())
        reached, _, _ = grid_widths(root / "adaptive")
    met = report["stopped"].startswith("target reached")
    detail = "; ".join(f"competition {c}: grid {widths[c]:.3f}, adaptive {reached.get(c, np.nan):.3f}" for c in sorted(widths))
    cells = "; ".join(f"{t['target']}: {t['cells']}" for t in report["targets"])
    print(f"full grid: {grid_games} games, ${grid_usd:.3f}; adaptive: {report['games']} games, "
          f"${report['spent_usd']:.3f}, {len(report['batches'])} batches ({report['stopped']}); widths {detail}; "
          f"adaptive games per cell: {cells}")
    return [
        {"figure": f"adaptive sweep: games to the full grid's slope interval ({draws} draws/cell grid)",
         "ours": float(report["games"]), "baseline": float(grid_games), "ratio": report["games"] / grid_games,
         "unit": "games", "target": "< 1x", "met": met and report["games"] < grid_games},
        {"figure": "adaptive sweep: dollars to the full grid's slope interval",
         "ours": report["spent_usd"], "baseline": grid_usd, "ratio": report["spent_usd"] / grid_usd,
         "unit": "USD", "target": "< 1x", "met": met and report["spent_usd"] < grid_usd},
    ]


if __name__ == "__main__":
    for row in measure("--smoke" in sys.argv):
        print(row)
