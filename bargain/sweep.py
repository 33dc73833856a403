"""Everything at the level of a whole multirun sweep, on the machine that starts or submits it.

The Hydra sweeper (``bargain/_hydra/hydra_plugins/bargain_sweeper.py``, selected in
``conf/config.yaml``) calls into this module for every launcher:

1. **Pre-flight**: every cell is composed and validated, and every model's key variable, endpoint
   and server checked here, before anything starts or is submitted. Problems are reported once each
   (one line per missing key, endpoint or config error, with the cells and models it affects) and
   the sweep refuses to start (exit code 2).
2. **Dry run** (``dry_run=true``): cells, games, routes, and estimated tokens and cost per cell with
   the basis of the estimate (:mod:`bargain.estimate`); nothing is started, submitted or written.
3. **Summary**: a failing cell does not stop the others; the sweep ends with one line per cell,
   points at the store and ``python -m bargain.status``, and exits 1 if any cell failed. With the
   submitit launchers a cancelled, timed-out or crashed task becomes such a line too.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bargain.config import ConfigError, lineup_keys, model_config, validate
from bargain.preflight import model_problems, unreachable

log = logging.getLogger(__name__)


class CellFailed(RuntimeError):
    """A cell of a sweep failed; the message is its one-line summary (raised instead of exiting)."""


@dataclass
class Cell:
    """One job of a sweep: its overrides and its composed config (None if it did not compose)."""

    index: int
    overrides: list[str]
    cfg: DictConfig | None = None
    error: str | None = None
    label: str = ""  # the overrides that tell this cell from the others


def compose(config_loader: Any, primary: DictConfig, batches: list[list[list[str]]]) -> list[Cell]:
    """Compose every cell's config the way its job will, and validate it (without LiteLLM)."""
    jobs = [list(o) for batch in batches for o in batch]
    values: dict[str, set[str]] = defaultdict(set)
    for overrides in jobs:
        for override in overrides:
            values[override.split("=", 1)[0]].add(override)
    cells = []
    for index, overrides in enumerate(jobs):
        varying = [o for o in overrides if len(values[o.split("=", 1)[0]]) > 1]
        cell = Cell(index, overrides, label=" ".join(varying or overrides) or "(no overrides)")
        try:
            cell.cfg = config_loader.load_sweep_config(primary, list(overrides))
            validate(cell.cfg)
        except ConfigError as exc:
            cell.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a composition error is one line, not a traceback
            cell.error = " ".join(f"{type(exc).__name__}: {exc}".split())
        cells.append(cell)
    return cells


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The config a cell's job receives (without the ``hydra`` node, which only exists once a job runs)."""
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return OmegaConf.to_container(task, resolve=True, enum_to_str=True)


def _cells_text(indices: list[int], total: int) -> str:
    if len(indices) == total:
        return f"all {total} cells"
    shown = ", ".join(map(str, indices[:8])) + (", ..." if len(indices) > 8 else "")
    return f"{len(indices)} of {total} cells: {shown}"


def preflight(cells: list[Cell], probe_endpoints: bool = True) -> list[str]:
    """One line per problem across all cells: config errors, unset keys, unset or unreachable endpoints.

    ``probe_endpoints=False`` skips what only this machine can answer: whether an endpoint accepts
    connections from here, and whether a server program is installed here.
    """
    found: dict[tuple[str, str], tuple[str, list[int], set[str]]] = {}

    def note(subject: str, message: str, index: int, model: str = "") -> None:
        """Record a problem; the same subject (key variable, endpoint) of several models is one problem."""
        _, indices, models = found.setdefault((subject, "" if model else message), (message, [], set()))
        if index not in indices:
            indices.append(index)
        if model:
            models.add(model)

    endpoints: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for cell in cells:
        if cell.error:
            note(cell.error, cell.error, cell.index)
            continue
        for key in dict.fromkeys(lineup_keys(cell.cfg)):
            model = OmegaConf.to_container(model_config(cell.cfg, key), resolve=True)
            for problem in model_problems(key, model):
                if probe_endpoints or not problem.this_machine:
                    note(problem.subject, problem.message, cell.index, model["name"])
            if model.get("api_base") and not model.get("server"):
                endpoints[model["api_base"]].append((cell.index, model["name"]))
    if probe_endpoints:
        for api_base, users in endpoints.items():
            reason = unreachable(api_base)
            if reason:
                names = ", ".join(sorted({name for _, name in users}))
                for index, _ in users:
                    note(f"{api_base} endpoint", f"nothing answers at the api_base of {names} ({reason})", index)
    lines = []
    for (subject, _), (message, indices, models) in found.items():
        if len(models) > 1:  # the same key or endpoint, several models: say so once
            message = f"{message.split(':', 1)[0]}: needed by {', '.join(sorted(models))}"
        lines.append(f"{message} ({_cells_text(sorted(indices), len(cells))})")
    return lines


def refuse(lines: list[str], what: str) -> None:
    """Print the problems, one per line, and stop with exit code 2: nothing was started."""
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    print(f"error: {len(lines)} problem(s) found before the sweep; nothing was {what}", file=sys.stderr)
    raise SystemExit(2)


def _fmt_tokens(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def plan(cells: list[Cell]) -> str:
    """The dry run: per cell its games, what is left to play, estimated tokens and cost; then the routes."""
    from bargain.estimate import estimate_cell  # imports the game engine and LiteLLM's price map: dry runs only
    from bargain.runner import identity
    from bargain.store import COMPLETE, ExperimentStore, experiment_id

    rows, routes, bases = [], {}, set()
    total_games = total_todo = 0
    total_in = total_out = total_cost = 0.0
    unknown_cost = 0
    for cell in cells:
        cfg = job_config(cell.cfg)
        games = cfg["n_games"] * (cfg["env"]["n_agents"] if cfg["counterbalance"] else 1)
        store = ExperimentStore(cfg["store"], experiment_id(identity(cfg)))
        todo = sum(store.status(g) != COMPLETE for g in range(games))
        est = estimate_cell(cfg, todo)
        bases.add(est.basis.split(" (")[0])
        total_games, total_todo = total_games + games, total_todo + todo
        total_in, total_out = total_in + est.prompt_tokens, total_out + est.completion_tokens
        if est.cost_usd is None:
            unknown_cost += 1
        else:
            total_cost += est.cost_usd
        cost = "?" if est.cost_usd is None else f"{est.cost_usd:,.2f}"
        rows.append((str(cell.index), cell.label, str(games), str(todo), _fmt_tokens(est.prompt_tokens),
                     _fmt_tokens(est.completion_tokens), cost, est.basis))
        for key in dict.fromkeys(lineup_keys(cfg)):
            model = model_config(cfg, key)
            routes[model["name"]] = _route(model)
    header = ("cell", "overrides", "games", "to play", "prompt tok", "output tok", "est. USD", "basis")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"dry run: {len(cells)} cells, {total_games} games ({total_todo} to play); nothing was started or written"]
    lines += ["  ".join(v.rjust(w) if i in (0, 2, 3, 4, 5, 6) else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
              for r in [header, *rows]]
    unknown = f" + {unknown_cost} cell(s) with a model of unknown price" if unknown_cost else ""
    lines.append(f"total: {total_todo} games to play, {_fmt_tokens(total_in)} prompt + {_fmt_tokens(total_out)} output "
                 f"tokens, est. ${total_cost:,.2f}{unknown}")
    lines.append("routes:")
    lines += [f"  {name:28} {route}" for name, route in sorted(routes.items())]
    lines.append("basis of the estimates:")
    if "stored" in bases:
        lines.append("  stored: mean tokens per agent and game of complete games in the store played under the same "
                     "protocol (env without competition, preference kind, prompts), the model's own where stored")
    if "prompt sizes" in bases:
        lines.append("  prompt sizes (upper bound): from the prompt templates, every game runs all rounds and every "
                     "reply uses its whole token cap plus the reasoning room, ~2.5 characters a token; the real cost "
                     "is usually far lower (re-run the dry run once some games are stored)")
    lines.append("prices: the model config's price_*_per_mtok, else LiteLLM's bundled price map")
    return "\n".join(lines)


def _route(model: dict[str, Any]) -> str:
    """How a model is reached: its LiteLLM string and key variable, endpoint or server."""
    how = []
    if model.get("server"):
        how.append(f"server started by the job: {' '.join(map(str, model['server']['command'][:2]))}")
    elif model.get("api_base"):
        how.append(f"at {model['api_base']}")
    if model.get("api_key_env"):
        how.append(f"key {model['api_key_env']}")
    if model["litellm_model"].startswith("sim/"):
        how.append("offline, in-process")
    return f"{model['litellm_model']} ({', '.join(how)})" if how else model["litellm_model"]


def summary(cells: list[Cell], returns: list[Any]) -> tuple[list[str], int]:
    """One line per cell from the jobs' returns, where the records are, and how many cells failed."""
    from hydra.core.utils import JobStatus

    lines, failed, stores = [], 0, []
    for cell, ret in zip(cells, returns):
        if ret.status == JobStatus.COMPLETED:
            done = ret.return_value
            lines.append(f"cell {cell.index} {cell.label}: ok, {done['played']} game(s) played, "
                         f"{done['skipped']} already stored (experiment {done['experiment']})")
        else:
            failed += 1
            error = ret._return_value  # a failed JobReturn raises on .return_value
            text = str(error) if isinstance(error, CellFailed) else f"{type(error).__name__}: {error}"
            lines.append(f"cell {cell.index} {cell.label}: FAILED: {' '.join(text.split())}")
        store = str(Path(cell.cfg.store).expanduser().resolve()) if cell.cfg is not None else None
        if store and store not in stores:
            stores.append(store)
    lines.insert(0, f"sweep: {len(cells)} cells, {len(cells) - failed} ok, {failed} failed")
    lines += [f"records: {s} (per cell: python -m bargain.status {s})" for s in stores]
    return lines, failed


def failed_return(overrides: list[str], message: str) -> Any:
    """A JobReturn for a job that never returned one (cancelled, timed out, crashed)."""
    from hydra.core.utils import JobReturn, JobStatus

    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=CellFailed(message))


def launch_submitit(launcher: Any, stock_cls: type, job_overrides: list[list[str]], initial_job_idx: int) -> list[Any]:
    """Submit the cells through submitit and wait for all of them, turning each lost task into a result.

    The jobs run a plain Hydra submitit launcher (``stock_cls``), importable on any node; only
    collecting the results differs from Hydra's own: a task that is cancelled, times out or crashes
    becomes a failed cell instead of an exception that abandons the others.
    """
    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import filter_overrides
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.core.utils import FailedJobError, UncompletedJobError

    cluster = launcher._EXECUTOR
    runner = stock_cls(**launcher.params)
    runner.setup(hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=launcher.config)
    params = dict(launcher.params)
    init = {"folder": params.pop("submitit_folder")}
    if "max_num_timeout" in params:
        init[f"{cluster}_max_num_timeout"] = params.pop("max_num_timeout")
    executor = submitit.AutoExecutor(cluster=cluster, **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"{cluster}_{k}": v for k, v in params.items()})
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs_args = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        jobs_args.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
    jobs = executor.map_array(runner, *zip(*jobs_args))
    returns = []
    for overrides, job in zip(job_overrides, jobs):
        try:
            returns.append(job.results()[0])
        except (UncompletedJobError, FailedJobError) as exc:
            state = job.state
            reason = "crashed" if isinstance(exc, FailedJobError) else "ended without a result"
            returns.append(failed_return(overrides, f"{cluster} job {job.job_id} {reason} (state {state}); "
                                                    f"log {job.paths.stderr}"))
    return returns
