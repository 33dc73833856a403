"""The CLI on synthetic stores: every table and figure is written and opens; bad input fails clearly."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from synthetic import SIM_LADDER, logistic_law, write_store

from analysis.__main__ import main
from analysis.load import SchemaError, load_store
from analysis.report import AXES_TABLES, SUMMARIES, analyze

TABLES = ("games", "agents", *(name for name in SUMMARIES if name not in AXES_TABLES))  # axes: empty unless varied
FIGURES = ("share_vs_capability", "heatmap", "ratings", "seat_effect")


@pytest.fixture(scope="module")
def ladder_store(tmp_path_factory):
    """A sim-ladder sweep with no-deals, invalid moves and failed games, as two stores in one sweep dir."""
    sweep = tmp_path_factory.mktemp("sweep")
    common = {"opponent": ("sim-base", SIM_LADDER["sim-base"]), "n_draws": 12, "law": logistic_law(-1.0, 2.0),
              "p_no_deal": 0.1, "invalid_rate": 0.05, "error_rate": 0.03}
    write_store(sweep / "0" / "store", models=SIM_LADDER, competitions=[0.0, 1.0], **common)
    write_store(sweep / "1" / "store", models=SIM_LADDER, competitions=[0.5], seed=1, **common)
    return sweep


def assert_outputs(out):
    for name in TABLES:
        csv = pd.read_csv(out / f"{name}.csv")
        parquet = pd.read_parquet(out / f"{name}.parquet")
        assert len(csv) == len(parquet) > 0, name
        if name in SUMMARIES:
            assert (out / f"{name}.md").read_text().startswith("|")
    for name in FIGURES:
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert 300 <= width <= 5000 and 200 <= height <= 5000, (name, width, height)
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name
    assert "## headline" in (out / "report.md").read_text()


def test_cli_writes_every_table_and_figure(ladder_store, tmp_path, capsys):
    out = tmp_path / "out"
    main([str(ladder_store), "--out", str(out), "--bootstrap", "200"])
    assert_outputs(out)
    printed = capsys.readouterr().out
    assert "capability: skill" in printed and "| opponent | competition |" in printed

    games = pd.read_parquet(out / "games.parquet")
    assert len(games) == 3 * 3 * 12 * 2  # competitions x models x draws x seats, from both stores
    assert set(games["status"]) == {"complete", "error"}
    headline = pd.read_csv(out / "headline.csv")
    assert len(headline) == 3 and (headline["slope"] > 0).all()
    agents = pd.read_parquet(out / "agents.parquet")
    for col in ("model", "opponent", "skill", "seat", "competition", "n_agents", "n_items", "gamma",
                "preference_kind", "raw_utility", "discounted_utility", "share", "agreement_round",
                "invalid_moves", "prompt_tokens", "cost_usd", "status", "exploitation_index", "nbs_share"):
        assert col in agents.columns, col
    validity = pd.read_csv(out / "validity.csv")
    assert (validity["invalid_move_rate"] > 0).all() and (validity["parse_failure_rate"] > 0).all()


def test_default_out_dir_is_beside_the_store(ladder_store, capsys):
    store = ladder_store / "0" / "store"
    main([str(store), "--bootstrap", "50"])
    assert (ladder_store / "0" / "store-analysis" / "headline.csv").exists()


def test_params_b_is_log10_and_missing_capability_is_left_out(tmp_path, caplog):
    models = {"qwen3b": {"params_b": 3.0}, "qwen14b": {"params_b": 14.0}, "qwen72b": {"params_b": 72.0},
              "mystery": {}}

    def law(meta: dict) -> float:
        x = np.log10(meta["params_b"]) if meta.get("params_b") else 1.0
        return float(1 / (1 + np.exp(1.0 - x)))

    store = write_store(tmp_path / "store", models=models, opponent=("claude", {"params_b": None}),
                        competitions=[1.0], n_draws=10, law=law, full=False)
    with caplog.at_level(logging.WARNING):
        result = analyze(store, tmp_path / "out", n_boot=50)
    assert result.capability == "params_b"
    assert "capability missing for mystery" in caplog.text
    points = result.tables["scaling_points"].set_index("model")
    assert "mystery" not in points.index
    assert points.loc["qwen72b", "capability"] == pytest.approx(np.log10(72))
    assert_outputs(tmp_path / "out")


def test_three_agents_and_matrix_preferences(tmp_path):
    store = write_store(tmp_path / "store", models=SIM_LADDER, opponent=("sim-base", SIM_LADDER["sim-base"]),
                        competitions=[0.5], n_draws=6, law=logistic_law(-1.0, 2.0), n_agents=3, kind="matrix",
                        cooperation=0.3, p_no_deal=0.1)
    result = analyze(store, tmp_path / "out", n_boot=50)
    assert result.tables["ratings"]["method"].iloc[0] == "plackett_luce"
    assert result.tables["games"]["gini"].notna().any()
    assert set(result.tables["seat_effect"]["seat"]) == {0, 1, 2}
    assert_outputs(tmp_path / "out")


def test_unknown_schema_version_is_refused(tmp_path):
    store = write_store(tmp_path / "store", models={"sim-weak": SIM_LADDER["sim-weak"]},
                        opponent=("sim-base", SIM_LADDER["sim-base"]), competitions=[0.5], n_draws=1,
                        law=logistic_law(0.0, 1.0), full=False)
    game = next(store.rglob("games/00000.json"))
    record = json.loads(game.read_text())
    game.write_text(json.dumps({**record, "schema_version": 3}))
    with pytest.raises(SchemaError, match="schema_version=3"):
        load_store(store)


def test_empty_store_fails_clearly(tmp_path):
    (tmp_path / "store").mkdir()
    with pytest.raises(ValueError, match="no game records"):
        analyze(tmp_path / "store", tmp_path / "out")


def test_store_with_one_focal_model_still_writes_every_table(tmp_path):
    """A single lineup has no capability spread: the law columns stay empty instead of failing."""
    store = tmp_path / "store"
    write_store(store, models={"sim-strong": SIM_LADDER["sim-strong"]}, competitions=[0.9],
                opponent=("sim-base", SIM_LADDER["sim-base"]), n_draws=6, law=logistic_law(-1.0, 2.0))
    result = analyze(store, tmp_path / "out", n_boot=50)
    headline = result.tables["headline"]
    assert len(headline) == 1 and headline["slope"].isna().all() and headline["mean"].notna().all()
