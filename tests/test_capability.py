"""The offline skill ladder is a real capability knob (50 paired games at competition 0.9)."""

from __future__ import annotations

import numpy as np
import pytest

from bargain.runner import run_experiment


def focal_vs_opponent(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Per-game discounted utility of the focal model and of its opponent."""
    focal = np.array([r["outcome"]["discounted_utility"][r["focal_seat"]] for r in records])
    other = np.array([r["outcome"]["discounted_utility"][1 - r["focal_seat"]] for r in records])
    return focal, other


@pytest.mark.slow
def test_skill_ladder(make_cfg):
    games = ["n_games=25", "env.competition=0.9", "run.game_concurrency=8"]  # 25 draws x 2 seats = 50 paired games
    strong = run_experiment(make_cfg(*games, "model=sim-strong", "model@opponent=sim-weak")).records
    weak = run_experiment(make_cfg(*games, "model=sim-weak", "model@opponent=sim-weak")).records
    assert len(strong) == len(weak) == 50 and all(r["status"] == "complete" for r in strong + weak)

    focal, other = focal_vs_opponent(strong)
    diff = focal - other
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"sim-strong vs sim-weak: {focal.mean():.2f} vs {other.mean():.2f} (diff {diff.mean():.2f} ± {1.96 * se:.2f})")
    assert diff.mean() - 2.58 * se > 0  # strong earns more, beyond a 99% interval

    focal, other = focal_vs_opponent(weak)
    diff = focal - other
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"sim-weak vs sim-weak: {focal.mean():.2f} vs {other.mean():.2f} (diff {diff.mean():.2f} ± {1.96 * se:.2f})")
    assert abs(diff.mean()) < 2.58 * se + 1.0  # symmetric within noise
