"""The capability axis the field uses now: `python -m analysis --capability arena_elo` fits a law on a store of
roster models (four OpenRouter routes, answered by an OpenAI-compatible server on loopback)."""

from __future__ import annotations

import pandas as pd
import pytest
from test_http_server import OpenAICompatible, server  # noqa: F401 - the fixture

from analysis.__main__ import main as analysis_main
from bargain.runner import run_experiment

# roster model -> (its route's model id, the offline player answering for it: weaker models, weaker players)
LADDER = {
    "llama-3.2-1b": ("meta-llama/llama-3.2-1b-instruct", "weak"),
    "llama-3.1-8b": ("meta-llama/llama-3.1-8b-instruct", "weak"),
    "llama-3.3-70b": ("meta-llama/llama-3.3-70b-instruct", "base"),
    "gemma-3-27b": ("google/gemma-3-27b-it", "strong"),
}


@pytest.mark.slow
def test_arena_elo_fits_on_a_store_of_roster_models(make_cfg, server, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    OpenAICompatible.players = dict(LADDER.values())
    for name in LADDER:
        summary = run_experiment(make_cfg(
            f"model={name}", f"model.api_base=http://127.0.0.1:{server.server_address[1]}/v1", "model@opponent=sim-base",
            "n_games=6", "env.max_rounds=4", "env.competition=0.5", "run.game_concurrency=6"))
        assert len(summary.records) == 12 and all(r["status"] == "complete" for r in summary.records)
        assert {r["agents"][r["focal_seat"]]["metadata"]["arena_elo"] for r in summary.records} == {
            {"llama-3.2-1b": 1110, "llama-3.1-8b": 1211, "llama-3.3-70b": 1318, "gemma-3-27b": 1365}[name]}
    out = tmp_path / "analysis"
    analysis_main([str(tmp_path / "store"), "--capability", "arena_elo", "--bootstrap", "50", "--out", str(out)])
    assert "Focal-share scaling law (capability: arena_elo)" in capsys.readouterr().out
    headline = pd.read_csv(out / "headline.csv")
    (law,) = headline.itertuples()
    assert law.n_clusters == 6 and law.n_obs >= 24 and pd.notna(law.slope) and law.slope_ci_low < law.slope_ci_high
