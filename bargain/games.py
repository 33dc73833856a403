"""The games a job can play (``game=items|treaty|cofunding``), each binding its pure rules, preference
generator, prompts and protocol for the runner, which treats them all alike.

A game draws one preference sample per draw, writes the per-game prompt for every seat, plays, and
says what goes into its records and into the experiment identity. The item game's identity is the
one it always had (``env`` and ``preferences``); another game's identity holds its ``game`` block and
the ``env`` settings it uses, so the same command always resumes the same experiment.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bargain import negotiation, perturb, pledging
from bargain.game import generate_preferences
from bargain.game.cofunding import CofundingPreferences, cost_range, generate_cofunding
from bargain.game.treaty import TreatyPreferences, generate_treaty
from bargain.prompts import render

DEFAULT_ISSUES = ("Tariff rate", "Emission cuts", "Arms reduction", "Data sharing", "Fishing quota", "Aid budget",
                  "Refugee quota", "Patent term", "Visa access", "Tax floor", "Mining moratorium", "Debt relief")
DEFAULT_PROJECTS = ("Bike lane", "Playground", "Library", "Pool lift", "Bus shelters", "Night lights", "Water fountains",
                    "Dog park", "Community garden", "Wi-Fi hubs", "Rain gardens", "Senior center")
# env settings of the item game that no other game reads; they are left out of those games' identity.
_ITEM_ONLY = ("n_items", "competition", "item_names")
_VOTING = ("gamma", "vote_rule", "vote_threshold", "reveal_votes")


def names(custom: list[str] | None, defaults: tuple[str, ...], prefix: str, count: int) -> list[str]:
    """Custom names, else the defaults, then ``<prefix>_<k>`` beyond them."""
    if custom:
        return list(custom)
    return [defaults[k] if k < len(defaults) else f"{prefix}_{k + 1}" for k in range(count)]


def _fields(table_type: type, env: dict[str, Any]) -> dict[str, Any]:
    """The env settings a table type takes (every dataclass field env has)."""
    return {k: env[k] for k in table_type.__dataclass_fields__ if k in env}


def agent_names(env: dict[str, Any]) -> list[str]:
    """The seats' display names: env.agent_names, else Agent_1, Agent_2, ..."""
    return list(env.get("agent_names") or [f"Agent_{s + 1}" for s in range(env["n_agents"])])


def with_persona(system: str, persona: str | None) -> str:
    """A seat's system prompt with its persona paragraph after the first line (who it is)."""
    if not persona:
        return system
    first, _, rest = system.partition("\n")
    return f"{first}\n{persona.strip()}\n{rest}"


class Game:
    """One game kind: what the runner needs to draw, prompt, play and record it."""

    name: ClassVar[str]
    prompts: ClassVar[str | None] = None  # folder of the game's own prompt templates
    unused_env: ClassVar[tuple[str, ...]] = ()  # env settings the game does not read

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg, self.env, self.params = cfg, cfg["env"], cfg.get("game") or {}
        self.agents = agent_names(self.env)
        self.perturb = cfg.get("perturb")
        self.wording = perturb.wording(self.perturb)

    def named(self, names: list[str]) -> list[str]:
        """The names of what is negotiated, permuted when ``perturb.names`` asks for it."""
        return perturb.permuted(names, int((self.perturb or {}).get("names", 0)))

    def system_prompt(self, prefs: Any, seat: int) -> str:
        """The seat's rules and private preferences, with its persona if it has one."""
        personas = self.env.get("personas") or []
        return with_persona(self.table.system_prompt(prefs, seat), personas[seat] if seat < len(personas) else None)

    def record_axes(self) -> dict[str, Any]:
        """The record's ``game`` fields of the axes in use: personas and the prompt perturbation."""
        axes: dict[str, Any] = {}
        if self.env.get("personas"):
            axes["personas"] = list(self.env["personas"])
        if perturb.active(self.perturb):
            axes["perturbation"] = dict(self.perturb)
        return axes

    phases: ClassVar[tuple[str, ...]] = ("discussion", "thinking", "proposal", "vote", "reflection")

    @classmethod
    def identity(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """The outcome-relevant config of this game, for the experiment identity."""
        return {"game": cfg["game"], "env": cls._env(cfg, cls.unused_env)}

    @classmethod
    def _env(cls, cfg: dict[str, Any], unused: tuple[str, ...] = ()) -> dict[str, Any]:
        """env without the settings the game does not read, and reply caps only for its phases."""
        env = {k: v for k, v in cfg["env"].items() if k not in unused}
        if "max_tokens" in env:
            env["max_tokens"] = {k: v for k, v in env["max_tokens"].items() if k in cls.phases}
        return env

    def round_prompts(self, prefs: Any, r: int) -> list[tuple[str, str, str]]:
        """Round r's instructions after the discussion, each with the public events shown with it
        (others' discussion messages aside): (phase, instruction, events). For cost estimates."""
        table, env, head = self.table, self.env, {"round": r, "max_rounds": self.env["max_rounds"]}
        example = [(seat, self.example_proposal()) for seat in range(len(self.agents))]
        turns = [("thinking", render("thinking", **head), "")] if env["thinking"] else []
        turns += [("proposal", table.proposal_instruction(head), ""),
                  ("vote", negotiation.vote_instruction(table, prefs, 0, r, example), "")]
        if env["reflection"] and r < env["max_rounds"]:
            shown = "accept, " * len(self.agents) ** 2 if env["reveal_votes"] else ""
            turns.append(("reflection", render("reflection", **head), shown))
        return turns

    def record_game(self, prefs: Any) -> dict[str, Any]:
        """The record's ``game`` block: protocol settings, names and the game's parameters."""
        protocol = ("n_agents", "max_rounds", "gamma", "vote_rule", "vote_threshold", "speaking_order", "memory")
        return {"name": self.name, **{k: self.env[k] for k in protocol if k not in self.unused_env},
                "agent_names": self.agents, "parameters": {k: v for k, v in self.params.items() if k != "name"},
                **self.record_axes()}


class ItemGame(Game):
    """Items divided by proposals and votes (README.md, "Games"): env.n_items, env.competition, preferences=vector|matrix."""

    name = "items"
    _FIELDS = ("n_items", "n_agents", "max_rounds", "gamma", "competition", "vote_rule", "vote_threshold",
               "speaking_order", "memory")

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        items = self.named(negotiation.item_names(self.env["n_items"], self.env["item_names"]))
        self.table = negotiation.Table(items=items, agents=self.agents, wording=self.wording,
                                       **_fields(negotiation.VoteTable, self.env))

    @classmethod
    def identity(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        return {"env": cls._env(cfg), "preferences": cfg["preferences"]}

    def example_proposal(self) -> tuple[int, ...]:
        return (0,) * len(self.table.items)

    def draw(self, rng: np.random.Generator):
        return generate_preferences(rng, self.env["n_agents"], self.env["n_items"], self.env["competition"],
                                    kind=self.cfg["preferences"]["kind"], cooperation=self.cfg["preferences"]["cooperation"])

    def record_game(self, prefs) -> dict[str, Any]:
        return {"name": self.name, **{k: self.env[k] for k in self._FIELDS}, "items": self.table.items,
                "agent_names": self.agents, "preference_kind": prefs.kind, "cooperation": prefs.cooperation,
                **self.record_axes()}

    @staticmethod
    def record_preferences(prefs) -> dict[str, Any]:
        return {"kind": prefs.kind, "values": prefs.values.tolist(), "base": prefs.base.tolist(), "cosine": prefs.cosines()}

    async def play(self, prefs, agents, rng: np.random.Generator, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        return await negotiation.play(self.table, prefs, agents, rng, rounds)

    @staticmethod
    def summary(record: dict[str, Any]) -> list[str]:
        """Lines for the command-line summary: private values and the deal."""
        game, prefs, outcome = record["game"], record["preferences"], record["outcome"]
        lines = [f"  {agent['name']} values {dict(zip(game['items'], values))}"
                 for agent, values in zip(record["agents"], prefs["base"])]
        lines.append(f"  cosine {', '.join(f'{k}: {v:.4f}' for k, v in prefs['cosine'].items())}")
        shares = {name: [game["items"][k] for k, o in enumerate(outcome["owners"] or ()) if o == seat]
                  for seat, name in enumerate(game["agent_names"])}
        return [*lines, _deal_line(record, "agreement", shares)]


def _deal_line(record: dict[str, Any], deal: str, terms: dict[str, Any]) -> str:
    """The summary's last line: the deal and its round, or that there was none."""
    outcome = record["outcome"]
    if outcome["agreement"]:
        return f"  {deal} in round {outcome['round']}: {terms}"
    return f"  no {deal} after {record['game']['max_rounds']} rounds: everyone gets 0"


class TreatyGame(Game):
    """A treaty over game.n_issues issues, by proposals and votes: game.rho and game.theta."""

    name = "treaty"
    prompts = "treaty"
    unused_env = _ITEM_ONLY

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        issues = self.named(names(self.params["issue_names"], DEFAULT_ISSUES, "Issue", self.params["n_issues"]))
        self.table = negotiation.TreatyTable(issues=issues, agents=self.agents, wording=self.wording,
                                             **_fields(negotiation.VoteTable, self.env))

    def example_proposal(self) -> tuple[int, ...]:
        return (50,) * len(self.table.issues)

    def draw(self, rng: np.random.Generator) -> TreatyPreferences:
        p = self.params
        return generate_treaty(rng, self.env["n_agents"], p["n_issues"], p["rho"], p["theta"])

    def record_game(self, prefs: TreatyPreferences) -> dict[str, Any]:
        return {**super().record_game(prefs), "issues": self.table.issues}

    @staticmethod
    def record_preferences(prefs: TreatyPreferences) -> dict[str, Any]:
        return {"kind": prefs.kind, "positions": prefs.positions.tolist(), "weights": prefs.weights.tolist(),
                "cosine": prefs.cosines(), "correlation": prefs.correlations()}

    async def play(self, prefs: TreatyPreferences, agents, rng: np.random.Generator,
                   rounds: list[dict[str, Any]]) -> dict[str, Any]:
        return await negotiation.play(self.table, prefs, agents, rng, rounds)

    @staticmethod
    def summary(record: dict[str, Any]) -> list[str]:
        """Lines for the command-line summary: private ideals and weights, and the treaty."""
        game, prefs, outcome = record["game"], record["preferences"], record["outcome"]
        lines = [f"  {agent['name']} ideals {dict(zip(game['issues'], ideals))} weights {dict(zip(game['issues'], weights))}"
                 for agent, ideals, weights in zip(record["agents"], prefs["positions"], prefs["weights"])]
        lines.append(f"  weight cosine {', '.join(f'{k}: {v:.4f}' for k, v in prefs['cosine'].items())}; ideal "
                     f"correlation {', '.join(f'{k}: {v:.2f}' if v is not None else f'{k}: -' for k, v in prefs['correlation'].items())}")
        return [*lines, _deal_line(record, "treaty", dict(zip(game["issues"], outcome["terms"] or ())))]


class CofundingGame(Game):
    """Projects funded by pooled pledges (talk–pledge–revise): game.alpha and game.sigma."""

    name = "cofunding"
    prompts = "cofunding"
    unused_env = _ITEM_ONLY + _VOTING
    phases = ("discussion", "thinking", "pledge", "reflection")

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        projects = self.named(names(self.params["project_names"], DEFAULT_PROJECTS, "Project", self.params["n_projects"]))
        self.table = pledging.FundingTable(projects=projects, agents=self.agents, wording=self.wording,
                                           **_fields(pledging.FundingTable, self.env))

    def round_prompts(self, prefs: CofundingPreferences, r: int) -> list[tuple[str, str, str]]:
        table, env, head = self.table, self.env, {"round": r, "max_rounds": self.env["max_rounds"]}
        nothing = np.zeros(len(table.projects))
        turns = [("thinking", render("cofunding/thinking", **head), "")] if env["thinking"] else []
        turns.append(("pledge", table.pledge_instruction(prefs, head, nothing, None if r == 1 else nothing), ""))
        if env["reflection"] and r < env["max_rounds"]:
            turns.append(("reflection", render("cofunding/reflection", **head), table.feedback(prefs, r, nothing, False)))
        return turns

    def cost_range(self) -> tuple[int, int]:
        """game.c_min and game.c_max, each defaulting to the calibrated range for this n and M."""
        return cost_range(self.env["n_agents"], self.params["n_projects"], self.params["c_min"], self.params["c_max"])

    def draw(self, rng: np.random.Generator) -> CofundingPreferences:
        p = self.params
        return generate_cofunding(rng, self.env["n_agents"], p["n_projects"], p["alpha"], p["sigma"], *self.cost_range())

    def record_game(self, prefs: CofundingPreferences) -> dict[str, Any]:
        game = super().record_game(prefs)
        game["parameters"].update(zip(("c_min", "c_max"), self.cost_range()))
        return {**game, "projects": self.table.projects}

    @staticmethod
    def record_preferences(prefs: CofundingPreferences) -> dict[str, Any]:
        return {"kind": prefs.kind, "values": prefs.values.tolist(), "costs": prefs.costs.tolist(),
                "budgets": prefs.budgets.tolist(), "cosine": prefs.cosines(), "scarcity": prefs.scarcity()}

    async def play(self, prefs: CofundingPreferences, agents, rng: np.random.Generator,
                   rounds: list[dict[str, Any]]) -> dict[str, Any]:
        return await pledging.play(self.table, prefs, agents, rng, rounds)

    @staticmethod
    def summary(record: dict[str, Any]) -> list[str]:
        """Lines for the command-line summary: costs, budgets, values, and what got funded by whom."""
        game, prefs, outcome = record["game"], record["preferences"], record["outcome"]
        projects = game["projects"]
        lines = [f"  costs {dict(zip(projects, prefs['costs']))}; budgets "
                 f"{dict(zip(game['agent_names'], prefs['budgets']))} (scarcity {prefs['scarcity']:.4f})"]
        lines += [f"  {agent['name']} values {dict(zip(projects, values))}"
                  for agent, values in zip(record["agents"], prefs["values"])]
        lines.append(f"  cosine {', '.join(f'{k}: {v:.4f}' for k, v in prefs['cosine'].items())}")
        ending = "every plan agreed" if outcome["agreement"] else "the plans still differed"
        lines.append(f"  after round {outcome['round']} ({ending}) funded: {[projects[j] for j in outcome['funded']]}")
        for name, row in zip(game["agent_names"], outcome["contributions"]):
            lines.append(f"  {name} pledged {({p: round(x, 2) for p, x in zip(projects, row) if x > 0})}")
        return lines


GAMES: dict[str, type[Game]] = {game.name: game for game in (ItemGame, TreatyGame, CofundingGame)}


def game_type(cfg: dict[str, Any]) -> type[Game]:
    """The game a config plays (``game.name``; the item game when the config predates games)."""
    return GAMES[(cfg.get("game") or {}).get("name", "items")]
