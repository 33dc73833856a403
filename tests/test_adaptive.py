"""Adaptive sweeps (bargain.adaptive, hydra/sweeper=adaptive): the design rule, bad settings, and real
multiruns batch by batch with the basic launcher and on SLURM (the offline ladder, priced so that
dollars mean something)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bargain.adaptive import Settings, slope_variance
from bargain.config import ConfigError
from bargain.store import load_record
from tests.test_slurm import LAUNCHER, _cancel_ours, _env, _require_slurm

REPO = Path(__file__).resolve().parents[1]
PRICED = ["model.price_input_per_mtok=1", "model.price_output_per_mtok=4",
          "opponent.price_input_per_mtok=1", "opponent.price_output_per_mtok=4"]
GRID = ["model=sim-weak,sim-strong", "env.competition=0.9", "model@opponent=sim-base", *PRICED,
        "hydra/sweeper=adaptive", "hydra.sweeper.pilot_draws=2", "hydra.sweeper.draws_per_pick=1",
        "hydra.sweeper.batch_cells=1"]


def test_slope_variance_is_the_least_squares_formula():
    # two levels, 2 games each, unit variance: Sxx = 1, Var = sum n (x - xbar)^2 s2 / Sxx^2 = 1
    assert slope_variance(np.array([0.0, 1.0]), np.array([2.0, 2.0]), np.ones(2)) == pytest.approx(1.0)
    x, s2 = np.array([0.0, 0.5, 1.0]), np.ones(3)
    base = slope_variance(x, np.array([4.0, 4.0, 4.0]), s2)
    # games at the ends narrow a slope; games in the middle do not
    assert slope_variance(x, np.array([6.0, 4.0, 4.0]), s2) < base
    assert slope_variance(x, np.array([4.0, 6.0, 4.0]), s2) == pytest.approx(base)
    # a noisier cell is worth more games
    noisy = np.array([1.0, 1.0, 4.0])
    gain_noisy = base_noisy = slope_variance(x, np.array([4.0, 4.0, 4.0]), noisy)
    gain_noisy -= slope_variance(x, np.array([4.0, 4.0, 6.0]), noisy)
    gain_quiet = base_noisy - slope_variance(x, np.array([6.0, 4.0, 4.0]), noisy)
    assert gain_noisy > gain_quiet > 0
    assert math.isinf(slope_variance(np.array([0.5, 0.5]), np.array([3.0, 3.0]), np.ones(2)))


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "hydra.sweeper.budget_usd=None must be > 0 (USD)"),
    ({"budget_usd": 1, "outcome": "wins"}, "hydra.sweeper.outcome=wins must be one of share, exploitation_index"),
    ({"budget_usd": 1, "pilot_draws": 1}, "hydra.sweeper.pilot_draws=1 must be >= 2"),
    ({"budget_usd": 1, "threshold": 0}, "hydra.sweeper.threshold=0 must be > 0 or null"),
])
def test_settings_errors_name_the_key(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings(**settings).check()


def _sweep(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bargain.run", "-m", *GRID, f"store={tmp_path / 'store'}",
           f"hydra.sweep.dir={tmp_path / 'sweep'}", *extra]
    return subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600, check=False)


def _stored(store: Path) -> tuple[dict[str, int], float]:
    """Games played (any status: the budget may stop one) per focal model, and the total spend, of a store."""
    games: dict[str, int] = {}
    spent = 0.0
    for path in store.glob("*/games/*.json"):
        record = load_record(path)
        spent += record["totals"]["cost_usd"]
        model = record["agents"][record["focal_seat"]]["model"]
        games[model] = games.get(model, 0) + 1
    return games, spent


def _check_adaptive(tmp_path: Path, proc: subprocess.CompletedProcess[str], budget: float) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "sweep" / "adaptive.json").read_text())
    games, spent = _stored(tmp_path / "store")
    assert report["games"] == sum(games.values()) and report["spent_usd"] == pytest.approx(spent)
    assert spent <= budget * 1.05  # chosen by expected cost: a small overshoot is possible, and said
    probe, pilot, *chosen = report["batches"]
    assert list(probe["cells"].values()) == [1]  # one draw of one cell measures what games cost
    assert sorted(pilot["cells"].values()) == [2, 2]  # then every cell gets the pilot draws
    assert chosen and all(len(b["cells"]) == 1 for b in chosen)
    assert "full grid with the same spend" in proc.stdout and "slope interval width" in proc.stdout
    target = report["targets"][0]
    assert math.isfinite(target["width"]) and math.isfinite(target["full_grid_width"])
    return report


@pytest.mark.slow
def test_adaptive_sweep_spends_its_budget_batch_by_batch_and_resumes(tmp_path):
    budget = 1.2
    # the local launcher (submitit processes), then the resume with the basic launcher (in-process)
    proc = _sweep(tmp_path, f"hydra.sweeper.budget_usd={budget}", "hydra/launcher=local")
    report = _check_adaptive(tmp_path, proc, budget)
    assert report["stopped"].startswith("budget spent")
    again = _sweep(tmp_path, f"hydra.sweeper.budget_usd={budget}")  # the spend is in the store: nothing to add
    assert again.returncode == 0 and "budget spent" in again.stdout
    assert json.loads((tmp_path / "sweep" / "adaptive.json").read_text())["games"] == report["games"]


@pytest.mark.slow
def test_adaptive_sweep_on_slurm(tmp_path):
    _require_slurm()
    budget = 1.2
    try:
        # probe, pilot and one chosen batch: three submissions, each waited for before the next is chosen
        proc = _sweep(tmp_path, f"hydra.sweeper.budget_usd={budget}", "hydra.sweeper.max_batches=3", *LAUNCHER)
        report = _check_adaptive(tmp_path, proc, budget)
    finally:
        _cancel_ours(tmp_path / "sweep")
    assert report["stopped"] == "hydra.sweeper.max_batches=3 reached"
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/.submission_file_*.sh"))) == 3
