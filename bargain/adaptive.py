"""Adaptive sweeps: spend a budget on the cells that shrink the capability slopes' intervals most per dollar.

Usage (any grid a multirun takes; ``hydra/sweeper=adaptive`` chooses which cells to play, and how many):
    python -m bargain.run -m hydra/sweeper=adaptive model=sim-weak,sim-base,sim-strong \\
        env.competition=0.25,0.9 model@opponent=sim-base hydra.sweeper.budget_usd=5 hydra.sweeper.threshold=0.1

The targets are the slopes of the focal model's outcome (``share`` or ``exploitation_index``) against
its capability (a metadata key, default ``skill``), one per combination of the grid's other settings
(e.g. one per competition level), fitted by :func:`analysis.fits.fit_law` with its cluster-robust
(CV3) 95% interval. The sweep plays a pilot of ``pilot_draws`` preference draws in every cell, then
batches: for every cell it predicts how much more draws would narrow its target's interval, using
the heteroskedastic variance of a least-squares slope, Var = sum n_k (x_k - x)^2 s_k^2 / Sxx^2, with
each cell's outcome variance s_k^2 and cost per game from the stored games (from the models' prices
and prompt sizes before a cell has any, :func:`bargain.estimate.estimate_cell`), and picks the
``batch_cells`` cells with the largest reduction per expected dollar that fit the budget left. It
stops when every target's interval is at most ``threshold`` wide, when the next draws would not fit
the budget, or after ``max_batches``. The report compares the intervals reached with what the same
spend on the full grid (equal draws in every cell) would give, predicted by the same variance formula.

Batches run through the configured launcher (the basic one in-process, ``hydra/launcher=local`` or
``slurm``): each chosen cell is a job with a raised ``n_games``, which is not part of the experiment
identity, so the runner plays only the new draws. Spend counts every stored game of the grid's
cells, so re-running the command resumes the sweep with the same budget.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bargain.config import ConfigError
from bargain.store import atomic_write_json
from bargain.sweep import Cell, job_config

log = logging.getLogger(__name__)

OUTCOMES = ("share", "exploitation_index")


@dataclass
class Settings:
    """The adaptive sweeper's knobs (``hydra.sweeper.<name>``)."""

    budget_usd: float | None = None
    threshold: float | None = None  # stop when every slope interval is at most this wide (null: spend the budget)
    outcome: str = "share"
    capability: str = "skill"
    pilot_draws: int = 3
    draws_per_pick: int = 2
    batch_cells: int = 2
    max_batches: int = 50
    n_boot: int = 200

    def check(self) -> None:
        """ConfigError naming the key and its allowed values."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(f"hydra.sweeper.{message}")

        need(self.budget_usd is not None and self.budget_usd > 0, f"budget_usd={self.budget_usd} must be > 0 (USD)")
        need(self.threshold is None or self.threshold > 0, f"threshold={self.threshold} must be > 0 or null")
        need(self.outcome in OUTCOMES, f"outcome={self.outcome} must be one of {', '.join(OUTCOMES)}")
        for name in ("pilot_draws", "draws_per_pick", "batch_cells", "max_batches"):
            need(getattr(self, name) >= (2 if name == "pilot_draws" else 1),
                 f"{name}={getattr(self, name)} must be >= {2 if name == 'pilot_draws' else 1}")


@dataclass
class CellState:
    """What the sweep knows about one cell of the grid."""

    cell: Cell
    cfg: dict[str, Any]
    experiment: str
    target: str  # the grid settings other than the focal model: one slope per target
    capability: float
    seats: int  # games per preference draw
    estimated_cost: float  # USD per game from prices and prompt sizes, before any game is stored
    draws: int = 0  # preference draws asked for so far (the job's n_games)
    played: int = 0  # game records stored (any status)
    stored_draws: int = 0  # preference draws with a record
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the outcome of complete games (no deal: no share)
    clusters: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spent: float = 0.0

    @property
    def games(self) -> int:
        """Observations of the outcome: what the slope's interval is made of."""
        return int(self.y.size)

    @property
    def cost_per_game(self) -> float:
        return self.spent / self.played if self.played else self.estimated_cost

    @property
    def variance(self) -> float:
        return float(np.var(self.y, ddof=1)) if self.games >= 2 else math.nan

    @property
    def usable(self) -> float:
        """Fraction of games that give an outcome (a share needs a deal)."""
        return self.games / self.played if self.played else 1.0


def slope_variance(x: np.ndarray, n: np.ndarray, s2: np.ndarray) -> float:
    """Variance of a least-squares slope with n_k observations of variance s2_k at x_k (inf if x does not vary)."""
    total = n.sum()
    if total == 0:
        return math.inf
    xbar = (n * x).sum() / total
    sxx = (n * (x - xbar) ** 2).sum()
    return float((n * (x - xbar) ** 2 * s2).sum() / sxx**2) if sxx > 0 else math.inf


class AdaptiveSweep:
    """The state of an adaptive sweep over the cells of a grid; :meth:`next_batch` decides what to play."""

    def __init__(self, cells: list[Cell], settings: Settings) -> None:
        from analysis.load import capability
        from bargain.estimate import estimate_cell
        from bargain.runner import identity
        from bargain.store import experiment_id

        self.settings = settings
        self.states: list[CellState] = []
        self.history: list[dict[str, Any]] = []
        for cell in cells:
            cfg = job_config(cell.cfg)
            meta = pd.DataFrame([cfg["model"]["metadata"]])
            x = float(capability(meta, settings.capability).iloc[0]) if settings.capability in meta else math.nan
            if not math.isfinite(x):
                raise ConfigError(f"cell {cell.label}: model={cfg['model']['name']} has no metadata.{settings.capability} "
                                  f"(hydra.sweeper.capability={settings.capability}); choose a capability every model has")
            if estimate_cell(cfg, 1).cost_usd is None:
                raise ConfigError(f"cell {cell.label}: a model has no known price, so hydra.sweeper.budget_usd cannot be "
                                  "kept; set its price_input_per_mtok and price_output_per_mtok (USD per million tokens)")
            target = " ".join(o for o in cell.label.split() if not o.startswith("model=")) or "(all)"
            seats = cfg["env"]["n_agents"] if cfg["counterbalance"] else 1
            self.states.append(CellState(cell, cfg, experiment_id(identity(cfg)), target, x, seats, math.nan))
        self.store = Path(job_config(cells[0].cfg)["store"]).expanduser().resolve()
        self.ledger = "adaptive-" + experiment_id(sorted(s.experiment for s in self.states))
        self.pilot_done = False
        self.refresh()
        for state in self.states:
            state.draws = state.stored_draws

    @property
    def spent(self) -> float:
        return sum(s.spent for s in self.states)

    @property
    def games(self) -> int:
        return sum(s.played for s in self.states)

    def refresh(self) -> None:
        """Reload every cell's stored games (outcomes, draws, spend) and re-estimate the cost of unplayed cells."""
        from analysis.load import frames, iter_records
        from bargain.estimate import estimate_cell, stored_usage

        stored_usage.cache_clear()  # the store has new games

        dirs = [self.store / s.experiment for s in self.states if (self.store / s.experiment / "experiment.json").exists()]
        games, agents = frames(chain.from_iterable(iter_records(d) for d in dirs))
        for state in self.states:
            if games.empty:
                continue
            mine = games[games["experiment_id"] == state.experiment]
            state.spent = float(mine["cost_usd"].fillna(0.0).sum())
            state.played = len(mine)
            state.stored_draws = int(mine["draw_index"].max()) + 1 if len(mine) else 0
            focal = agents[(agents["experiment_id"] == state.experiment) & agents["is_focal"]
                           & (agents["status"] == "complete")].dropna(subset=[self.settings.outcome])
            state.y = focal[self.settings.outcome].to_numpy(dtype=float)
            state.clusters = focal["draw_id"].to_numpy()
        for state in self.states:
            if not state.played:  # from the games of other cells with the same protocol, else from prompt sizes
                state.estimated_cost = estimate_cell(state.cfg, 1).cost_usd or 0.0

    def widths(self) -> dict[str, float]:
        """Each target's slope interval width (CV3, 95%) from the stored games; inf where it cannot be fitted."""
        from analysis.fits import OUTCOMES as FAMILIES, fit_law

        out = {}
        for target, states in self._by_target().items():
            x = np.concatenate([np.full(s.games, s.capability) for s in states])
            y = np.concatenate([s.y for s in states])
            clusters = np.concatenate([s.clusters for s in states])
            row = fit_law(x, y, clusters, FAMILIES[self.settings.outcome], n_boot=self.settings.n_boot).row if y.size else {}
            width = row.get("slope_ci_high", math.nan) - row.get("slope_ci_low", math.nan)
            out[target] = float(width) if math.isfinite(width) else math.inf
        return out

    def _by_target(self) -> dict[str, list[CellState]]:
        groups: dict[str, list[CellState]] = {}
        for state in self.states:
            groups.setdefault(state.target, []).append(state)
        return groups

    def _variances(self, states: list[CellState]) -> np.ndarray:
        known = [s.variance for s in self.states if math.isfinite(s.variance) and s.variance > 0]
        fallback = float(np.mean(known)) if known else 1.0
        return np.array([s.variance if math.isfinite(s.variance) and s.variance > 0 else fallback for s in states])

    def predicted(self, target: str, width: float, extra: dict[int, int]) -> float:
        """The target's interval width with ``extra`` more games in some of its cells (by index in self.states)."""
        states = self._by_target()[target]
        x = np.array([s.capability for s in states])
        s2 = self._variances(states)
        now = np.array([s.games for s in states], dtype=float)
        more = now + np.array([extra.get(self.states.index(s), 0) * s.usable for s in states])
        v_now, v_more = slope_variance(x, now, s2), slope_variance(x, more, s2)
        if not math.isfinite(width) or not math.isfinite(v_now):
            return math.inf if not math.isfinite(v_more) else 0.0
        return width * math.sqrt(v_more / v_now)

    def next_batch(self) -> tuple[list[tuple[CellState, int]], str | None]:
        """The cells to play next with their new n_games, or ([], why the sweep stops)."""
        s = self.settings
        widths = self.widths()
        if not self.games and not self.history:
            # A probe: one draw of the cheapest cell measures what games cost, since estimates from prompt
            # sizes alone are upper bounds (every reply at its token cap). The jobs' ledger caps it.
            cheapest = min(self.states, key=lambda st: st.estimated_cost)
            return self._log_batch([(cheapest, 1)], widths), None
        pilot = [(st, s.pilot_draws) for st in self.states if st.draws < s.pilot_draws]
        if pilot and not self.pilot_done:  # every cell gets pilot_draws draws, so every slope has an interval
            self.pilot_done = True
            cost = sum((n - st.draws) * st.seats * st.cost_per_game for st, n in pilot)
            if cost > s.budget_usd - self.spent:
                return [], f"the pilot ({s.pilot_draws} draws per cell, ~${cost:.4g}) does not fit the budget"
            return self._log_batch(pilot, widths), None
        if s.threshold is not None and all(w <= s.threshold for w in widths.values()):
            return [], f"target reached: every slope interval is at most {s.threshold:g} wide"
        if len(self.history) >= s.max_batches:
            return [], f"hydra.sweeper.max_batches={s.max_batches} reached"
        open_targets = {t for t, w in widths.items() if s.threshold is None or w > s.threshold}
        left = s.budget_usd - self.spent
        extra: dict[int, int] = {}
        picks: list[tuple[CellState, int]] = []
        for _ in range(s.batch_cells):
            best, best_score = None, -math.inf
            for k, st in enumerate(self.states):
                add = s.draws_per_pick * st.seats
                cost = add * st.cost_per_game
                if k in extra or st.target not in open_targets or cost > left:
                    continue
                gain = widths[st.target] - self.predicted(st.target, widths[st.target], {**extra, k: add})
                score = gain / cost if cost > 0 else (math.inf if gain > 0 else 0.0)
                if score > best_score:
                    best, best_score = k, score
            if best is None:
                break
            st = self.states[best]
            extra[best] = s.draws_per_pick * st.seats
            left -= extra[best] * st.cost_per_game
            picks.append((st, st.draws + s.draws_per_pick))
        if not picks:
            return [], f"budget spent: ${self.spent:.4g} of ${s.budget_usd:g}; no further draws fit"
        return self._log_batch(picks, widths), None

    def _log_batch(self, picks: list[tuple[CellState, int]], widths: dict[str, float]) -> list[tuple[CellState, int]]:
        self.history.append({"batch": len(self.history), "games_before": self.games, "spent_before_usd": self.spent,
                             "widths_before": widths, "cells": {st.cell.label: n for st, n in picks}})
        log.info("adaptive batch %d: %s", len(self.history) - 1, ", ".join(f"{st.cell.label} -> {n} draws" for st, n in picks))
        for st, n in picks:
            st.draws = n
        return picks

    def full_grid(self) -> tuple[int, dict[str, float]]:
        """Draws per cell the spend so far buys on the full grid, and the intervals predicted for it."""
        per_draw = sum(st.seats * (st.cost_per_game or 0.0) for st in self.states)
        if per_draw > 0:
            draws = int(self.spent // per_draw)
        else:  # free models: the same number of games
            draws = self.games // sum(st.seats for st in self.states)
        widths = self.widths()
        out = {}
        for target, states in self._by_target().items():
            extra = {self.states.index(st): draws * st.seats - st.played for st in states}
            out[target] = self.predicted(target, widths[target], extra)
        return draws, out

    def report(self, why: str, path: Path | None = None) -> list[str]:
        """The sweep's result, one line per target, and (if ``path``) the same as JSON with the batch history."""
        widths = self.widths()
        draws, grid = self.full_grid()
        lines = [f"adaptive sweep: {why}",
                 f"{self.games} games in {len(self.history)} batch(es), ${self.spent:.4g} of ${self.settings.budget_usd:g}; "
                 f"the full grid with the same spend: {draws} draw(s) in each of {len(self.states)} cells"]
        rows = []
        for target, states in self._by_target().items():
            games = sum(s.played for s in states)
            lines.append(f"  {target}: slope interval width {widths[target]:.4g} from {games} games "
                         f"({', '.join(f'{s.cell.cfg.model.name} {s.played}' for s in states)}); "
                         f"full grid, same spend: {grid[target]:.4g} (predicted)")
            rows.append({"target": target, "width": widths[target], "games": games, "full_grid_width": grid[target],
                         "cells": {s.cell.label: s.played for s in states}})
        if path is not None:
            atomic_write_json(path, {"stopped": why, "settings": self.settings.__dict__, "games": self.games,
                                     "spent_usd": self.spent, "full_grid_draws": draws, "targets": rows,
                                     "batches": self.history})
            lines.append(f"report: {path}")
        return lines
