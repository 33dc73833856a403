"""Benchmark: analysis of 10,000 and 100,000 games, before (records) and after (index), in one run.

Plays a base store of real offline games (the sim ladder against two opponents at the default
protocol), then builds larger stores by copying those records under new experiment ids, each copy
journaled for the index as the runner's write hook does (the smallest store through the hook itself,
whose time per game is reported). Each analysis
(`analysis.report.analyze`: every table, reference solutions, fits and intervals with 1,000 bootstrap
resamples, the behaviour tables, figures) runs in its own process, which reports its wall time and
peak memory (max RSS); each row names the machine's load average when its analysis started.
The baseline is the analysis before the index, taken from git (the parent of the commit that added
``analysis/index.py``) and run on the same 10,000-game store; at 100,000 games it ran out of memory
(12 GB after 6.4 minutes, issue 13), so it is not run there.

    python bench/analysis.py                    # base store, then 10,000 and 100,000 games
    python bench/analysis.py --sizes 2000 --keep /tmp/bench-analysis
    python bench/analysis.py --smoke            # a few games, seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path and its name would hide the analysis package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

log = logging.getLogger(__name__)

BASE = [[f"model={m}", f"model@opponent={o}", f"env.competition={c}", "run.progress=false"]
        for m in ("sim-weak", "sim-base", "sim-strong") for o in ("boulware", "conceder") for c in (0.25, 0.75)]
TARGET_S, TARGET_GB = 60.0, 4.0
# Runs in a fresh process: the analysis of one store, its wall time and peak memory as JSON.
DRIVER = """
import json, resource, sys, time
t = time.perf_counter()
from analysis.report import analyze
analyze(sys.argv[1], sys.argv[2], n_boot=int(sys.argv[3]))
print(json.dumps({"s": time.perf_counter() - t, "gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def play_base(store: Path, n_draws: int, experiments: list[list[str]]) -> None:
    """Real offline games of the default protocol (10 rounds), ``n_draws`` draws x 2 seats per experiment."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bargain.config import register
    from bargain.runner import run_experiment

    register()
    for overrides in experiments:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            run_experiment(compose(config_name="config", overrides=[f"store={store}", f"n_games={n_draws}", *overrides]))
    GlobalHydra.instance().clear()


def copy_store(base: Path, n_games: int, store: Path, hook: bool) -> float | None:
    """``n_games`` copies of ``base``'s records under new experiment ids, each indexed as it is written.

    The bytes are copied with only the id replaced (the JSON is not re-encoded), as a run of the same
    games would have written them. With ``hook`` every copy goes through the store's write hook and its
    mean time per game (ms) is returned; without, each base record's journal entry is derived once and
    written for every copy with its id and file stamp (what the hook would write, without validating
    the same bytes again), and None is returned.
    """
    from analysis import journal
    from bargain.store import append_line, canonical_json, decode, load_record

    experiments = sorted(p.parent for p in base.rglob("experiment.json"))
    sources = []
    for exp in experiments:
        files = []
        identity = json.loads((exp / "experiment.json").read_text())["identity"]
        for f in sorted((exp / "games").glob("*.json")):
            record = {**load_record(f), "identity": identity}
            line = None if hook else canonical_json(journal.entry(f"{exp.name}/{f.name}", f.stat(), record, journal.CACHE))
            # the stored record as plain JSON (records are gzip): its experiment id can be rewritten as bytes
            files.append((f.name, json.dumps(decode(f.read_bytes())).encode(), line))
        sources.append((exp, files))
    written, copy, hook_s = 0, 0, 0.0
    while written < n_games:
        for exp, files in sources:
            new = f"{copy:08d}{exp.name[8:]}"
            games = store / new / "games"
            games.mkdir(parents=True)
            (store / new / "experiment.json").write_bytes((exp / "experiment.json").read_bytes().replace(
                exp.name.encode(), new.encode()))
            for name, data, line in files[: n_games - written]:
                path = games / name
                path.write_bytes(data.replace(exp.name.encode(), new.encode()))
                t = time.perf_counter()
                if hook:
                    journal.on_write(path)
                else:
                    entry = json.loads(line.replace(exp.name, new))
                    entry.update(zip(journal.FINGERPRINT, journal.fingerprint(path.stat())))
                    append_line(store / journal.INDEX / journal.PENDING, entry)
                hook_s += time.perf_counter() - t
                written += 1
            if written >= n_games:
                break
        copy += 1
    return 1e3 * hook_s / written if hook else None


def baseline_tree(dest: Path) -> Path | None:
    """The analysis as it was before the index (from git), unpacked into ``dest``; None without git history."""
    try:
        added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "analysis/index.py"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split()
        if not added:
            return None
        data = subprocess.run(["git", "archive", f"{added[-1]}^", "analysis", "bargain"], cwd=ROOT,
                              capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def analyse(tree: Path, store: Path, out: Path, n_boot: int) -> dict:
    """Run the analysis of ``tree`` on ``store`` in a fresh process: {"s": wall seconds, "gb": peak RSS,
    "load": the machine's 1-minute load average when it started}."""
    env = {**os.environ, "PYTHONPATH": str(tree), "MPLBACKEND": "Agg"}
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", DRIVER, str(store), str(out), str(n_boot)], env=env, cwd=out.parent,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"analysis of {store} with {tree} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load": load}


def measure(smoke: bool) -> list[dict]:
    """The README figures: analysis time and peak memory at 10,000 and 100,000 games (a few games if ``smoke``)."""
    return run(sizes=[20] if smoke else [10_000, 100_000], n_draws=1 if smoke else 8,
               experiments=BASE[:1] if smoke else BASE, n_boot=50 if smoke else 1000)


def run(sizes: list[int], n_draws: int, experiments: list[list[str]], n_boot: int, keep: Path | None = None) -> list[dict]:
    root = keep or Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    try:
        t = time.perf_counter()
        if not (root / "base").exists():  # kept from an earlier run with --keep
            play_base(root / "base", n_draws, experiments)
        n_base = sum(1 for _ in (root / "base").rglob("games/*.json"))
        log.warning("base store: %d games, ready in %.0f s", n_base, time.perf_counter() - t)
        old = baseline_tree(root / "baseline")
        rows = []
        for i, n in enumerate(sizes):
            store = root / f"store-{n}"
            shutil.rmtree(store, ignore_errors=True)
            hook_ms = copy_store(root / "base", n, store, hook=i == 0)
            gb = sum(p.stat().st_size for p in store.rglob("games/*.json")) / 1e9
            log.warning("%d games (%.1f GB of records) written and journaled", n, gb)
            new = analyse(ROOT, store, root / f"out-{n}", n_boot)
            log.warning("after (first run, folds the journal): %s", new)
            before = analyse(old, store, root / f"out-{n}-before", n_boot) if old and i == 0 else None
            log.warning("before: %s", before)
            again = analyse(ROOT, store, root / f"out-{n}-again", n_boot)  # the index is now folded
            log.warning("after (index up to date): %s", again)
            label = f"{n:,} games, {n_boot:,} bootstrap resamples"
            big = n >= 100_000
            loads = f"load {new['load']:.1f}" + (f"/{before['load']:.1f}" if before else "")
            rows += [
                _row(f"analysis of {label}, first run after the games (s; {loads})", new["s"],
                     before and before["s"], "s", f"<= {TARGET_S:.0f} s" if big else "",
                     new["s"] <= TARGET_S if big else None),
                _row(f"analysis of {label}, index up to date (s; load {again['load']:.1f})", again["s"],
                     before and before["s"], "s", f"<= {TARGET_S:.0f} s" if big else "",
                     again["s"] <= TARGET_S if big else None),
                _row(f"analysis of {label}, peak memory (GB)", max(new["gb"], again["gb"]), before and before["gb"],
                     "GB", f"<= {TARGET_GB:.0f} GB" if big else "", max(new["gb"], again["gb"]) <= TARGET_GB if big else None),
            ]
            if i == 0:
                rows.append(_row("index upkeep per game written (ms, the store's write hook)", hook_ms, None, "ms", "", None))
            if not keep:
                shutil.rmtree(store, ignore_errors=True)
        return rows
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _row(figure: str, ours: float, baseline: float | None, unit: str, target: str, met: bool | None) -> dict:
    return {"figure": figure, "ours": ours, "baseline": baseline, "ratio": ours / baseline if baseline else None,
            "unit": unit, "target": target, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="store sizes in games (comma-separated)")
    parser.add_argument("--draws", type=int, default=8, help="preference draws per base experiment (x 2 seats x 12)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the analysis")
    parser.add_argument("--keep", type=Path, default=None, help="keep the stores and outputs in this folder")
    parser.add_argument("--smoke", action="store_true", help="a few games: checks the benchmark runs, in seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.smoke:
        rows = measure(smoke=True)
    else:
        rows = run([int(x) for x in args.sizes.split(",")], args.draws, BASE, args.bootstrap, args.keep)
    print(f"{'figure':<80}{'ours':>10}{'before':>10}{'ratio':>8}  target")
    for r in rows:
        before = f"{r['baseline']:.2f}" if r["baseline"] is not None else "-"
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        print(f"{r['figure']:<80}{r['ours']:>10.2f}{before:>10}{ratio:>8}  {r['target']}"
              + ("" if r["met"] is None else " met" if r["met"] else " NOT met"))


if __name__ == "__main__":
    main()
