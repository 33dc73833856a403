"""A real offline sweep of the simulated ladder, analysed: share rises with skill, monotonically.

The ladder plays a fixed reference negotiator (boulware, the default opponent), as a real study
plays a fixed baseline model. Against sim-base itself the sim-base vs sim-strong gap is only about
0.01-0.03 in share, too thin for a strict ordering at a test's sample size.
"""

from __future__ import annotations

import pytest

from analysis.report import analyze
from bargain.runner import run_experiment

LADDER = ("sim-weak", "sim-base", "sim-strong")  # skill 0.2, 0.5, 0.9
COMPETITIONS = (0.5, 0.9)


@pytest.mark.slow
def test_sim_ladder_share_rises_with_skill(make_cfg, tmp_path):
    for model in LADDER:
        for competition in COMPETITIONS:
            run_experiment(make_cfg(f"model={model}", "model@opponent=boulware", f"env.competition={competition}",
                                    "n_games=8"))
    result = analyze(tmp_path / "store", tmp_path / "out", capability_name="skill", n_boot=300)

    headline = result.tables["headline"]
    assert len(headline) == len(COMPETITIONS)
    assert (headline["slope_ci_low"] > 0).all(), headline
    assert (headline["slope_boot_low"] > 0).all(), headline
    points = result.tables["scaling_points"]
    for _, level in points.groupby("competition"):
        shares = level.sort_values("capability")["share"].to_numpy()
        assert (shares[1:] > shares[:-1]).all(), level
    ratings = result.tables["ratings"]
    assert [m for m in ratings["model"] if m in LADDER] == ["sim-strong", "sim-base", "sim-weak"]
