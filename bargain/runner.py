"""Run an experiment: play every game of one lineup in one environment, resuming from the store."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import logging
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bargain.agents.llm import LLMAgent
from bargain.backend import Backend, BudgetExceeded, FatalBackendError
from bargain.backend.progress import progress_bar
from bargain.config import PHASES, lineup_keys, model_config, validate
from bargain.games import game_type
from bargain.prompts import templates_hash
from bargain.store import COMPLETE, SCHEMA_VERSION, ExperimentStore, experiment_id

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What a job did: the experiment, where its records are, and the records it wrote."""

    experiment_id: str
    directory: Path
    total_games: int
    skipped: int
    records: list[dict[str, Any]]

    @property
    def errors(self) -> int:
        return sum(r["status"] != COMPLETE for r in self.records)


def seat_keys(cfg: dict[str, Any], focal_seat: int) -> list[str]:
    """Config key of the model in each seat, with the focal model at ``focal_seat``."""
    focal, *others = lineup_keys(cfg)
    return [*others[:focal_seat], focal, *others[focal_seat:]]


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The fields that change a game's outcome; everything else (retries, paths, n_games ...) is left out.

    Settings added after the first release (reasoning, per-phase token caps, context overflow) enter
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
        lineup.append(entry)
    env = dict(cfg["env"])
    if all(v is None for v in env["max_tokens"].values()):
        del env["max_tokens"]
    if env["context_overflow"] == "end":
        del env["context_overflow"]
    if env["vote_rule"] != "supermajority" and str(env["vote_threshold"]) == "2/3":
        env["vote_threshold"] = 0.6667  # the default before thresholds were exact: it plays no part here
    game = game_type(cfg)
    return {
        "schema_version": SCHEMA_VERSION,
        "seed": cfg["seed"],
        "counterbalance": cfg["counterbalance"],
        **game.identity({**cfg, "env": env}),
        "lineup": lineup,
        "prompts": templates_hash(game.prompts),
    }


def _redact(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as recorded: URL credentials removed (keys are never in the config at all)."""
    text = OmegaConf.to_yaml(OmegaConf.create(cfg))
    return OmegaConf.to_container(OmegaConf.create(re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)))


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
        n = self.env["n_agents"]
        self.seats_per_draw = n if cfg["counterbalance"] else 1
        self.game = game_type(cfg)(cfg, [f"Agent_{s + 1}" for s in range(n)])

    @property
    def total_games(self) -> int:
        return self.cfg["n_games"] * self.seats_per_draw

    def _agent_entry(self, seat: int, key: str) -> dict[str, Any]:
        model = model_config(self.cfg, key)
        return {
            "seat": seat, "name": self.game.agents[seat], "role": "focal" if key == "model" else "opponent",
            "model": model["name"], "litellm_model": model["litellm_model"],
            "params": model["params"], "reasoning": model["reasoning"], "metadata": model["metadata"],
        }

    async def play_game(self, index: int) -> dict[str, Any]:
        """Play one game and build its record; a failing game is recorded with its error, not dropped."""
        draw, focal_seat = divmod(index, self.seats_per_draw)
        pref_seq = np.random.SeedSequence(self.cfg["seed"], spawn_key=(draw,))
        play_seq = np.random.SeedSequence(self.cfg["seed"], spawn_key=(draw, focal_seat))
        prefs = self.game.draw(np.random.default_rng(pref_seq))
        keys = seat_keys(self.cfg, focal_seat)
        calls: list[dict[str, Any]] = []
        agents = [
            LLMAgent(
                seat,
                key,
                self.backend,
                self.game.table.system_prompt(prefs, seat),
                memory=self.env["memory"],
                max_reasks=self.env["max_reasks"],
                call_key={"experiment": self.id, "game": index},
                calls=calls,
                reply_caps=self.env["max_tokens"],
                context_overflow=self.env["context_overflow"],
            )
            for seat, key in enumerate(keys)
        ]
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
            result = await self.game.play(prefs, agents, np.random.default_rng(play_seq))
            record.update(result)
        except FatalBackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of one game is recorded, never dropped
            log.warning("game %d of experiment %s failed: %s: %s", index, self.id, type(exc).__name__, exc)
            record["status"] = getattr(exc, "status", "error")
            record["error"] = {"type": type(exc).__name__, "message": str(exc)}
            record["rounds"] = getattr(exc, "rounds", record["rounds"])
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

    async def run(self) -> Summary:
        self.store.write_experiment(self.identity, self.recorded_config)
        todo = [g for g in range(self.total_games) if self.store.status(g) != COMPLETE]
        log.info("experiment %s: %d of %d games to play", self.id, len(todo), self.total_games)
        records: list[dict[str, Any]] = []
        slots = asyncio.Semaphore(self.cfg["run"]["game_concurrency"])
        budget = self.backend.budget
        unstarted = 0

        async with progress_bar(len(todo), self.backend, self.cfg["run"]["progress"]) as bar:

            async def one(index: int) -> None:
                nonlocal unstarted
                async with slots:
                    if budget.exceeded:  # stop cleanly: games not begun stay unplayed for a later run
                        unstarted += 1
                        return
                    with self.store.claim(index) as mine:
                        if mine and self.store.status(index) != COMPLETE:  # else another job has it or finished it
                            await asyncio.sleep(self.cfg["run"]["game_delay_s"])
                            record = await self.play_game(index)
                            self.store.write_game(record)
                            records.append(record)
                    bar.update(1)

            await asyncio.gather(*(one(g) for g in todo))
        records.sort(key=lambda r: r["game_index"])
        log.info(
            "experiment %s: spent $%.4f on %d paid calls (%d provider calls, %d replies from the replay cache)",
            self.id, budget.spent_usd, budget.paid_calls, self.backend.provider_calls, self.backend.cache_hits,
        )
        if budget.exceeded:
            log.warning(
                "budget stop: %s; %d game(s) stopped mid-way (status budget_exceeded), %d not started. "
                "Raise the budget and re-run the same command to finish them (replies already paid for come from the cache)",
                budget.exceeded, sum(r["status"] == BudgetExceeded.status for r in records), unstarted,
            )
        return Summary(self.id, self.store.dir, self.total_games, self.total_games - len(todo), records)


def run_experiment(cfg: DictConfig | dict[str, Any]) -> Summary:
    """Play every game of the experiment that the store does not already hold as complete.

    Self-hosted model servers (``server`` in a model config) are started before the first game and
    stopped afterwards, also when the job fails. The replay cache lives in ``run.cache_dir`` (default
    ``<store>/.cache``) and the shared spend ledger in ``<store>/.ledger/<run.ledger>.json``.
    """
    if isinstance(cfg, DictConfig):
        validate(cfg)  # also gives every model its true identity (bargain.roster.identify)
        cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    store = Path(cfg["store"]).expanduser()
    run = cfg["run"]
    backend = Backend(
        {key: model_config(cfg, key) for key in set(lineup_keys(cfg))},
        run,
        cache_dir=run.get("cache_dir") or store / ".cache",
        ledger=store / ".ledger" / f"{run.get('ledger') or 'spend'}.json",
    )
    backend.check_keys()
    with backend.serving(store / ".servers"):
        return asyncio.run(Experiment(cfg, backend).run())
