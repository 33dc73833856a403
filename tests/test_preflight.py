"""Check before spending: every cell of a sweep is checked on the submitting machine before anything starts or
is submitted (any launcher); a dry run prints the plan and its cost; failing cells do not stop the others."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_http_server import OpenAICompatible, server  # noqa: F401 - the fixture
from test_slurm import _require_slurm

from bargain import sweep
from bargain.config import validate
from bargain.preflight import unreachable

ROOT = Path(__file__).resolve().parents[1]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def _cells(make_cfg, *lineups: list[str]) -> list[sweep.Cell]:
    cells = []
    for index, overrides in enumerate(lineups):
        cfg = make_cfg(*overrides)
        validate(cfg)
        cells.append(sweep.Cell(index, overrides, cfg))
    return cells


def test_one_line_per_missing_key_endpoint_and_config_error(make_cfg, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "set")
    dead = f"http://127.0.0.1:{_dead_port()}/v1"
    cells = _cells(
        make_cfg,
        ["model=qwen72b", "model@opponent=qwen14b", "opponent.server=null"],
        ["model=llama-3.3-70b", "model@opponent=qwen14b", "opponent.server=null"],
        ["model=litellm", "model.litellm_model=openai/local", f"model.api_base={dead}"],
        ["model=claude-haiku-4-5"],
    )
    cells.append(sweep.Cell(4, ["model=gpt-4o"], error="model=gpt-4o (openai/gpt-4o-2024-05-13) was retired on 2026-10-23"))
    lines = sweep.preflight(cells)
    assert len(lines) == 4, lines
    key, endpoint, retired, probe = lines
    assert key == "OPENROUTER_API_KEY is not set: needed by llama-3.3-70b, qwen72b (2 of 5 cells: 0, 1)"
    assert endpoint.startswith("model qwen14b (opponent, hosted_vllm/Qwen/Qwen2.5-14B-Instruct) is self-hosted: set "
                               "opponent.api_base=http://HOST:PORT/v1") and endpoint.endswith("(2 of 5 cells: 0, 1)")
    assert probe.startswith("nothing answers at the api_base of local (127.0.0.1:") and "(1 of 5 cells: 2)" in probe
    assert retired.endswith("was retired on 2026-10-23 (1 of 5 cells: 4)")
    assert sweep.preflight(cells, probe_endpoints=False) == [key, endpoint, retired]  # the probe is this machine's


def test_the_endpoint_probe_reaches_a_live_server(server):  # noqa: F811
    assert unreachable(f"http://127.0.0.1:{server.server_address[1]}/v1") is None
    assert "Connection refused" in unreachable(f"http://127.0.0.1:{_dead_port()}/v1")


def _run(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environment.update(env or {})
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), environment.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "bargain.run", "-m", f"store={tmp_path / 'store'}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         *args], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900)


def _jobs() -> set[str]:
    """Every SLURM job the controller and the accounting database know of today."""
    queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout.split()
    start = time.strftime("%Y-%m-%dT00:00:00")
    done = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID", "-S", start], capture_output=True, text=True,
                          check=False).stdout.split()
    return set(queued) | set(done)


# Two problems in every cell: the opponent's key (ANTHROPIC_API_KEY) is unset, and qwen14b has no endpoint.
BROKEN = ["model=qwen14b,sim-weak", "model.server=null", "model@opponent=claude-haiku-4-5", "env.competition=0.5,1.0"]


@pytest.mark.slow
def test_a_sweep_with_a_missing_key_and_an_unset_endpoint_submits_nothing_to_slurm(tmp_path):
    _require_slurm()
    before = _jobs()
    proc = _run(tmp_path, *BROKEN, "hydra/launcher=slurm", "hydra.launcher.timeout_min=5")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert _jobs() == before, "a job was submitted"
    assert not (tmp_path / "sweep" / ".submitit").exists() and not (tmp_path / "store").exists()
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: model qwen14b (model, hosted_vllm/Qwen/Qwen2.5-14B-Instruct) is self-hosted: set "
        "model.api_base=http://HOST:PORT/v1 to an OpenAI-compatible server serving Qwen/Qwen2.5-14B-Instruct, "
        "or give model.server (2 of 4 cells: 0, 1)",
        "error: ANTHROPIC_API_KEY is not set: model claude-haiku-4-5 (opponent, anthropic/claude-haiku-4-5-20251001) "
        "reads its API key from it (all 4 cells)",
        "error: 2 problem(s) found before the sweep; nothing was started or submitted",
    ], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_every_launcher_is_checked_before_it_starts(tmp_path, launcher):
    proc = _run(tmp_path, *BROKEN, f"hydra/launcher={launcher}")
    assert proc.returncode == 2 and "nothing was started or submitted" in proc.stderr
    assert not (tmp_path / "store").exists() and not (tmp_path / "sweep" / ".submitit").exists()


def _table(stdout: str) -> list[list[str]]:
    """The dry run's rows: cell, overrides..., games, to play, prompt, output, USD, basis."""
    return [line.split() for line in stdout.splitlines() if re.match(r"^\s+\d+\s", line)]


@pytest.mark.slow
def test_dry_run_prints_the_plan_and_its_cost_then_learns_from_stored_games(tmp_path):
    proc = _run(tmp_path, "sweep=smoke", "dry_run=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _table(proc.stdout)
    assert len(rows) == 4 and all(r[3:5] == ["4", "4"] and r[-3:] == ["sizes", "(upper", "bound)"] for r in rows)
    assert "dry run: 4 cells, 16 games (16 to play); nothing was started or written" in proc.stdout
    assert "sim-strong                   sim/strong (offline, in-process)" in proc.stdout
    assert "prompt sizes (upper bound): from the prompt templates" in proc.stdout
    assert not (tmp_path / "store").exists() and not (tmp_path / "sweep").exists()

    assert _run(tmp_path, "sweep=smoke").returncode == 0
    again = _run(tmp_path, "sweep=smoke", "dry_run=true", "n_games=3")  # one more draw per cell
    rows = _table(again.stdout)
    assert all(r[3:5] == ["6", "2"] and r[-3] == "stored" for r in rows), again.stdout
    assert "stored: mean tokens per agent and game of complete games in the store" in again.stdout

    # the reasoning dial and per-phase caps are sweep axes like any other
    axes = _run(tmp_path, "model=gpt-5.4", "model.reasoning.effort=low,high", "env.max_tokens.thinking=256,1024",
                "dry_run=true", env={"OPENAI_API_KEY": "sk-test"})
    assert axes.returncode == 0, axes.stderr[-3000:]
    assert len(_table(axes.stdout)) == 4
    assert "gpt-5.4-effort-low " in axes.stdout and "gpt-5.4-high " in axes.stdout


@pytest.mark.slow
def test_a_failing_cell_does_not_stop_the_cells_after_it(tmp_path, server):  # noqa: F811
    live, dead = server.server_address[1], _dead_port()
    proc = _run(tmp_path, "model=litellm", "model.litellm_model=openai/test-model",
                f"model.api_base=http://127.0.0.1:{dead}/v1,http://127.0.0.1:{live}/v1", "hydra.sweeper.check_endpoints=false",
                "n_games=1", "counterbalance=false", "env.max_rounds=2", "run.max_retries=0")
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = proc.stdout[proc.stdout.index("sweep: 2 cells"):].splitlines()
    assert summary[0] == "sweep: 2 cells, 1 ok, 1 failed"
    # the label is the cell's own override, as Hydra writes it (":" escaped)
    # the job's own check finds the dead endpoint before its first game (bargain.backend.Backend.check_endpoints)
    assert summary[1].startswith("cell 0 model.api_base=") and f"{dead}/v1: FAILED: " in summary[1]
    assert "is unreachable" in summary[1] and "start the server or fix model.api_base" in summary[1]
    assert summary[2].startswith("cell 1 model.api_base=") and f"{live}/v1: ok, 1 game(s) played" in summary[2]
    store = (tmp_path / "store").resolve()
    assert summary[3] == f"records: {store} (per cell: python -m bargain.status {store})"
    assert OpenAICompatible.seen and "Traceback" not in proc.stderr
