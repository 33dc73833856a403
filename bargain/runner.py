"""Run an experiment: play every game of one lineup in one environment, resuming from the store.

A game that fails is recorded with every round played up to the failure and an error classed
``retryable`` (a transient failure, a budget stop, an interruption: the next run plays it again) or
deterministic (a context overflow, an invalid request, a bug: replaying the same config would fail
the same way, so the next run keeps it unless the models' config or the code changed, or
``run.retry_deterministic=true``). SIGINT and SIGTERM stop a job cleanly: calls in flight are
cancelled, the games they cut short are recorded ``interrupted``, and the job returns its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import logging
import platform
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bargain.agents.access import Access
from bargain.agents.llm import ContextLimitExceeded, LLMAgent
from bargain.backend import Backend, BudgetExceeded, Failure, FatalBackendError, ModelCallError
from bargain.backend.progress import progress_bar
from bargain import perturb
from bargain.config import PHASES, lineup_keys, model_config, model_keys, validate
from bargain.games import game_type
from bargain.prompts import templates_hash
from bargain.signals import SIGNALS, Stopped, stop_on_signals
from bargain.store import (
    COMPLETE,
    IDENTITY_VERSION,
    SCHEMA_VERSION,
    ExperimentStore,
    ForeignRecord,
    StoreError,
    ensure_writable,
    experiment_id,
    redact_url,
)
from bargain.workers import play_in_workers, workers

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted"


@dataclass
class Summary:
    """What a job did: the experiment, where its records are, and the records it wrote."""

    experiment_id: str
    directory: Path
    total_games: int
    skipped: int
    records: list[dict[str, Any]]
    unstarted: int = 0  # games not begun because a budget was reached or the job was stopped
    kept: int = 0  # games whose deterministic failure was kept rather than replayed unchanged
    stopped_by: str | None = None  # the signal that stopped the job
    budget: str | None = None  # why a budget stopped the job

    @property
    def errors(self) -> int:
        return sum(r["status"] != COMPLETE for r in self.records)

    def failed(self, retryable: bool) -> list[dict[str, Any]]:
        """Records of games that ended in an error of the given class."""
        return [r for r in self.records if r["status"] != COMPLETE and r["error"].get("retryable", True) is retryable]


def seat_keys(cfg: dict[str, Any], focal_seat: int) -> list[str]:
    """Config key of the model in each seat, with the focal model at ``focal_seat``."""
    focal, *others = lineup_keys(cfg)
    return [*others[:focal_seat], focal, *others[focal_seat:]]


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The fields that change a game's outcome; everything else (retries, paths, n_games ...) is left out.

    Settings added after the first release (reasoning, structured output, per-phase token caps, context overflow) enter
    only when they differ from their defaults, so experiments stored before they existed keep their ids;
    so does the vote threshold's new exact default (2/3) under the rules it does not affect.
    """
    lineup = []
    for key in lineup_keys(cfg):
        model = model_config(cfg, key)
        params = {k: v for k, v in model["params"].items() if k not in model["unsupported_params"]}
        entry = {"litellm_model": model["litellm_model"], "params": params}
        if any(v is not None for v in model["reasoning"].values()):
            entry["reasoning"] = model["reasoning"]
        if model.get("structured_output"):
            entry["structured_output"] = model["structured_output"]
        lineup.append(entry)
    env = dict(cfg["env"])
    if all(v is None for v in env["max_tokens"].values()):
        del env["max_tokens"]
    if env["context_overflow"] == "end":
        del env["context_overflow"]
    if env["vote_rule"] != "supermajority" and str(env["vote_threshold"]) == "2/3":
        env["vote_threshold"] = 0.6667  # the default before thresholds were exact: it plays no part here
    for key in ("agent_names", "personas"):
        if env.get(key) is None:
            env.pop(key, None)
    game = game_type(cfg)
    return {
        "schema_version": IDENTITY_VERSION,
        "seed": cfg["seed"],
        "counterbalance": cfg["counterbalance"],
        **game.identity({**cfg, "env": env}),
        "lineup": lineup,
        "prompts": templates_hash(game.prompts),
        **axes_identity(cfg),
    }


def axes_identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The prompt perturbation and access scaling, only when in use (older experiments keep their ids)."""
    axes: dict[str, Any] = {}
    if perturb.active(cfg.get("perturb")):
        axes["perturb"] = {**cfg["perturb"], "prompts": perturb.prompts_hash(cfg["perturb"], game_type(cfg).prompts)}
    access = cfg.get("access") or {}
    if access.get("k", 1) > 1:
        chosen = access["selector"]
        selector = chosen and {k: chosen[k] for k in ("litellm_model", "params", "reasoning", "structured_output")
                               if k != "structured_output" or chosen.get(k)}  # set only: older ids kept
        axes["access"] = {**access, "selector": selector, "prompts": templates_hash("access")}
    return axes


def _redact(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as recorded: URL credentials removed (keys are never in the config at all)."""
    return OmegaConf.to_container(OmegaConf.create(redact_url(OmegaConf.to_yaml(OmegaConf.create(cfg)))))


def retry_key(cfg: dict[str, Any], versions: dict[str, Any]) -> str:
    """What a deterministic failure depends on beyond the experiment identity: the models' whole
    configs (endpoint, server, context size ...) and the code. A change means the game may now succeed."""
    models = {key: model_config(cfg, key) for key in sorted(set(lineup_keys(cfg)))}
    return experiment_id({"models": _redact(models), "code": [versions["bargain"], versions["git"]]})  # a short hash


def _error(exc: BaseException, kind: str, retryable: bool, key: str) -> dict[str, Any]:
    entry = {"type": type(exc).__name__, "message": str(exc), "kind": kind, "retryable": retryable}
    if not retryable:
        entry["retry_key"] = key
    return entry


def _versions() -> dict[str, str | None]:
    try:
        git = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {
        "bargain": importlib.metadata.version("bargain"),
        "python": platform.python_version(),
        "litellm": importlib.metadata.version("litellm"),
        "numpy": np.__version__,
        "git": git,
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Experiment:
    """One job: a lineup, an environment, n_games preference draws, and the store they go to."""

    def __init__(self, cfg: dict[str, Any], backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend
        self.env = cfg["env"]
        self.identity = identity(cfg)
        self.id = experiment_id(self.identity)
        self.store = ExperimentStore(cfg["store"], self.id)
        self.recorded_config = _redact(cfg)
        self.versions = _versions()
        self.retry_key = retry_key(cfg, self.versions)
        self.stopped_by: str | None = None
        self.fatal: BaseException | None = None
        self._tasks: list[asyncio.Task] = []
        n = self.env["n_agents"]
        self.seats_per_draw = n if cfg["counterbalance"] else 1
        self.game = game_type(cfg)(cfg)

    @property
    def total_games(self) -> int:
        return self.cfg["n_games"] * self.seats_per_draw

    def _agent_entry(self, seat: int, key: str) -> dict[str, Any]:
        model = model_config(self.cfg, key)
        return {
            "seat": seat, "name": self.game.agents[seat], "role": "focal" if key == "model" else "opponent",
            "model": model["name"], "litellm_model": model["litellm_model"],
            "params": model["params"], "reasoning": model["reasoning"], "metadata": model["metadata"],
            **({"access": {"k": access.k, "phases": list(access.phases), "selector": model_config(self.cfg, access.selector)["name"]}}
               if (access := self._access(key)) else {}),
        }

    def _access(self, key: str) -> Access | None:
        """The drafting of the seat played by the model under ``key`` (access scaling), or None."""
        access = self.cfg.get("access") or {}
        drafting = {"focal": key == "model", "opponents": key != "model", "all": True}[access.get("seats", "focal")]
        if access.get("k", 1) < 2 or not drafting:
            return None
        return Access(access["k"], tuple(access["phases"]), "access.selector" if access["selector"] else key)

    def make_agents(self, prefs: Any, keys: list[str], index: int, calls: list[dict[str, Any]]) -> list[LLMAgent]:
        """One agent per seat, playing the model under ``keys[seat]`` (counterfactual branches wrap them)."""
        return [
            LLMAgent(
                seat,
                key,
                self.backend,
                self.game.system_prompt(prefs, seat),
                memory=self.env["memory"],
                max_reasks=self.env["max_reasks"],
                call_key={"experiment": self.id, "game": index},
                calls=calls,
                reply_caps=self.env["max_tokens"],
                context_overflow=self.env["context_overflow"],
                access=self._access(key),
            )
            for seat, key in enumerate(keys)
        ]

    async def play_game(self, index: int) -> dict[str, Any]:
        """Play one game and build its record; a failing game is recorded with its error, not dropped."""
        draw, focal_seat = divmod(index, self.seats_per_draw)
        pref_seq = np.random.SeedSequence(self.cfg["seed"], spawn_key=(draw,))
        play_seq = np.random.SeedSequence(self.cfg["seed"], spawn_key=(draw, focal_seat))
        prefs = self.game.draw(np.random.default_rng(pref_seq))
        keys = seat_keys(self.cfg, focal_seat)
        calls: list[dict[str, Any]] = []
        agents = self.make_agents(prefs, keys, index, calls)
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "experiment_id": self.id,
            "game_index": index,
            "draw_index": draw,
            "focal_seat": focal_seat,
            "status": COMPLETE,
            "error": None,
            "started_at": _now(),
            "seeds": {
                "root": self.cfg["seed"],
                "preferences": [self.cfg["seed"], draw],  # SeedSequence(entropy, spawn_key=...)
                "play": [self.cfg["seed"], draw, focal_seat],
            },
            "config": self.recorded_config,
            "game": self.game.record_game(prefs),
            "agents": [self._agent_entry(seat, key) for seat, key in enumerate(keys)],
            "preferences": self.game.record_preferences(prefs),
            "rounds": [],
            "outcome": None,
        }
        try:
            # the rounds fill in as they are played, so a failing game keeps every round up to the failure
            result = await self.game.play(prefs, agents, np.random.default_rng(play_seq), record["rounds"])
            record["outcome"] = result["outcome"]
        except asyncio.CancelledError:  # a signal or a job-level failure in another game stopped the job
            record["status"] = INTERRUPTED
            reason = self.fatal or f"the job was stopped by {self.stopped_by or 'a cancellation'}"
            record["error"] = {"type": "Interrupted", "message": str(reason), "kind": INTERRUPTED, "retryable": True}
        except (FatalBackendError, StoreError) as exc:
            record["status"] = INTERRUPTED
            record["error"] = _error(exc, "fatal", True, self.retry_key)
            self._stop(exc)
        except BudgetExceeded as exc:
            record["status"] = BudgetExceeded.status
            record["error"] = _error(exc, "budget", True, self.retry_key)
        except ModelCallError as exc:
            record["status"] = "error"
            record["error"] = _error(exc, exc.failure.value, exc.failure.retryable, self.retry_key)
        except ContextLimitExceeded as exc:  # the next prompt would not fit: the same config would end the same way
            record["status"] = ContextLimitExceeded.status
            record["error"] = _error(exc, Failure.CONTEXT.value, False, self.retry_key)
        except Exception as exc:  # noqa: BLE001 - any failure of one game is recorded, never dropped
            log.exception("game %d of experiment %s failed: a bug", index, self.id)
            record["status"] = "error"
            record["error"] = _error(exc, "bug", False, self.retry_key)
        if record["status"] != COMPLETE:
            log.warning("game %d of experiment %s: %s: %s", index, self.id, record["status"], record["error"]["message"])
        record["finished_at"] = _now()
        # Concurrent calls finish in any order; sort so a replayed game gives the same record.
        record["calls"] = sorted(calls, key=lambda c: (c["round"], PHASES.index(c["phase"]), c["seat"]))
        record["transcripts"] = [a.transcript for a in agents]
        record["invalid_moves"] = [a.invalid_moves for a in agents]
        record["totals"] = {
            "calls": len(calls),
            "prompt_tokens": sum(c["usage"]["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["usage"]["completion_tokens"] for c in calls),
            "reasoning_tokens": sum(c["usage"].get("reasoning_tokens", 0) for c in calls),
            "cached_tokens": sum(c["usage"]["cached_tokens"] for c in calls),
            "cost_usd": sum(c["cost_usd"] or 0.0 for c in calls),
        }
        record["versions"] = self.versions
        return record

    def _replay(self, index: int) -> str | None:
        """Why a game is not to be played now (``complete``, ``deterministic``, ``foreign``), or None to play it.

        Damaged records are quarantined by the store and played again.
        """
        try:
            record = self.store.read_game(index)
        except ForeignRecord as exc:
            log.warning("game %d of experiment %s: left alone: %s", index, self.id, exc)
            return "foreign"
        if record is None:
            return None
        if record["status"] == COMPLETE:
            return COMPLETE
        error = record["error"] or {}
        if error.get("retryable", True) or self.cfg["run"]["retry_deterministic"] or error.get("retry_key") != self.retry_key:
            return None
        return "deterministic"

    def _stop(self, reason: BaseException | str) -> None:
        """Stop the job: cancel every game (each records itself as interrupted) but the calling one."""
        if isinstance(reason, BaseException):
            self.fatal = self.fatal or reason
        else:
            self.stopped_by = reason
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stopped_by:
            raise Stopped(name)  # a second signal: stop at once (records being written are atomic)
        log.warning("%s: stopping; cancelling the calls in flight and recording the games they cut short as "
                    "interrupted (%s again to stop at once)", name, name)
        self._stop(name)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the job cleanly while games run (only the main thread can handle signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        for sig in previous:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, handler)

    def plan(self) -> tuple[list[int], int]:
        """Record the experiment and this run; the games to play, and how many deterministic failures are kept."""
        self.store.write_experiment(self.identity, self.recorded_config)
        self.store.log_run(self.cfg["n_games"], self.total_games)
        reasons = {g: self._replay(g) for g in range(self.total_games)}
        todo = [g for g, reason in reasons.items() if reason is None]
        kept = sum(reason == "deterministic" for reason in reasons.values())
        log.info("experiment %s: %d of %d games to play", self.id, len(todo), self.total_games)
        if kept:
            log.warning("experiment %s: %d game(s) failed deterministically with this config and are kept, not "
                        "replayed (run.retry_deterministic=true replays them)", self.id, kept)
        return todo, kept

    async def run(self, todo: list[int] | None = None) -> Summary:
        """Play the planned games (``todo``: these games, planned by the parent of a worker process)."""
        kept = 0
        if todo is None:
            todo, kept = self.plan()
        records: list[dict[str, Any]] = []
        humans = any(self.backend.models[k]["litellm_model"].startswith("human/") for k in self.backend.models)
        slots = asyncio.Semaphore(1 if humans else self.cfg["run"]["game_concurrency"])  # a person plays one game at a time
        budget = self.backend.budget
        unstarted = 0

        async with progress_bar(len(todo), self.backend, self.cfg["run"]["progress"] and not humans) as bar:

            async def one(index: int) -> None:
                nonlocal unstarted
                try:
                    async with slots:
                        if self.stopped_by or self.fatal or budget.exceeded:  # games not begun stay unplayed
                            unstarted += 1
                            return
                        with self.store.claim(index) as mine:
                            if mine and self._replay(index) is None:  # else another job has it or finished it
                                await asyncio.sleep(self.cfg["run"]["game_delay_s"])
                                record = await self.play_game(index)
                                self.store.write_game(record)
                                records.append(record)
                except asyncio.CancelledError:  # stopped while waiting for its turn
                    unstarted += 1
                    return
                except StoreError as exc:  # the record cannot be written: no later game could be either
                    self._stop(exc)
                    return
                bar.update(1)

            self._tasks = [asyncio.create_task(one(g)) for g in todo]
            with self._signals():
                await asyncio.gather(*self._tasks)
        if self.fatal:
            raise self.fatal
        records.sort(key=lambda r: r["game_index"])
        log.info(
            "experiment %s: spent $%.4f on %d paid calls (%d provider calls, %d replies from the replay cache)",
            self.id, budget.spent_usd, budget.paid_calls, self.backend.provider_calls, self.backend.cache_hits,
        )
        return Summary(self.id, self.store.dir, self.total_games, self.total_games - len(todo), records,
                       unstarted=unstarted, kept=kept, stopped_by=self.stopped_by, budget=budget.exceeded)


def job_backend(cfg: dict[str, Any], models: dict[str, dict[str, Any]] | None = None) -> Backend:
    """The job's backend (or a worker's, with its share of the ``models``' limits): replay cache, spend ledger."""
    store = Path(cfg["store"]).expanduser()
    run = cfg["run"]
    return Backend(
        models or {key: model_config(cfg, key) for key in model_keys(cfg)},
        run,
        cache_dir=run.get("cache_dir") or store / ".cache",
        ledger=store / ".ledger" / f"{run.get('ledger') or 'spend'}.jsonl",
        experiment=experiment_id(identity(cfg)),
    )


def run_experiment(cfg: DictConfig | dict[str, Any]) -> Summary:
    """Play every game of the experiment that the store does not already hold as complete.

    Self-hosted model servers (``server`` in a model config) are started before the first game and
    stopped afterwards, also when the job fails. The replay cache lives in ``run.cache_dir`` (default
    ``<store>/.cache``) and the spend ledger in ``<store>/.ledger/<run.ledger>.jsonl``.
    """
    if isinstance(cfg, DictConfig):
        validate(cfg)  # also gives every model its true identity (bargain.roster.identify)
        cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    store = Path(cfg["store"]).expanduser()
    run = cfg["run"]
    with stop_on_signals():
        ensure_writable(store, "store")
        backend = job_backend(cfg)
        backend.check_keys()
        with backend.session(store / ".servers"):
            if (processes := workers(run)) > 1:
                return play_in_workers(Experiment(cfg, backend), processes)
            return asyncio.run(Experiment(cfg, backend).run())
