"""The analysis and the report of the experimental axes, on a store of offline games: name effects,
invasion and mixed ecologies (up to n = 10), prompt-perturbation variance and slope stability, access."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from analysis.browser import Chromium, find_chromium
from analysis.html_report import write_report
from analysis.report import analyze
from bargain.runner import run_experiment
from tests.conftest import compose_cfg

pytestmark = pytest.mark.slow  # builds a store of 13 offline experiments (~60 s on a loaded machine)

QUICK = ["counterbalance=false", "env.max_rounds=3", "env.discussion=false", "env.thinking=false",
         "env.reflection=false", "run.progress=false"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("axes") / "store"
    runs = [
        *[["model=sim-base", "model@opponent=sim-base", "n_games=3", f"env.agent_names=[{a},{b}]"]
          for a, b in (("Claire Becker", "Hunter Becker"), ("Hunter Becker", "Claire Becker"))],
        *[[f"model={m}", "n_games=3", *p] for m in ("sim-weak", "sim-base", "sim-strong")
          for p in ([], ["perturb.paraphrase=1", "perturb.scale=10"])],
        ["model=sim-strong", "n_games=3", "access.k=2"],
        ["model=sim-strong", "n_games=2", "env.n_agents=3"],  # invasion: sim-strong among two boulware
        ["model=sim-strong", "n_games=2", "env.n_agents=3", "ecology.roster=[sim-weak,conceder,fair]"],
        ["model=sim-strong", "n_games=1", "env.n_agents=10", "game=treaty", "game.n_issues=3", "game.theta=1.0",
         "game.rho=0.5", "env.vote_rule=majority", "ecology.roster=[sim-weak,sim-base,boulware,conceder,fair]"],
    ]
    for overrides in runs:
        summary = run_experiment(compose_cfg(root, *QUICK, *overrides))
        assert summary.errors == 0, overrides
    return root


@pytest.fixture(scope="module")
def result(store, tmp_path_factory):
    return analyze(store, tmp_path_factory.mktemp("analysis"), n_boot=50)


def test_name_effects(result):
    names = result.tables["name_effect"]
    pooled = names[names["model"] == "all"].set_index("name")
    assert set(pooled.index) == {"Claire Becker", "Hunter Becker"}
    assert (pooled["seats"] == "0,1").all() and (pooled["n_games"] == 6).all()
    # two seats of one game: the advantages are opposite
    assert pooled.loc["Claire Becker", "advantage"] == pytest.approx(-pooled.loc["Hunter Becker", "advantage"])
    agents = result.tables["agents"]
    claire = agents[agents["name"] == "Claire Becker"]
    mean_share = agents.loc[claire.index, "share"] - 0.5
    assert pooled.loc["Claire Becker", "advantage"] == pytest.approx(mean_share.mean())


def test_ecology_tables(result):
    eco = result.tables["ecology"]
    invasion = eco[eco["design"] == "invasion"].set_index("model")
    assert invasion.loc["sim-strong", "against"] == "boulware" and invasion.loc["boulware", "against"] == "sim-strong"
    assert set(eco.loc[eco["design"] == "mixed", "n_agents"]) == {3, 10}
    ten = eco[eco["n_agents"] == 10]
    assert set(ten["model"]) >= {"sim-strong"} and ten["relative_share"].notna().all()
    # relative to the others, recomputed from the agent rows of the invasion games
    agents = result.tables["agents"]
    games = agents[(agents["n_agents"] == 3) & (agents["focal_model"] == "sim-strong")]
    inv = games.groupby(["experiment_id", "game_index"]).filter(lambda g: g["model"].tolist().count("boulware") == 2)
    focal = inv[inv["is_focal"]].set_index(["experiment_id", "game_index"])["discounted_utility"]
    others = inv[~inv["is_focal"]].groupby(["experiment_id", "game_index"])["discounted_utility"].mean()
    assert invasion.loc["sim-strong", "vs_others"] == pytest.approx((focal - others).mean())
    assert np.isfinite(invasion.loc["sim-strong", "exploitation_index"])


def test_perturbation_variance_and_slope(result):
    variance = result.tables["perturbation_variance"]
    assert len(variance) == 1 and variance["n_games"].iloc[0] == 18
    parts = variance[["model", "perturbation", "draw", "residual"]].iloc[0]
    assert parts[["model", "perturbation", "draw"]].between(0, 1).all() and parts.sum() == pytest.approx(1)
    slopes = result.tables["perturbation_slope"]
    assert set(slopes["perturbation"]) == {"none", "scale=10 paraphrase=1"}
    assert slopes["heterogeneity_p"].between(0, 1).all() and slopes["stable"].dtype == bool
    assert slopes.loc[slopes["perturbation"] == "none", "difference"].iloc[0] == 0


def test_access_table(result):
    access = result.tables["access"]
    strong = access[access["focal_model"] == "sim-strong"].set_index("access_k")
    assert set(strong.index) == {1, 2} and strong.loc[2, "calls_per_game"] > strong.loc[1, "calls_per_game"]


def test_report_shows_the_axes(result, store, tmp_path):
    path = write_report(result, store, tmp_path / "report.html")
    html = path.read_text()
    for name in ("name_effect", "ecology", "perturbation_variance", "perturbation_slope", "access"):
        assert f'"name": "{name}"' in html or f'"name":"{name}"' in html, name
    if not find_chromium():
        if os.environ.get("BARGAIN_REQUIRE_BROWSER") == "1":
            pytest.fail("BARGAIN_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium installed (apt-get install chromium)")
    with Chromium(width=1400, height=1000) as browser:
        browser.open(path, ready="document.body.dataset.ready")
        for name in ("name_effect", "ecology", "perturbation_slope", "access"):
            count = browser.eval(f"document.querySelector('#table-{name} .count').textContent")
            assert count == f" ({len(result.tables[name])} rows)", name


def test_viewer_folds_drafts_under_the_chosen_reply(store, result, tmp_path):
    from analysis.html_report import game_payload
    from analysis.load import iter_records

    record = next(r for r in iter_records(store) if any(c.get("access") for c in r["calls"]))
    calls = game_payload(record, [])["calls"]
    chosen = [c for c in record["calls"] if not c.get("access") or c["access"].get("chosen")]
    assert len(calls) == len(chosen) and all(c["attempt"] == o["attempt"] for c, o in zip(calls, chosen))
    drafted = [c for c in calls if "drafts" in c]
    assert drafted and all(sum(d["role"] == "draft" for d in c["drafts"]) == 1 for c in drafted)  # k = 2
    if not find_chromium():
        pytest.skip("no chromium installed (apt-get install chromium)")
    path = write_report(result, store, tmp_path / "report.html")
    key = f"{record['experiment_id']}:{record['game_index']}"
    with Chromium(width=1400, height=1000) as browser:
        browser.open(path, ready="document.body.dataset.ready")
        browser.eval(f"location.hash = {json.dumps('game=' + key)}")
        browser.wait_for(f"document.querySelector('#transcript') && document.querySelector('#transcript').dataset.game === {json.dumps(key)}")
        badges = browser.eval("[...document.querySelectorAll('#transcript .badge.draft')].map(b => b.textContent)")
        assert badges and all(b in ("draft 1 of 2", "draft 2 of 2") for b in badges)
