"""Counterfactual branches: replay a stored game exactly up to a chosen point, then change one thing.

Usage:
    python -m bargain.branch <store>/<experiment>/games/00003.json --at round=3,phase=proposal \\
        --swap seat=0 model=sim-strong --seeds 8
    python -m bargain.branch <record> --at all --swap seat=0 model=sim-strong        # every branch point
    python -m bargain.branch <record> --at round=2,phase=vote --perturb seat=1 text="Remember: no deal pays 0."
    python -m bargain.branch <record> --at round=4,phase=vote --replace seat=0 text='{"votes": {"1": "reject"}}'

Every call before the branch point (all calls of earlier rounds, and of earlier phases of its round)
is served from the parent record, after checking that the prompt the agent builds is the recorded
prompt word for word; none reaches a provider (the job says so, counted). From the branch point on
the game is played live: ``--swap`` gives the seat another model, ``--perturb`` adds a text to the
seat's instruction at the branch point (it stays in its conversation), ``--replace`` puts a text in
place of the seat's reply at the branch point (the model is not asked). Each branch is played with
``--seeds`` different seeds (its calls get their own identities, so sampled replies differ and a
re-run replays them from the replay cache), and as many control branches continue unchanged from the
same point, so the effect of the intervention is measured against the game's own randomness.

Branches are stored beside their parent as linked records,
``<store>/<experiment>/branches/<game>/<branch id>.json``, each with a ``branch`` block naming the
parent game, the branch point, the intervention and the seed; re-running plays only missing ones.
Analysis: ``python -m analysis.branching <store>`` (effects per seat with intervals, turning points).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bargain.agents.llm import LLMAgent
from bargain.backend import Backend, Completion
from bargain.config import PHASES, ConfigError, model_config, model_keys
from bargain.runner import Experiment, seat_keys
from bargain.store import COMPLETE, atomic_write_json, canonical_json, load_record

log = logging.getLogger(__name__)

SWAP_KEY = "branch.swap"  # the Backend's config key of a swapped-in model
KINDS = ("swap", "perturb", "replace", "control")


class ReplayDiverged(RuntimeError):
    """A replayed prompt differs from the recorded one: the prefix cannot be replayed exactly."""


@dataclass(frozen=True)
class Point:
    """A branch point: the first call of ``phase`` in ``round``; everything before it is replayed."""

    round: int
    phase: str

    @property
    def order(self) -> tuple[int, int]:
        return self.round, PHASES.index(self.phase)

    def label(self) -> str:
        return f"round={self.round},phase={self.phase}"


@dataclass(frozen=True)
class Intervention:
    """What changes at the branch point: ``kind`` in KINDS, the seat, and the model or text."""

    kind: str
    seat: int | None = None
    model: str | None = None  # swap: a conf/model name
    text: str | None = None  # perturb / replace

    def label(self) -> str:
        if self.kind == "control":
            return "control"
        what = self.model if self.kind == "swap" else hashlib.sha256(self.text.encode()).hexdigest()[:8]
        return f"{self.kind}{self.seat}-{what}"


def branch_points(record: dict[str, Any]) -> list[Point]:
    """Every point of a stored game where a branch can start, in game order."""
    seen = {(c["round"], c["phase"]) for c in record["calls"]}
    return sorted((Point(r, p) for r, p in seen), key=lambda p: p.order)


def recorded_messages(record: dict[str, Any], call: dict[str, Any]) -> list[dict[str, str]]:
    """The messages a recorded call sent (its ``sent`` ranges of the seat's append-only transcript)."""
    transcript = record["transcripts"][call["seat"]]
    return [m for start, end in call["sent"] for m in transcript[start:end]]


class SeatReplay:
    """The backend one seat of a branch talks to: the parent's replies before the branch point, live after.

    Wraps the job's Backend (the agent's ``backend`` attribute), so the agent, the game and the
    record are exactly those of a normal game.
    """

    def __init__(self, branch: BranchGame, agent: LLMAgent) -> None:
        self.branch, self.agent, self.seat = branch, agent, agent.seat
        self.backend: Backend = branch.backend
        self.recorded = [c for c in branch.parent["calls"] if c["seat"] == self.seat]
        self.prefix = sum(1 for c in self.recorded if (c["round"], PHASES.index(c["phase"])) < branch.point.order)
        self.done = 0  # calls made so far (replayed or live)

    @property
    def replaying(self) -> bool:
        return self.done < self.prefix

    def _model(self, model: str) -> str:
        intervention = self.branch.intervention
        swapped = intervention.kind == "swap" and intervention.seat == self.seat and not self.replaying
        return SWAP_KEY if swapped else model

    def prompt_room(self, model: str, reply_cap: int | None = None) -> int | None:
        return self.backend.prompt_room(self._model(model), reply_cap)

    async def complete(self, model: str, messages: list[dict[str, str]], call_key: dict[str, Any],
                       reply_cap: int | None = None, schema: dict[str, Any] | None = None) -> Completion:
        if self.replaying:
            return self._replay(messages, call_key)
        first = self.done == self.prefix
        self.done += 1
        intervention = self.branch.intervention
        mine = intervention.seat == self.seat and first
        key = {**call_key, "branch": self.branch.digest}  # own identity: own seeds, own cache entries
        if mine and intervention.kind == "replace":
            now = time.time()
            tokens = {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0}
            return Completion(text=intervention.text, usage=tokens, cost_usd=0.0, latency_s=0.0, started=now,
                              finished=now, model_id="intervention")
        if mine and intervention.kind == "perturb":
            # The text joins the seat's conversation, so it is also in every later prompt of the seat.
            turn = self.agent.transcript[-1]
            self.agent.transcript[-1] = {**turn, "content": f"{turn['content']}\n\n{intervention.text}"}
            messages = [*messages[:-1], self.agent.transcript[-1]]
        return await self.backend.complete(self._model(model), messages, key, reply_cap=reply_cap, schema=schema)

    def _replay(self, messages: list[dict[str, str]], call_key: dict[str, Any]) -> Completion:
        call = self.recorded[self.done]
        turn = sum(1 for c in self.recorded[: self.done] if c["attempt"] == 0) - (call["attempt"] > 0)
        where = f"seat {self.seat}, round {call['round']} {call['phase']} (attempt {call['attempt']})"
        if (call_key["turn"], call_key["attempt"]) != (turn, call["attempt"]):
            raise ReplayDiverged(f"{where}: the game asked for turn {call_key['turn']} attempt {call_key['attempt']}")
        if messages != recorded_messages(self.branch.parent, call):
            raise ReplayDiverged(f"{where}: the prompt differs from the recorded one (prompt templates or game code "
                                 "changed since the parent was played?)")
        self.done += 1
        now = time.time()
        return Completion(text=call["reply"], usage=call["usage"], cost_usd=call["cost_usd"], latency_s=0.0,
                          started=now, finished=now, retries=call["retries"], cache_hit=True,
                          sent_params=call["params"], model_id=call["model_id"])


class BranchGame(Experiment):
    """One branch of one stored game: the parent's experiment, replayed to ``point``, then ``intervention``."""

    def __init__(self, parent: dict[str, Any], backend: Backend, point: Point, intervention: Intervention,
                 seed: int, store: Path) -> None:
        super().__init__({**parent["config"], "store": str(store)}, backend)
        if self.id != parent["experiment_id"]:
            raise ReplayDiverged(f"the parent's config now has experiment id {self.id}, not {parent['experiment_id']}: "
                                 "the code changed what a game's identity is, so it cannot be replayed exactly")
        self.parent, self.point, self.intervention, self.seed = parent, point, intervention, seed
        spec = canonical_json({"point": asdict(point), "intervention": asdict(intervention), "seed": seed})
        self.digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
        self.seats: list[SeatReplay] = []

    @property
    def name(self) -> str:
        return f"r{self.point.round}-{self.point.phase}-{self.intervention.label()}-s{self.seed}-{self.digest}"

    @property
    def path(self) -> Path:
        return self.store.dir / "branches" / f"{self.parent['game_index']:05d}" / f"{self.name}.json"

    def make_agents(self, prefs: Any, keys: list[str], index: int, calls: list[dict[str, Any]]) -> list[LLMAgent]:
        agents = super().make_agents(prefs, keys, index, calls)
        self.seats = [SeatReplay(self, agent) for agent in agents]
        for agent, seat in zip(agents, self.seats):
            agent.backend = seat
        return agents

    async def play(self) -> dict[str, Any]:
        """Play the branch and return its record (with the ``branch`` block), checked against the parent."""
        parent = self.parent
        record = await self.play_game(parent["game_index"])
        if (record["error"] or {}).get("type") == ReplayDiverged.__name__:  # a failed game is recorded; this is no game
            raise ReplayDiverged(record["error"]["message"])
        replayed = self._check_prefix(record)
        if self.intervention.kind == "swap":
            seat, model = self.intervention.seat, self.backend.models[SWAP_KEY]
            record["agents"][seat] = {
                **record["agents"][seat], "swapped_from": record["agents"][seat]["model"],
                **{k: model[k] for k in ("litellm_model", "params", "reasoning", "metadata")}, "model": model["name"],
            }
        record["branch"] = {
            "id": self.name,
            "parent": {"experiment_id": parent["experiment_id"], "game_index": parent["game_index"],
                       "outcome": parent["outcome"], "agents": [a["model"] for a in parent["agents"]]},
            "point": asdict(self.point),
            "intervention": asdict(self.intervention),
            "seed": self.seed,
            "prefix": {"calls": replayed, "provider_calls": 0, "verified": True},
        }
        return record

    def _check_prefix(self, record: dict[str, Any]) -> int:
        """Mark replayed calls and check them against the parent's; returns how many there were."""
        before = self.point.round - 1
        if record["rounds"][:before] != self.parent["rounds"][:before]:
            raise ReplayDiverged(f"rounds before round {self.point.round} differ from the parent's")
        replayed = 0
        same = ("reply", "sent", "phase", "round")
        changed = self.intervention.kind in ("perturb", "replace")
        for seat in self.seats:
            if seat.done < seat.prefix:  # the game ended before reaching the branch point: impossible if exact
                raise ReplayDiverged(f"seat {seat.seat} replayed {seat.done} of its {seat.prefix} recorded calls")
            mine = [c for c in record["calls"] if c["seat"] == seat.seat]
            for k, call in enumerate(mine):
                if k < seat.prefix:
                    if any(call[f] != seat.recorded[k][f] for f in same):
                        raise ReplayDiverged(f"seat {seat.seat} call {k} differs from the parent's")
                    call["replayed"] = True
                    replayed += 1
                elif k == seat.prefix and changed and self.intervention.seat == seat.seat:
                    call["intervention"] = self.intervention.kind
        return replayed


def parse_at(text: str, record: dict[str, Any]) -> list[Point]:
    """``round=R,phase=P`` (or ``all``) -> branch points that exist in the record."""
    points = branch_points(record)
    if text == "all":
        return points
    try:
        fields = dict(part.split("=", 1) for part in text.split(","))
        point = Point(int(fields.pop("round")), fields.pop("phase"))
        if fields:
            raise ValueError
    except (ValueError, KeyError):
        raise ConfigError(f"--at {text}: give round=R,phase=P (phase one of {'|'.join(PHASES)}) or all") from None
    if point not in points:
        rounds = max(p.round for p in points) if points else 0
        raise ConfigError(f"--at {text}: game {record['game_index']} has no {point.phase} call in round {point.round}; "
                          f"it has rounds 1..{rounds} with phases "
                          f"{'|'.join(dict.fromkeys(p.phase for p in points))} (or use --at all)")
    return [point]


def _fields(text: list[str], flag: str, allowed: tuple[str, ...]) -> dict[str, str]:
    fields = {}
    for part in text:
        key, sep, value = part.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"{flag} {' '.join(text)}: give {' '.join(f'{k}=...' for k in allowed)}")
        fields[key] = value
    if set(fields) != set(allowed):
        raise ConfigError(f"{flag} needs {' and '.join(f'{k}=...' for k in allowed)}")
    return fields


def parse_intervention(args: argparse.Namespace, n_agents: int) -> Intervention:
    """The one intervention given on the command line, checked against the game's seats."""
    given = [(kind, getattr(args, kind)) for kind in ("swap", "perturb", "replace") if getattr(args, kind)]
    if len(given) != 1:
        raise ConfigError("give exactly one intervention: --swap seat=S model=M, --perturb seat=S text=T "
                          "or --replace seat=S text=T")
    kind, parts = given[0]
    fields = _fields(parts, f"--{kind}", ("seat", "model") if kind == "swap" else ("seat", "text"))
    try:
        seat = int(fields["seat"])
    except ValueError:
        seat = -1
    if not 0 <= seat < n_agents:
        raise ConfigError(f"--{kind} seat={fields['seat']} must be a seat of the game: 0..{n_agents - 1}")
    return Intervention(kind, seat, fields.get("model"), fields.get("text"))


def load_model(name: str) -> dict[str, Any]:
    """A model config by its conf/model name, validated like a lineup model."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from bargain.config import register, validate

    conf = Path(__file__).resolve().parents[1] / "conf"
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"model={name}"])
    except HydraException:
        names = ", ".join(sorted(p.stem for p in (conf / "model").glob("*.yaml")))
        raise ConfigError(f"--swap model={name} is not a model in conf/model; choose one of: {names}") from None
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    return OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = load_record(path)  # any record format
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable game record ({exc})") from None
    if "branch" in record:
        parent = record["branch"]["parent"]
        raise ConfigError(f"{path} is itself a branch; branch from its parent game "
                          f"{parent['experiment_id']}/games/{parent['game_index']:05d}.json")
    if not record.get("calls"):
        raise ConfigError(f"{path}: the game made no calls (status {record.get('status')}); nothing to branch from")
    return record


def plan(points: list[Point], intervention: Intervention, seeds: int,
         control: bool) -> list[tuple[Point, Intervention, int]]:
    """Every branch to play: each point x seed, for the intervention and (optionally) the control."""
    kinds = [intervention] + ([Intervention("control")] if control else [])
    return [(p, i, s) for p in points for i in kinds for s in range(seeds)]


async def play_branches(record: dict[str, Any], store: Path, todo: list[tuple[Point, Intervention, int]],
                        swap_model: dict[str, Any] | None) -> tuple[list[dict[str, Any]], int, Backend]:
    """Play the branches that are not stored yet; returns (records played, skipped, backend)."""
    cfg = record["config"]
    models = {key: model_config(cfg, key) for key in model_keys(cfg)}
    if swap_model is not None:
        models[SWAP_KEY] = swap_model
    run = cfg["run"]
    backend = Backend(models, run, cache_dir=run.get("cache_dir") or store / ".cache",
                      ledger=store / ".ledger" / f"{run.get('ledger') or 'spend'}.jsonl",
                      experiment=record["experiment_id"])
    backend.check_keys()
    played: list[dict[str, Any]] = []
    skipped = 0
    slots = asyncio.Semaphore(run["game_concurrency"])

    async def one(point: Point, intervention: Intervention, seed: int) -> None:
        nonlocal skipped
        branch = BranchGame(record, backend, point, intervention, seed, store)
        if _status(branch.path) == COMPLETE:
            skipped += 1
            return
        async with slots:
            result = await branch.play()
            atomic_write_json(branch.path, result)
            played.append(result)

    with backend.session(store / ".servers"):
        await asyncio.gather(*(one(*b) for b in todo))
    played.sort(key=lambda r: r["branch"]["id"])
    return played, skipped, backend


def _status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status")
    except (FileNotFoundError, ValueError):
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bargain.branch", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("record", type=Path, help="a stored game: <store>/<experiment>/games/<index>.json")
    parser.add_argument("--at", action="append", required=True, metavar="round=R,phase=P|all",
                        help="branch point (repeatable); all = every point of the game")
    parser.add_argument("--swap", nargs=2, metavar=("seat=S", "model=M"),
                        help="play seat S with model M from the point on")
    parser.add_argument("--perturb", nargs=2, metavar=("seat=S", "text=T"),
                        help="add text T to seat S's instruction at the point")
    parser.add_argument("--replace", nargs=2, metavar=("seat=S", "text=T"),
                        help="text T replaces seat S's reply at the point")
    parser.add_argument("--seeds", type=int, default=8, help="branches per point (default 8)")
    parser.add_argument("--no-control", action="store_true", help="skip the unchanged control branches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.seeds < 1:
            raise ConfigError(f"--seeds {args.seeds} must be >= 1")
        record = read_record(args.record)
        points = list(dict.fromkeys(p for text in args.at for p in parse_at(text, record)))
        intervention = parse_intervention(args, len(record["agents"]))
        swap_model = load_model(intervention.model) if intervention.kind == "swap" else None
    except ConfigError as exc:
        parser.error(str(exc))
    store = args.record.resolve().parents[2]
    todo = plan(points, intervention, args.seeds, not args.no_control)
    from bargain.backend import FatalBackendError

    try:
        played, skipped, backend = asyncio.run(play_branches(record, store, todo, swap_model))
    except (FatalBackendError, ReplayDiverged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    replayed = sum(r["branch"]["prefix"]["calls"] for r in played)
    live = sum(1 for r in played for c in r["calls"] if not c.get("replayed") and not c["cache_hit"]
               and c.get("intervention") != "replace")
    print(f"{len(played)} branch(es) played, {skipped} already stored, from {len(points)} point(s) of game "
          f"{record['experiment_id']}/{record['game_index']}")
    print(f"prefix: {replayed} call(s) replayed from the parent record, each prompt checked; "
          f"provider calls {backend.provider_calls} = live calls after the branch points {live}"
          + ("" if backend.provider_calls == live else "  (MISMATCH)"))
    print(f"branches: {store / record['experiment_id'] / 'branches' / format(record['game_index'], '05d')}")
    print(f"effects: python -m analysis.branching {store}")
    if backend.provider_calls != live:
        sys.exit(1)


if __name__ == "__main__":
    main()
