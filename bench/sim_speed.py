"""Decision time of the offline players per move, from the default game up to 10 agents and 12 items.

Plays one game per size with sim-strong against sim-base (and the reference strategies filling
further seats) in-process and reports milliseconds per reply (mean, 95th percentile, max) over all
phases, and the ratio to the default 2 x 5 game, measured in the same run. The players decide by
greedy search over items and agents; n^m allocations are never enumerated (10^12 at 10 x 12).

    python bench/sim_speed.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from bargain.config import register  # noqa: E402
from bargain.runner import lineup_keys, model_config  # noqa: E402
from bargain.sim.ladder import DirectSim, play  # noqa: E402

CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
SIZES = ((2, 5), (3, 8), (5, 10), (10, 12))  # (agents, items)
FILL = ("boulware", "conceder", "fair", "greedy", "random", "sim-weak", "sim-base", "boulware")


def main() -> None:
    register()
    rows = []
    for n, m in SIZES:
        extra = [f"+model@opponents.o{i}={FILL[i]}" for i in range(n - 2)]
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[
                "model=sim-strong", "model@opponent=sim-base", "n_games=1", "counterbalance=false",
                f"env.n_agents={n}", f"env.n_items={m}", "env.vote_rule=majority", *extra])
        cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        backend = DirectSim({key: model_config(cfg, key) for key in set(lineup_keys(cfg))})
        start = time.perf_counter()
        (record,) = play(cfg, backend)
        ms = 1000 * np.array(backend.decisions)
        rows.append((n, m, len(ms), ms.mean(), np.percentile(ms, 95), ms.max(), time.perf_counter() - start,
                     record["status"]))
    print(f"{'agents':>6}{'items':>6}{'replies':>8}{'ms mean':>9}{'ms p95':>8}{'ms max':>8}{'game s':>8}{'x 2x5':>7}  status")
    for n, m, count, mean, p95, top, seconds, status in rows:
        print(f"{n:>6}{m:>6}{count:>8}{mean:>9.1f}{p95:>8.1f}{top:>8.1f}{seconds:>8.1f}{mean / rows[0][3]:>7.1f}  {status}")


if __name__ == "__main__":
    main()
