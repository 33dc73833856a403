"""The smoke sweep through the SLURM launcher on a real cluster (.ci/slurm-up starts one).

1. Run `sweep=smoke` with `hydra/launcher=slurm`; every cell must hold complete, valid records.
2. Re-submit part of it (the sim-strong cells) with more preference draws and games slowed down,
   `scancel` one array task while its cell is half done: the submission waits for the other task
   and ends with one line per cell, the cancelled one failed, and exit code 1 (no traceback).
3. Re-submit the same command: the missing games complete, and no record that existed before
   is rewritten (same inode, mtime and started_at), so every game was played exactly once.

Skips when no SLURM answers, unless BARGAIN_REQUIRE_SLURM=1 (CI), which turns the skip into a
failure.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from bargain.store import load_record

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Small jobs, so that two array tasks run at once on a 2-CPU CI node.
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10"]
SMOKE_CELLS = {("sim-weak", 0.25), ("sim-weak", 0.75), ("sim-strong", 0.25), ("sim-strong", 0.75)}
SMOKE_GAMES = 4  # n_games=2 draws x 2 seat orders (counterbalance)
PART = ["model=sim-strong", "n_games=6"]  # step 2: 2 cells, 4 more draws -> 12 games per cell
PART_GAMES = 12
# Runtime-only knobs (not part of the experiment identity): one game at a time, each taking
# >= 2 s, so a cell is observably half done for several seconds. scancel lets a job run on for
# KillWait (5 s in .ci/slurm-up) after SIGTERM, which submitit ignores; 8 new games x 2 s leave
# games missing even then.
SLOW = ["run.game_concurrency=1", "run.game_delay_s=2"]
TIMEOUT_S = 600


def _require_slurm() -> None:
    reason = None
    if shutil.which("sinfo") is None:
        reason = "SLURM client not installed (sinfo not found); run .ci/slurm-up"
    elif subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30, check=False).returncode != 0:
        reason = "no SLURM controller answers (sinfo failed); run .ci/slurm-up"
    if reason:
        if os.environ.get("BARGAIN_REQUIRE_SLURM") == "1":
            pytest.fail(f"BARGAIN_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


def _command(store: Path, sweep: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bargain.run", "-m", "sweep=smoke", *LAUNCHER,
            f"store={store}", f"hydra.sweep.dir={sweep}", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def _cell_of(exp_dir: Path) -> tuple[str, float]:
    config = json.loads((exp_dir / "experiment.json").read_text())["config"]
    return config["model"]["name"], float(config["env"]["competition"])


def _cells(store: Path) -> dict[tuple[str, float], Path]:
    """(focal model, competition) -> experiment dir; a cell is unique in the smoke grid."""
    cells = {}
    for exp_dir in sorted(p for p in store.iterdir() if (p / "experiment.json").exists()):
        key = _cell_of(exp_dir)
        assert key not in cells, f"two experiments for cell {key}: {cells.get(key)} and {exp_dir}"
        cells[key] = exp_dir
    return cells


def _record_files(exp_dir: Path) -> dict[int, Path]:
    games = exp_dir / "games"
    files = sorted(games.glob("*.json")) if games.is_dir() else []
    return {int(p.stem): p for p in files if p.stem.isdigit()}


def _fingerprints(store: Path) -> dict[Path, tuple[int, int, str]]:
    """(inode, mtime_ns, started_at) of every complete record: a rewrite changes all three.

    Records of other statuses are left out: re-running errored games is the point of resuming.
    """
    out = {}
    for exp_dir in _cells(store).values():
        for path in _record_files(exp_dir).values():
            st, rec = path.stat(), load_record(path)
            if rec["status"] == "complete":
                out[path] = (st.st_ino, st.st_mtime_ns, rec["started_at"])
    return out


def _check_record(rec: dict, exp_dir: Path, index: int) -> None:
    where = f"{exp_dir.name}/games/{index:05d}.json"
    assert rec["status"] == "complete" and rec["error"] is None, f"{where}: {rec['status']} {rec['error']}"
    assert rec["experiment_id"] == exp_dir.name and rec["game_index"] == index, where
    game, outcome = rec["game"], rec["outcome"]
    n, m = game["n_agents"], game["n_items"]
    assert (rec["draw_index"], rec["focal_seat"]) == divmod(index, n), f"{where}: counterbalanced seats"
    assert [a["seat"] for a in rec["agents"]] == list(range(n)), where
    assert rec["agents"][rec["focal_seat"]]["role"] == "focal", where
    raw, disc = outcome["raw_utility"], outcome["discounted_utility"]
    assert len(raw) == len(disc) == n, where
    if outcome["agreement"]:
        rnd, owners = outcome["round"], outcome["owners"]
        assert 1 <= rnd <= game["max_rounds"], where
        assert len(owners) == m and all(0 <= o < n for o in owners), where
        if rec["preferences"]["kind"] == "vector":
            values = rec["preferences"]["values"]
            expected = [float(sum(values[i][k] for k in range(m) if owners[k] == i)) for i in range(n)]
            assert raw == pytest.approx(expected), f"{where}: raw utility"
        factor = game["gamma"] ** (rnd - 1)
        assert disc == pytest.approx([u * factor for u in raw]), f"{where}: discounting"
    else:
        assert outcome["owners"] is None and not any(raw) and not any(disc), f"{where}: no deal pays 0"
    assert all(math.isfinite(u) and u >= 0 for u in raw), where


def _check_cell(exp_dir: Path, n_expected: int) -> None:
    files = _record_files(exp_dir)
    assert sorted(files) == list(range(n_expected)), f"{exp_dir.name}: game indices {sorted(files)}"
    for index, path in files.items():
        _check_record(load_record(path), exp_dir, index)


def _job_ids(sweep: Path) -> dict[tuple[str, float], str]:
    """(focal model, competition) -> SLURM id ("<array>_<task>") of the job that ran that cell.

    Each job writes its overrides and its hydra config (with hydra.job.id) when it starts.
    """
    out = {}
    for hydra_yaml in sweep.glob("**/.hydra/hydra.yaml"):
        try:
            overrides = yaml.safe_load((hydra_yaml.parent / "overrides.yaml").read_text())
            values = dict(o.split("=", 1) for o in overrides)
            job_id = yaml.safe_load(hydra_yaml.read_text())["hydra"]["job"]["id"]
            out[(values["model"], float(values["env.competition"]))] = str(job_id)
        except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError):
            continue  # the job is still writing its .hydra files
    return out


def _wait_gone(array_id: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", array_id], capture_output=True, text=True, check=False).stdout
        if not out.strip():
            return
        time.sleep(1)
    pytest.fail(f"jobs of array {array_id} still queued after the submission ended")


def _cancel_ours(*sweeps: Path) -> None:
    """Cancel every job these sweeps submitted (clean-up after a failure; a no-op otherwise)."""
    arrays = {
        str(yaml.safe_load(p.read_text())["hydra"]["job"]["id"]).split("_")[0]
        for sweep in sweeps for p in sweep.glob("**/.hydra/hydra.yaml")
    }
    if arrays:
        subprocess.run(["scancel", *sorted(arrays)], capture_output=True, check=False)


def test_smoke_sweep_on_slurm_resumes_after_scancel(tmp_path: Path) -> None:
    _require_slurm()
    store, sweep1, sweep2 = tmp_path / "store", tmp_path / "sweep1", tmp_path / "sweep2"
    try:
        # 1. the whole smoke sweep
        proc = _run(_command(store, sweep1), tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
        cells = _cells(store)
        assert set(cells) == SMOKE_CELLS
        for exp_dir in cells.values():
            _check_cell(exp_dir, SMOKE_GAMES)
        before_part = _fingerprints(store)

        # 2. part of it again with more draws, slowed down; cancel one task mid-way
        part_cmd = _command(store, sweep2, *PART)
        log = tmp_path / "step2.log"
        with log.open("w") as log_file:  # a file, not a pipe nobody reads while we poll
            submission = subprocess.Popen([*part_cmd, *SLOW], cwd=tmp_path, env=_env(),
                                          stdout=log_file, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + TIMEOUT_S
        cancelled: tuple[tuple[str, float], str] | None = None
        while cancelled is None and time.monotonic() < deadline and submission.poll() is None:
            for key in [k for k in SMOKE_CELLS if k[0] == "sim-strong"]:
                done = len(_record_files(cells[key]))
                job_id = _job_ids(sweep2).get(key)
                if SMOKE_GAMES < done < PART_GAMES and job_id is not None:
                    subprocess.run(["scancel", job_id], check=True)
                    cancelled = (key, job_id)
                    break
            time.sleep(0.2)
        submission.wait(timeout=TIMEOUT_S)
        output = log.read_text()[-4000:]
        assert cancelled is not None, (
            f"never saw a half-done cell to cancel; are run.game_concurrency/run.game_delay_s honoured?\n{output}")
        cancelled_cell, job_id = cancelled
        # The submission waits for every task, then ends with one line per cell: the cancelled one failed.
        assert submission.returncode == 1 and "Traceback" not in output, output
        summary = output[output.index("sweep: 2 cells"):].splitlines()
        assert summary[0] == "sweep: 2 cells, 1 ok, 1 failed", output
        failed = [line for line in summary if ": FAILED: " in line]
        assert len(failed) == 1 and f"env.competition={cancelled_cell[1]}: FAILED: slurm job {job_id} ended without a " \
            "result (state CANCELLED" in failed[0], output
        assert f"per cell: python -m bargain.status {store.resolve()}" in output
        _wait_gone(job_id.split("_")[0], deadline)
        partial = len([p for p in _fingerprints(store) if p.parent.parent == cells[cancelled_cell]])
        assert partial < PART_GAMES, (
            f"cell {cancelled_cell} finished despite scancel of {job_id}; the games were too fast\n{output}")
        state = subprocess.run(["sacct", "-n", "-X", "-j", job_id, "-o", "State"],
                               capture_output=True, text=True, check=False).stdout
        assert "CANCELLED" in state or not state.strip(), f"{job_id}: {state}"
        before_resume = _fingerprints(store)
        assert all(before_resume.get(p) == fp for p, fp in before_part.items()), "step 2 rewrote step-1 records"

        # 3. the same command again: only the missing games run
        resumed_at = datetime.now().astimezone()
        proc = _run(part_cmd, tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
        cells_after = _cells(store)
        assert cells_after == cells, "re-submission created new experiments (identity changed?)"
        for key, exp_dir in cells.items():
            _check_cell(exp_dir, PART_GAMES if key[0] == "sim-strong" else SMOKE_GAMES)
        after = _fingerprints(store)
        rewritten = [p.name for p, fp in before_resume.items() if after[p] != fp]
        assert not rewritten, f"complete records were played again: {rewritten}"
        new = [p for p in after if p not in before_resume]  # all of them are complete (_check_cell)
        assert len(new) == PART_GAMES - partial, f"expected {PART_GAMES - partial} new records, got {len(new)}"
        for path in new:
            started = datetime.fromisoformat(after[path][2])
            started = started if started.tzinfo else started.replace(tzinfo=timezone.utc)
            assert started >= resumed_at.replace(microsecond=0), f"{path.name} started before the re-submission"

        status = _run([sys.executable, "-m", "bargain.status", str(store)], tmp_path)
        assert status.returncode == 0, status.stderr
        total = next(line for line in status.stdout.splitlines() if line.startswith("total:"))
        assert " 0 error," in total and " 0 missing," in total and " 0 damaged," in total, status.stdout
    finally:
        _cancel_ours(sweep1, sweep2)
