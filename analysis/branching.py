"""Effects of counterfactual branches (``python -m bargain.branch``) and where each game was decided.

Usage:
    python -m analysis.branching outputs/store            # effects and turning points, as text
    python -m analysis.branching outputs/store --csv out/  # the same tables as CSV files

The effect of an intervention at a branch point on a seat is the mean utility (discounted) of its
branches minus that of the control branches from the same point (or, without controls, the parent's
outcome), with a 95% bootstrap interval resampling the branches of both groups. Pooled over games,
the effect is the mean of the per-game effects with an interval resampling whole games.

Turning point: for a swap, the effect on the swapped seat at each branch point in game order. The
game was *decided at* the last point where the swap still changes that seat's result (its interval
excludes 0); the turning point is the next one, after which swapping the agent no longer changes
the result (``end`` when even the last point still changes it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import experiment_dirs
from analysis.stats import cluster_mean_ci, cluster_weights, percentile_ci
from bargain.config import PHASES

POINT = ["point_round", "point_phase"]
GAME = ["experiment_id", "game_index"]


def iter_branches(path: str | Path):
    """Every complete branch record below a store (or sweep directory)."""
    for exp in experiment_dirs(path):
        for f in sorted((exp / "branches").glob("*/*.json")):
            record = json.loads(f.read_text(encoding="utf-8"))
            if record.get("status") == "complete":
                yield record


def branch_rows(records) -> pd.DataFrame:
    """One row per branch and seat: the branch point, the intervention, the outcome, the parent's outcome."""
    rows = []
    for r in records:
        b, outcome = r["branch"], r["outcome"]
        parent = b["parent"]["outcome"] or {}
        i = b["intervention"]
        label = "control" if i["kind"] == "control" else _label(i)
        for seat, agent in enumerate(r["agents"]):
            rows.append({
                "experiment_id": b["parent"]["experiment_id"], "game_index": b["parent"]["game_index"],
                "point_round": b["point"]["round"], "point_phase": b["point"]["phase"],
                "point_order": b["point"]["round"] * len(PHASES) + PHASES.index(b["point"]["phase"]),
                "kind": i["kind"], "intervention": label, "intervention_seat": i["seat"], "seed": b["seed"],
                "seat": seat, "model": agent["model"], "parent_model": b["parent"]["agents"][seat],
                "agreement": bool(outcome["agreement"]), "agreement_round": outcome["round"],
                "utility": float(outcome["discounted_utility"][seat]),
                "parent_utility": float((parent.get("discounted_utility") or [0.0] * len(r["agents"]))[seat]),
                "replayed_calls": b["prefix"]["calls"],
            })
    return pd.DataFrame(rows)


def _label(intervention: dict) -> str:
    what = intervention["model"] if intervention["kind"] == "swap" else repr((intervention["text"] or "")[:24])
    return f"{intervention['kind']} seat {intervention['seat']} -> {what}"


def diff_ci(a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """mean(a) - mean(b) with a percentile interval resampling each group's observations."""
    means = []
    for y in (a, b):
        w = cluster_weights(np.arange(y.size), n_boot, rng)
        means.append(w @ y / w.sum(axis=1))
    lo, hi = percentile_ci(means[0] - means[1])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def effects(rows: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per game, branch point, intervention and seat: the effect on the seat's utility with its interval."""
    rng = np.random.default_rng(seed)
    out = []
    treated = rows[rows["kind"] != "control"]
    controls = rows[rows["kind"] == "control"]
    for key, df in treated.groupby([*GAME, *POINT, "intervention", "seat"], sort=False):
        game, point = dict(zip(GAME, key[:2])), dict(zip(POINT, key[2:4]))
        ctrl = controls
        for col, value in {**game, **point, "seat": key[-1]}.items():
            ctrl = ctrl[ctrl[col] == value]
        baseline = ctrl["utility"].to_numpy() if len(ctrl) else df["parent_utility"].to_numpy()[:1]
        effect, lo, hi = diff_ci(df["utility"].to_numpy(), baseline, n_boot, rng)
        out.append({**game, **point, "point_order": int(df["point_order"].iloc[0]), "intervention": key[4],
                    "kind": df["kind"].iloc[0], "intervention_seat": int(df["intervention_seat"].iloc[0]),
                    "seat": key[-1], "n": len(df), "n_control": len(ctrl), "baseline": "control" if len(ctrl) else "parent",
                    "utility": float(df["utility"].mean()), "control_utility": float(baseline.mean()),
                    "effect": effect, "effect_low": lo, "effect_high": hi,
                    "changes": bool(lo > 0 or hi < 0)})
    return pd.DataFrame(out).sort_values([*GAME, "intervention", "point_order", "seat"], ignore_index=True) if out else pd.DataFrame()


def pooled_effects(per_game: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per branch point, intervention and seat, over games: the mean per-game effect, games resampled."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, df in per_game.groupby([*POINT, "intervention", "seat"], sort=False):
        mean, lo, hi = cluster_mean_ci(df["effect"], df["experiment_id"] + "/" + df["game_index"].astype(str), n_boot, rng)
        rows.append({**dict(zip([*POINT, "intervention", "seat"], key)), "point_order": int(df["point_order"].iloc[0]),
                     "games": len(df), "effect": mean, "effect_low": lo, "effect_high": hi})
    return pd.DataFrame(rows).sort_values(["intervention", "point_order", "seat"], ignore_index=True) if rows else pd.DataFrame()


def turning_points(per_game: pd.DataFrame) -> pd.DataFrame:
    """Per game and swap: the last branch point where the swap changes the swapped seat's result, and the next."""
    rows = []
    swaps = per_game[(per_game["kind"] == "swap") & (per_game["seat"] == per_game["intervention_seat"])]
    for key, df in swaps.groupby([*GAME, "intervention"], sort=False):
        df = df.sort_values("point_order")
        points = [f"round {r} {p}" for r, p in zip(df["point_round"], df["point_phase"])]
        changed = df["changes"].to_numpy()
        last = int(np.flatnonzero(changed)[-1]) if changed.any() else -1
        rows.append({**dict(zip([*GAME, "intervention"], key)), "points": len(df),
                     "changes_at": int(changed.sum()),
                     "decided_at": points[last] if last >= 0 else "before the first point",
                     "turning_point": points[last + 1] if last + 1 < len(points) else "end",
                     "decided_round": int(df["point_round"].iloc[last]) if last >= 0 else None})
    return pd.DataFrame(rows)


def turning_view(per_game: pd.DataFrame, width: int = 30) -> str:
    """Text view of each swap's effect on the swapped seat along the game, one line per branch point."""
    lines = []
    swaps = per_game[(per_game["kind"] == "swap") & (per_game["seat"] == per_game["intervention_seat"])]
    scale = max(float(np.nanmax(np.abs(swaps[["effect_low", "effect_high"]].to_numpy()))), 1e-9) if len(swaps) else 1.0
    for (exp, game, label), df in swaps.groupby([*GAME, "intervention"], sort=False):
        lines.append(f"game {exp}/{game}: {label} (effect on the seat's discounted utility, 95% interval)")
        for _, r in df.sort_values("point_order").iterrows():
            bar = "#" * int(round(abs(r["effect"]) / scale * width))
            sign = "+" if r["effect"] >= 0 else "-"
            mark = "changes" if r["changes"] else "no change"
            lines.append(f"  round {r['point_round']:>2} {r['point_phase']:<10} {r['effect']:+7.2f} "
                         f"[{r['effect_low']:+7.2f}, {r['effect_high']:+7.2f}] {mark:<9} {sign}{bar}")
    return "\n".join(lines)


def report_tables(store: str | Path, n_boot: int = 2000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The branch tables of the analysis report (none when the store has no branches)."""
    rows = branch_rows(iter_branches(store))
    if rows.empty:
        return {}
    per_game = effects(rows, n_boot, seed)
    per_game.insert(2, "parent_record", [f"{e}/games/{i:05d}.json" for e, i in zip(per_game["experiment_id"], per_game["game_index"])])
    return {"branch_effects": per_game, "branch_effects_pooled": pooled_effects(per_game, n_boot, seed),
            "turning_points": turning_points(per_game)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.branching", description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--csv", type=Path, help="also write effects.csv, pooled_effects.csv, turning_points.csv here")
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args(argv)
    rows = branch_rows(iter_branches(args.store))
    if rows.empty:
        parser.error(f"no branches below {args.store}; play some with python -m bargain.branch")
    per_game = effects(rows, args.n_boot)
    tables = {"effects": per_game, "pooled_effects": pooled_effects(per_game, args.n_boot),
              "turning_points": turning_points(per_game)}
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_rows", 500):
        for name, table in tables.items():
            print(f"== {name}\n{table.to_string(index=False) if len(table) else '(none)'}\n")
    print(turning_view(per_game))
    if args.csv:
        args.csv.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            table.to_csv(args.csv / f"{name}.csv", index=False)


if __name__ == "__main__":
    main()
