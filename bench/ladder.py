"""The offline ladder, measured: each rung against every reference strategy and against each other.

For every opponent it plays sim-weak, sim-base and sim-strong on the same preference draws in the
same seats (``--draws`` draws x 2 seats = paired games) and prints the mean discounted utility,
share and agreement round per rung, and the paired differences base - weak and strong - base
with 95% t intervals over draws (``!`` marks an interval that does not exclude zero). Games are
played in-process (``bargain.sim.ladder``), with thinking and reflection off (the offline players
ignore them).

    python bench/ladder.py                       # 25 draws, competition 0.9 (the default game)
    python bench/ladder.py --draws 50 --competition 0.5

Against the time-dependent references (``boulware``, ``conceder``, ``greedy``) it also prints the
exact upper bound of what any policy can get (two agents: every allocation enumerated against the
reference's known acceptance rule, best round chosen with hindsight) and how far each rung is
below it, which shows how much room a stronger rung has. Against ``greedy`` also from round 8,
before which greedy's offers cannot be told from boulware's (both concede almost nothing), so
waiting is the right play against the pair, and what taking greedy's own offers gets: in the first
round greedy accepts its own proposal (what sim-weak does) and in the best such round with hindsight.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from bargain.config import register  # noqa: E402
from bargain.sim.ladder import LADDER, REFERENCES, focal_share, focal_utility, head_to_head, paired, play  # noqa: E402
from bargain.sim.strategies import STRATEGIES, Allocations  # noqa: E402

CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def config(model: str, opponent: str, draws: int, competition: float, seed: int) -> dict:
    register()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"model={model}", f"model@opponent={opponent}", f"n_games={draws}", f"seed={seed}",
            f"env.competition={competition}", "env.thinking=false", "env.reflection=false"])
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


BOUNDED = ("boulware", "conceder", "greedy")  # references whose acceptance rule is a known aspiration


def demand(reference: str, r: int, max_rounds: int, total: float) -> float:
    """What the time-dependent ``reference`` accepts in round ``r``: its aspiration times ``total``."""
    style = STRATEGIES[reference]
    progress = (r - 1) / max(max_rounds - 1, 1)
    return (style.opening - (style.opening - style.floor) * progress**style.beta) * total


def own_offers(record: dict, reference: str) -> list[float]:
    """Per round, the discounted worth to the focal seat of the time-dependent ``reference``'s own
    proposal if the reference accepts it itself, else 0 (two agents). It models nothing (a uniform
    estimate of the other), so its proposal depends only on the round: replayed with its own search."""
    game, values = record["game"], np.array(record["preferences"]["values"], dtype=float)
    focal, m = record["focal_seat"], values.shape[1]
    wall = 1 - focal
    own = np.zeros((m, 2))
    own[:, wall] = values[wall]
    estimate = np.full((2, m), 100 / m)
    estimate[wall] = values[wall]
    out = []
    for r in range(1, game["max_rounds"] + 1):
        need = demand(reference, r, game["max_rounds"], values[wall].sum())
        owners = Allocations(own, estimate, wall).acceptable(need)
        accepted = values[wall, owners == wall].sum() >= need - 1e-9
        out.append(game["gamma"] ** (r - 1) * values[focal, owners == focal].sum() if accepted else 0.0)
    return out


def reference_bound(record: dict, reference: str, first_round: int = 1) -> float:
    """The most discounted utility any focal policy gets against the time-dependent ``reference``
    (two agents) from ``first_round`` on: in each round, the allocation best for the focal seat that
    the reference accepts (its value to the reference at least its aspiration; in the last round any
    positive value, except for greedy), discounted; the best round."""
    game, values = record["game"], np.array(record["preferences"]["values"], dtype=float)
    focal = record["focal_seat"]
    wall = 1 - focal
    splits = [np.array(o) for o in itertools.product((focal, wall), repeat=values.shape[1])]
    best = 0.0
    for r in range(first_round, game["max_rounds"] + 1):
        need = demand(reference, r, game["max_rounds"], values[wall].sum())
        if r == game["max_rounds"] and reference != "greedy":
            need = 1e-6  # takes anything worth more than nothing in the last round
        worth = max((values[focal, o == focal].sum() for o in splits if values[wall, o == wall].sum() >= need - 1e-9),
                    default=0.0)
        best = max(best, game["gamma"] ** (r - 1) * worth)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=25)
    parser.add_argument("--competition", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    games = 0
    print(f"{'opponent':<11}" + "".join(f"{rung + ' (U, share, round)':>30}" for rung in LADDER)
          + f"{'base - weak: U':>22}{'share':>18}{'strong - base: U':>22}{'share':>18}")
    for opponent in REFERENCES:
        records = {rung: play(config(rung, opponent, args.draws, args.competition, args.seed)) for rung in LADDER}
        games += sum(map(len, records.values()))
        cells = []
        for rung in LADDER:
            r = records[rung]
            rounds = [g["outcome"]["round"] for g in r if g["outcome"]["agreement"]]
            cells.append(f"{np.mean([focal_utility(g) for g in r]):.1f}, {np.nanmean([focal_share(g) for g in r]):.2f}, "
                         f"r{np.mean(rounds):.1f}")
        diffs = []
        for better, worse in (("sim-base", "sim-weak"), ("sim-strong", "sim-base")):
            for measure, digits in ((focal_utility, 1), (focal_share, 3)):
                d = paired(records[better], records[worse], measure)
                diffs.append(f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}]{' ' if d.positive else '!'}")
        print(f"{opponent:<11}" + "".join(f"{c:>30}" for c in cells) + "".join(f"{d:>20}" for d in diffs))
        if opponent in BOUNDED and records["sim-weak"][0]["game"]["n_agents"] == 2:
            for first in (1, 8) if opponent == "greedy" else (1,):
                bound = [reference_bound(g, opponent, first) for g in records["sim-weak"]]
                gaps = "; ".join(f"{rung} {np.mean(bound) - np.mean([focal_utility(g) for g in records[rung]]):.2f} "
                                 f"({sum(b - focal_utility(g) > 0.5 for b, g in zip(bound, records[rung]))} games > 0.5)"
                                 for rung in LADDER)
                print(f"  {opponent}: the most any policy gets from round {first}: {np.mean(bound):.2f}; above {gaps}")
            if opponent == "greedy":
                offers = [[u for u in own_offers(g, opponent) if u > 0] for g in records["sim-weak"]]
                first = np.mean([o[0] if o else 0.0 for o in offers])
                print(f"  greedy: its own offer taken in the first round it accepts it: {first:.2f}; "
                      f"in the best such round (hindsight): {np.mean([max(o, default=0.0) for o in offers]):.2f}")
    for better, worse in (("sim-base", "sim-weak"), ("sim-strong", "sim-base"), ("sim-strong", "sim-weak")):
        records = play(config(better, worse, args.draws, args.competition, args.seed))
        games += len(records)
        d = head_to_head(records, better, worse)
        print(f"head to head: {better} - {worse} utility {d}{'' if d.positive else '  !'}")
    print(f"{games} games in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
