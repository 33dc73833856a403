"""bargain's Hydra sweeper and submitit launchers (the work is in :mod:`bargain.sweep`).

Hydra instantiates sweepers and launchers only from the ``hydra_plugins`` namespace package;
``bargain.run`` adds this folder to it, so the plugins ship inside the ``bargain`` package.
``conf/config.yaml`` selects the sweeper, ``conf/hydra/launcher/{local,slurm}.yaml`` the launchers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from omegaconf import OmegaConf

from bargain import adaptive, sweep
from bargain.config import ConfigError


class BargainSweeper(BasicSweeper):
    """The basic sweeper's grid, checked before anything starts, and summarised when it ends.

    Unlike Hydra's basic sweeper, a failed cell does not stop the sweep: every cell runs, each gets a
    line in the summary, and the exit code is 1 if any failed (2 if the pre-flight check refused).
    """

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 check_endpoints: bool = True) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.check_endpoints = check_endpoints

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides([*self._parse_config(), *arguments]),
                                              self.max_batch_size)
        cells = sweep.compose(self.hydra_context.config_loader, self.config, self.overrides)
        problems = sweep.preflight(cells, self.check_endpoints)
        if problems:
            sweep.refuse(problems, "started or submitted")
        if self.config.dry_run:
            print(sweep.plan(cells))
            return []
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns, first = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            returns.append(self.launcher.launch(batch, initial_job_idx=first))
            first += len(batch)
        lines, failed = sweep.summary(cells, [r for batch in returns for r in batch])
        print("\n".join(lines))
        if failed:
            raise SystemExit(1)
        return returns

    def validate_batch_is_legal(self, batch: Any) -> None:
        """Every cell was composed and checked before the first launch (sweep.compose)."""


class AdaptiveSweeper(BargainSweeper):
    """The grid's cells, played batch by batch where they narrow the capability slopes most per dollar."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 check_endpoints: bool = True, **settings: Any) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params, check_endpoints=check_endpoints)
        self.settings = adaptive.Settings(**settings)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        grid = self.split_arguments(parser.parse_overrides([*self._parse_config(), *arguments]), None)
        cells = sweep.compose(self.hydra_context.config_loader, self.config, grid)
        problems = sweep.preflight(cells, self.check_endpoints)
        try:
            self.settings.check()
            state = None if problems else adaptive.AdaptiveSweep(cells, self.settings)
        except ConfigError as exc:
            problems.append(str(exc))
        if problems:
            sweep.refuse(problems, "started or submitted")
        if self.config.dry_run:
            print(sweep.plan(cells))
            print(f"adaptive: at most ${self.settings.budget_usd:g}; the cells played are chosen batch by batch")
            return []
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        launched, returns, first = [], [], 0
        while True:
            batch, why = state.next_batch()
            if not batch:
                break
            # the shared spend ledger stops every job at the budget, whatever the estimates said
            cap = [f"run.sweep_budget_usd={self.settings.budget_usd}", f"run.ledger={state.ledger}"]
            jobs = [[*st.cell.overrides, f"n_games={n}", *cap] for st, n in batch]
            returns += self.launcher.launch(jobs, initial_job_idx=first)
            launched += [st.cell for st, _ in batch]
            first += len(jobs)
            state.refresh()
            lines, failed = sweep.summary(launched, returns)
            capped = [r for r in returns[-len(jobs):] if "stopped mid-way" in str(r._return_value)]
            if capped and failed == len(capped):  # the ledger kept the budget: a normal end, the games resume later
                why = f"budget spent: the spend ledger stopped {len(capped)} cell(s) at ${self.settings.budget_usd:g}"
                break
            if failed:  # the same cell would fail again: stop and say which
                print("\n".join([*lines, *state.report("a cell failed", sweep_dir / "adaptive.json")]))
                raise SystemExit(1)
        print("\n".join(state.report(why, sweep_dir / "adaptive.json")))
        return returns


class BargainLocalLauncher(submitit_launcher.LocalLauncher):
    """submitit's local launcher; a crashed or killed cell is a failed cell, not the end of the sweep."""

    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        return sweep.launch_submitit(self, submitit_launcher.LocalLauncher, job_overrides, initial_job_idx)


class BargainSlurmLauncher(submitit_launcher.SlurmLauncher):
    """submitit's SLURM launcher; a cancelled, timed-out or crashed array task is a failed cell."""

    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        return sweep.launch_submitit(self, submitit_launcher.SlurmLauncher, job_overrides, initial_job_idx)
