"""Benchmark: concurrent vs sequential games, measured side by side in one run.

The offline players get an injected latency (uniform 0.5-1.5 x ``--latency``) standing in for a
network model, so the numbers show what concurrency buys when calls wait on a provider.

    python bench/concurrency.py                  # 8 draws x 2 seats = 16 games, 20 ms per call
    python bench/concurrency.py --latency 0.05 --draws 4
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from bargain.backend import SIM_PROVIDER  # noqa: E402
from bargain.config import register  # noqa: E402
from bargain.runner import run_experiment  # noqa: E402

CONF = str(Path(__file__).resolve().parent.parent / "conf")


def config(*overrides: str):
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def peak_overlap(records: list[dict]) -> int:
    """Most calls in flight at one instant, from the recorded call timestamps."""
    events = sorted(
        (t, step) for r in records for c in r["calls"] for t, step in ((c["started"], 1), (c["finished"], -1))
    )
    peak = current = 0
    for _t, step in events:
        current += step
        peak = max(peak, current)
    return peak


def timed(*overrides: str) -> tuple[float, list[dict]]:
    cfg = config(*overrides)
    start = time.perf_counter()
    summary = run_experiment(cfg)
    return time.perf_counter() - start, summary.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.02, help="mean injected seconds per call")
    parser.add_argument("--draws", type=int, default=8, help="preference draws (2 games each)")
    parser.add_argument("--rounds", type=int, default=4, help="env.max_rounds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    SIM_PROVIDER.latency_s = args.latency
    common = [f"n_games={args.draws}", f"env.max_rounds={args.rounds}", "run.progress=false"]

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for concurrency in (1, 4, 16):
            store = Path(tmp) / f"c{concurrency}"
            seconds, records = timed(*common, f"store={store}", f"run.game_concurrency={concurrency}")
            rows.append((f"game_concurrency={concurrency}", seconds, records))
        base = rows[0][1]
        calls = sum(len(r["calls"]) for r in rows[0][2])
        print(f"{len(rows[0][2])} games, {calls} calls, injected latency {args.latency * 1000:.0f} ms/call (mean)")
        print(f"{'setting':<22}{'wall s':>9}{'speedup':>9}{'peak calls in flight':>22}")
        for name, seconds, records in rows:
            print(f"{name:<22}{seconds:>9.2f}{base / seconds:>8.1f}x{peak_overlap(records):>22}")


if __name__ == "__main__":
    main()
