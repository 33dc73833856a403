"""Sweep presets compose, and multiruns work end to end with the basic and the submitit-local launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from bargain.config import register, validate
from bargain.store import load_record

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "sweep").glob("*.yaml"))


def compose_preset(name: str):
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[f"sweep={name}"], return_hydra_config=True)


def axes(cfg) -> list[list[str]]:
    """The preset's sweep axes as override lists, one per value (parsed as Hydra does: values may be lists)."""
    parser = OverridesParser.create()
    out = []
    for key, values in cfg.hydra.sweeper.params.items():
        override = parser.parse_override(f"{key}={values}")
        choices = override.sweep_string_iterator() if override.is_sweep_override() else [override.get_value_element_as_str()]
        out.append([f"{key}={value}" for value in choices])
    return out


def cells(cfg) -> list[list[str]]:
    """Every override list the basic sweeper would run for this preset."""
    grid: list[list[str]] = [[]]
    for axis in axes(cfg):
        grid = [g + [choice] for g in grid for choice in axis]
    return grid


def covering_cells(cfg) -> list[list[str]]:
    """Enough cells that every value of every axis is composed at least once (the others vary only in it)."""
    grid = axes(cfg)
    return [[axis[min(i, len(axis) - 1)] for axis in grid] for i in range(max(len(axis) for axis in grid))]


def test_every_preset_is_tested():
    assert set(PRESETS) == {"smoke", "qwen_ladder", "qwen3_ladder", "competition", "three_agents", "elo_roster",
                            "main_grid", "names", "invasion", "ecology", "robustness", "access"}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_cells_compose_and_validate(name):
    cfg = compose_preset(name)
    assert len(cells(cfg)) >= 2
    for overrides in covering_cells(cfg):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cell = compose(config_name="config", overrides=[f"sweep={name}", *overrides])
        validate(cell)
        assert cell.env.n_agents >= 2 and cell.model.litellm_model


def test_qwen_ladders_cover_every_size_on_vllm_against_one_current_opponent():
    for name, sizes in [("qwen_ladder", ["0_5b", "1_5b", "3b", "7b-vllm", "14b", "32b", "72b-vllm"]),
                        ("qwen3_ladder", ["3-0_6b", "3-1_7b", "3-4b", "3-8b", "3-14b", "3-32b", "3-30b-a3b", "3-235b-a22b"])]:
        cfg = compose_preset(name)
        params = cfg.hydra.sweeper.params
        assert params["model"].split(",") == [f"qwen{s}" for s in sizes]
        assert params["model@opponent"] == "claude-sonnet-4-6"
        assert len(str(params["env.competition"]).split(",")) >= 3 and cfg.counterbalance
        for size in sizes:
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
                cell = compose(config_name="config", overrides=[f"model=qwen{size}"])
            assert cell.model.litellm_model.startswith("hosted_vllm/") and cell.model.server.command[:2] == ["vllm", "serve"]


def _multirun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "bargain.run", "-m", f"store={tmp_path / 'store'}", f"hydra.sweep.dir={tmp_path / 'sweep'}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )


def _records(store: Path) -> list[dict]:
    return [load_record(p) for p in sorted(store.glob("*/games/*.json"))]


@pytest.mark.slow
def test_plain_multirun_overrides_basic_launcher(tmp_path):
    result = _multirun(tmp_path, "model=sim-weak,sim-strong", "env.competition=0,1", "n_games=1", "env.max_rounds=2")
    assert result.returncode == 0, result.stderr[-2000:]
    records = _records(tmp_path / "store")
    assert len(records) == 4 * 2 and all(r["status"] == "complete" for r in records)
    lineups = {(r["agents"][r["focal_seat"]]["model"], r["game"]["competition"]) for r in records}
    assert lineups == {(m, c) for m in ("sim-weak", "sim-strong") for c in (0.0, 1.0)}


@pytest.mark.slow
def test_smoke_sweep_submitit_local_launcher_resumes(tmp_path):
    result = _multirun(tmp_path, "sweep=smoke", "hydra/launcher=local")
    assert result.returncode == 0, result.stderr[-2000:]
    records = _records(tmp_path / "store")
    assert len(records) == 16 and all(r["status"] == "complete" for r in records)
    assert len({r["experiment_id"] for r in records}) == 4
    assert list((tmp_path / "sweep").glob(".submitit/*/*/*_log.out"))  # the jobs ran as submitit processes
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*/games/*.json")}
    again = _multirun(tmp_path, "sweep=smoke", "hydra/launcher=local")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*/games/*.json")} == before
