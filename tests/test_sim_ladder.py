"""The offline skill ladder, paired: each rung against every reference strategy and against each other.

50 paired games per comparison (25 preference draws x 2 seats, competition 0.9, the default game),
played in-process by the real engine (``bargain.sim.ladder``). A comparison holds when the 95% t
interval over draws of the paired difference excludes zero.

The test asserts the comparisons that held with their intervals above zero at root seeds 0, 1 and
2 (``MONOTONE``, ``HEAD_TO_HEAD``; the seeds of the offline players' choices also depend on the
experiment id, so a change of prompts reshuffles them) and prints the rest. Against ``fair`` and
``greedy`` the reference dictates the split (its Nash proposal; a wall that takes nothing below
90%), so competent rungs mostly accept the same offer and tie; against ``conceder`` the rungs reach
similar discounted utility by different routes (the stronger later, with the larger share); against
``random`` sim-strong's firmer asks beat sim-base's only at some seeds. The measured matrix is in
the README (``python bench/ladder.py``).
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bargain.sim.ladder import LADDER, REFERENCES, focal_share, focal_utility, head_to_head, paired, play

PAIRS = (("sim-base", "sim-weak"), ("sim-strong", "sim-base"))
MEASURES = {"utility": focal_utility, "share": focal_share}
MONOTONE = {
    ("boulware", "sim-base", "utility"), ("boulware", "sim-base", "share"),
    ("boulware", "sim-strong", "utility"), ("boulware", "sim-strong", "share"),
    ("conceder", "sim-base", "share"), ("conceder", "sim-strong", "share"),
    ("random", "sim-base", "utility"), ("random", "sim-base", "share"),
}
HEAD_TO_HEAD = (("sim-base", "sim-weak"), ("sim-strong", "sim-weak"))


@pytest.mark.slow
def test_ladder_against_every_reference_and_each_other(make_cfg):
    def ladder_games(model: str, opponent: str) -> list[dict]:
        cfg = make_cfg(f"model={model}", f"model@opponent={opponent}", "n_games=25", "env.competition=0.9",
                       "env.thinking=false", "env.reflection=false")
        return play(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))

    failures, report = [], []
    for opponent in REFERENCES:
        records = {rung: ladder_games(rung, opponent) for rung in LADDER}
        for better, worse in PAIRS:
            for name, measure in MEASURES.items():
                d = paired(records[better], records[worse], measure)
                report.append(f"vs {opponent}: {better} - {worse} {name} {d}")
                assert d.n_draws >= 20, report[-1]  # share needs a deal: a draw counts if some seat reached one
                if (opponent, better, name) in MONOTONE and not d.positive:
                    failures.append(f"not monotone: {report[-1]}")
    for better, worse in (*PAIRS, ("sim-strong", "sim-weak")):
        d = head_to_head(ladder_games(better, worse), better, worse)
        report.append(f"head to head: {better} - {worse} utility {d}")
        if (better, worse) in HEAD_TO_HEAD and not d.positive:
            failures.append(f"not monotone: {report[-1]}")
    print("\n".join(report))
    assert not failures, "\n".join(failures)
