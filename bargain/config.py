"""Structured config schema for the Hydra app, and the checks OmegaConf cannot express.

Types and enum values are checked by OmegaConf when the config is composed (``env.competition=high``
fails there); unknown keys (``+env.typo=3``), numeric ranges, seeds, names used in paths, URLs with
credentials and cross-field rules are checked by :func:`validate`. The app runs it before Hydra
writes a file and before LiteLLM is imported (see ``bargain.run``), so a bad value costs well under
a second and leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import logging
import os
import re
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from bargain.game.cofunding import cost_range
from bargain.game.treaty import min_rho

from bargain import ecology, roster
from bargain.game.rules import vote_threshold
from bargain.perturb import PARAPHRASES

log = logging.getLogger(__name__)

# user:password@ (or token@) in a URL
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://([^/@\s]+)@", re.IGNORECASE)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+:@-]*")
# Free-form mappings: any key is allowed below these (documented extension points).
FREE_KEYS = ("params", "metadata", "hydra")


class ConfigError(ValueError):
    """A config value is out of range; the message names the key and the allowed values."""


class VoteRule(str, Enum):
    unanimity = "unanimity"
    supermajority = "supermajority"
    majority = "majority"


class SpeakingOrder(str, Enum):
    fixed = "fixed"
    reversed = "reversed"
    random = "random"
    rotate = "rotate"


class Memory(str, Enum):
    full = "full"  # each agent keeps its whole append-only conversation
    stateless = "stateless"  # the seed's behaviour: every call sees only the rules and the current prompt


class PreferenceKind(str, Enum):
    vector = "vector"
    matrix = "matrix"


class ContextOverflow(str, Enum):
    end = "end"  # the game stops before the call, recorded with status context_limit
    compact = "compact"  # the oldest turns after the rules are left out of the prompt until it fits


EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
DIALS = ("effort", "budget_tokens")
PHASES = ("discussion", "thinking", "proposal", "pledge", "vote", "reflection")  # in the order of a round's calls
STRUCTURED_OUTPUT = (None, "json_schema", "json_object")  # model.structured_output: off, or the response_format form


@dataclass
class ServerConfig:
    """How to start a self-hosted OpenAI-compatible server for a model (stopped by PID afterwards)."""

    command: list[str] = MISSING
    port: int = MISSING
    ready_path: str = "/v1/models"
    startup_timeout_s: float = 120.0
    args: list[str] = field(default_factory=list)  # appended to command (e.g. --quantization fp8)
    env: dict[str, Any] = field(default_factory=dict)  # the server's environment on top of the job's; null = inherit
    attention_heads: int | None = None  # {tp} = the largest power of two <= the job's GPUs that divides this


@dataclass
class ReasoningConfig:
    """The reasoning dial of a model; null everywhere = the provider's default."""

    effort: str | None = None  # sent as reasoning_effort (OpenAI, xAI, Gemini, Anthropic through LiteLLM)
    budget_tokens: int | None = None  # thinking budget (Anthropic extended thinking, Gemini 2.5 thinkingBudget)
    max_tokens: int | None = None  # room for reasoning added to the reply cap when no budget is sent


@dataclass
class LifecycleConfig:
    status: str = "active"  # as of checked_on: active | deprecated | retired (retires_on decides at run time)
    retires_on: str | None = None  # YYYY-MM-DD the route stops (stopped) answering
    replacement: str | None = None  # a current model to use instead
    checked_on: str | None = None


@dataclass
class ModelConfig:
    name: str = MISSING
    litellm_model: str = MISSING
    api_key_env: str | None = None  # the *name* of the variable holding the key; never the key
    api_base: str | None = None  # set to reach a self-hosted OpenAI-compatible server
    hf_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # sampling parameters sent with every call
    unsupported_params: list[str] = field(default_factory=list)  # dropped before sending (e.g. o-series temperature)
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)
    reasoning_dials: list[str] | None = None  # which reasoning keys the route accepts; null = unknown (not checked)
    context_window: int | None = None  # tokens; every call is checked against it before it is sent
    # send each move's JSON schema as response_format, so the server decodes only well-formed moves:
    # json_schema (OpenAI's form: OpenAI, vLLM, llama-server) or json_object (llama-cpp-python's server)
    structured_output: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # capability metadata for analysis
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    allow_retired: bool = False  # run a retired snapshot anyway (a provider may still serve it)
    max_concurrency: int = 8
    timeout_s: float | None = None  # seconds to wait for one reply; null = run.timeout_s
    rpm: int | None = None
    tpm: int | None = None
    price_input_per_mtok: float | None = None  # USD per million tokens, for models LiteLLM has no price for
    price_output_per_mtok: float | None = None
    server: ServerConfig | None = None


@dataclass
class PhaseTokens:
    """Caps on the visible reply per game phase (null = the model's params.max_tokens)."""

    discussion: int | None = None
    thinking: int | None = None
    proposal: int | None = None
    pledge: int | None = None  # the co-funding game's joint funding plans
    vote: int | None = None
    reflection: int | None = None


@dataclass
class EnvConfig:
    n_items: int = 5
    n_agents: int = 2
    max_rounds: int = 10
    gamma: float = 0.9
    competition: float = 0.9
    discussion: bool = True
    discussion_turns: int = 1
    thinking: bool = True
    reflection: bool = True
    reveal_votes: bool = True
    vote_rule: VoteRule = VoteRule.unanimity
    vote_threshold: str = "2/3"  # exact fraction of agents (p/q), used by the supermajority rule
    speaking_order: SpeakingOrder = SpeakingOrder.fixed
    memory: Memory = Memory.full
    max_reasks: int = 2
    item_names: list[str] | None = None  # default: Apple, Jewel, Stone, Quill, Pencil, Book, Hat, Camera, Item_9 ...
    max_tokens: PhaseTokens = field(default_factory=PhaseTokens)
    context_overflow: ContextOverflow = ContextOverflow.end
    agent_names: list[str] | None = None  # display name per seat; default Agent_1, Agent_2, ...
    personas: list[Optional[str]] | None = None  # a persona/stance paragraph per seat (null: none) in its system prompt


class Unit(str, Enum):
    points = "points"
    dollars = "dollars"


@dataclass
class PerturbConfig:
    """Seeded prompt perturbations (bargain/perturb.py): the game underneath and its records stay the same."""

    names: int = 0  # 0: names as configured; k > 0: the k-th seeded permutation of the item/issue/project names
    scale: float = 1.0  # values (and co-funding costs and budgets) are shown multiplied by this
    unit: Unit = Unit.points  # what values are called in the prompts: points or dollars
    paraphrase: int = 0  # 0: the rule prompts as written; k: the k-th paraphrase (bargain/prompts/perturbed/<k>/)


class AccessSeats(str, Enum):
    focal = "focal"
    opponents = "opponents"
    all = "all"


@dataclass
class AccessConfig:
    """Access scaling: a seat drafts k candidate replies per move and a selector picks one (bargain/agents/access.py)."""

    k: int = 1  # candidate replies per move; 1 = off
    seats: AccessSeats = AccessSeats.focal  # which seats draft
    phases: list[str] = field(default_factory=lambda: ["discussion", "proposal", "pledge", "vote"])
    selector: ModelConfig | None = None  # null: each drafting seat's own model picks; +model@access.selector=<model>


@dataclass
class EcologyConfig:
    """A mixed ecology: the seats beside the focal model drawn from a roster of conf/model names (bargain/ecology.py)."""

    roster: list[str] | None = None  # e.g. [sim-weak, sim-base, sim-strong]; null: the lineup as configured
    lineup: int = 0  # which seeded draw of the other seats (sweep it: ecology.lineup=0,1,2,...)


@dataclass
class PreferencesConfig:
    kind: PreferenceKind = PreferenceKind.vector
    cooperation: float = 0.0  # matrix only: weight on other agents' gains


@dataclass
class ItemsGameConfig:
    """The item game; its parameters are env.n_items, env.competition, env.item_names and preferences."""

    name: str = "items"


@dataclass
class TreatyGameConfig:
    name: str = "treaty"
    n_issues: int = 5
    rho: float = 0.0  # correlation of the agents' ideal settings, in [min_rho(n), 1]
    theta: float = 0.5  # interest overlap: target cosine of the agents' importance weights, in [0, 1]
    issue_names: list[str] | None = None  # default: Tariff rate, Emission cuts, Arms reduction, ...


@dataclass
class CofundingGameConfig:
    name: str = "cofunding"
    n_projects: int = 5
    alpha: float = 0.5  # preference alignment: target cosine of the agents' project values, in [0, 1]
    sigma: float = 0.5  # budget scarcity: total budget / total cost, in (0, 1]
    c_min: int | None = None  # project costs are integers drawn from [c_min, c_max];
    c_max: int | None = None  # null: the calibrated range for a burden ratio of 0.5 (E[c] = 50 n / M, c_max = 3 c_min)
    project_names: list[str] | None = None  # default: Bike lane, Playground, Library, ...


GAME_SCHEMAS = {"items": ItemsGameConfig, "treaty": TreatyGameConfig, "cofunding": CofundingGameConfig}


@dataclass
class RunConfig:
    """Runtime knobs: they never change a game's outcome, so they are not part of its identity."""

    game_concurrency: int = 4
    workers: int | None = None  # processes the games are spread over; null: one per 16 concurrent games, at most one per core
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    budget_usd: float | None = None  # cap on this job's spend; games cut short are recorded budget_exceeded
    sweep_budget_usd: float | None = None  # cap on the total in the spend ledger shared by the jobs of a sweep
    ledger: str = "spend"  # spend ledger <store>/.ledger/<ledger>.json; give a sweep its own name for its own cap
    max_error_fraction: float = 0.0  # exit 1 if more than this fraction of the games played ended in error (all are recorded)
    cache: bool = True  # exact replay cache: re-runs and resumed games never pay twice
    cache_dir: str | None = None  # default <store>/.cache; share one between stores to replay into a fresh store
    retry_deterministic: bool = False  # replay games that failed deterministically (context overflow, invalid request, bug) unchanged
    progress: bool = True  # progress bar on stderr (only when it is a terminal)
    game_delay_s: float = 0.0  # pause before each game (pacing; lets tests cancel a job mid-way)


@dataclass
class Config:
    seed: int = 0
    n_games: int = 2
    counterbalance: bool = True
    store: str = "outputs/store"
    dry_run: bool = False  # print the plan (cells, games, routes, estimated tokens and cost) and play nothing
    model: ModelConfig = MISSING
    opponent: ModelConfig = MISSING
    opponents: dict[str, ModelConfig] = field(default_factory=dict)  # any key: extra distinct opponents
    game: Any = MISSING  # one of GAME_SCHEMAS, chosen by the config group (game=items|treaty|cofunding)
    env: EnvConfig = field(default_factory=EnvConfig)
    preferences: PreferencesConfig = field(default_factory=PreferencesConfig)
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    ecology: EcologyConfig = field(default_factory=EcologyConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class JudgeConfig:
    """``python -m analysis judge``: the judge model and the same runtime knobs as a game job."""

    judge: ModelConfig = MISSING
    max_reasks: int = 1  # re-ask an unparseable judgement with its parse error this many times
    context_messages: int = 6  # earlier public messages shown with each message
    structured: bool = False  # send the judgement's JSON schema as response_format (llama.cpp, vLLM servers)
    run: RunConfig = field(default_factory=RunConfig)


def register() -> None:
    """Register the schemas so ``conf/config.yaml``, ``conf/judge.yaml`` and ``conf/game/*.yaml`` can name them in their defaults lists."""
    store = ConfigStore.instance()
    store.store(name="schema", node=Config)
    store.store(name="judge_schema", node=JudgeConfig)
    for name, schema in GAME_SCHEMAS.items():
        store.store(group="game", name=f"{name}_schema", node=schema)


def lineup_keys(cfg: Any) -> list[str]:
    """Config keys of the models in lineup order: the focal model, then one opponent per other seat."""
    extra = [f"opponents.{k}" for k in sorted(cfg["opponents"])]
    return ["model", *extra, *["opponent"] * (cfg["env"]["n_agents"] - 1 - len(extra))]


def model_config(cfg: Any, key: str) -> Any:
    """The model config under a config key (``model``, ``opponent``, ``opponents.<name>``, ``access.selector``)."""
    return functools.reduce(lambda node, part: node[part], key.split("."), cfg)


def model_keys(cfg: Any) -> list[str]:
    """Every config key a job calls a model under: the lineup's, then the access selector's if there is one."""
    selector = ["access.selector"] if (cfg.get("access") or {}).get("selector") is not None else []
    return [*dict.fromkeys(lineup_keys(cfg)), *selector]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_names(given: Any, count: int, key: str, count_key: str) -> None:
    if given is not None:
        names = [str(i).strip().lower() for i in given]
        _check(
            len(names) == count and len(set(names)) == len(names) and all(names),
            f"{key} must list {count} distinct non-empty names ({count_key}={count})",
        )


def _validate_game(cfg: Any) -> None:
    """Ranges of the game's own parameters, and item-game settings given to another game."""
    game, env = cfg.game, cfg.env
    _check(GAME_SCHEMAS.get(game.name) is OmegaConf.get_type(game),
           f"game.name={game.name!r} does not match the game chosen; choose a game with game={'|'.join(GAME_SCHEMAS)}")
    if game.name == "items":
        return
    _check(env.item_names is None, f"env.item_names names the item game's items; game={game.name} does not use it")
    _check(cfg.preferences.kind == PreferenceKind.vector,
           f"preferences={cfg.preferences.kind.value} belongs to the item game; game={game.name} draws its own preferences")
    n = env.n_agents
    if game.name == "treaty":
        low = min_rho(n)
        _check(low - 1e-12 <= game.rho <= 1.0,
               f"game.rho={game.rho} must be in [{low:.4f}, 1] for env.n_agents={n} (latent correlation >= -1/(n-1))")
        _check(0.0 <= game.theta <= 1.0, f"game.theta={game.theta} must be in [0, 1]")
        size, size_key, level = game.n_issues, "game.n_issues", ("game.theta", game.theta)
        _check_names(game.issue_names, game.n_issues, "game.issue_names", "game.n_issues")
    else:
        _check(0.0 <= game.alpha <= 1.0, f"game.alpha={game.alpha} must be in [0, 1]")
        _check(0.0 < game.sigma <= 1.0, f"game.sigma={game.sigma} must be in (0, 1]")
        for key in ("c_min", "c_max"):
            value = getattr(game, key)
            _check(value is None or value >= 1, f"game.{key}={value} must be an integer >= 1 or null")
        low, high = cost_range(n, game.n_projects, game.c_min, game.c_max)
        _check(low <= high, f"game.c_min={low} must be <= game.c_max={high} (null takes the calibrated value)")
        size, size_key, level = game.n_projects, "game.n_projects", ("game.alpha", game.alpha)
        _check_names(game.project_names, game.n_projects, "game.project_names", "game.n_projects")
    _check(2 <= size <= 12, f"{size_key}={size} must be an integer in [2, 12]")
    _check(size >= n or level[1] == 1.0,
           f"{level[0]}={level[1]} < 1 needs {size_key} >= env.n_agents (got {size} < {n}): "
           "equal pairwise cosines below 1 need one dimension per agent")


def _schema_of(annotation: Any) -> tuple[type | None, bool]:
    """(the dataclass a field holds, whether it is a mapping of them) for an annotation, else (None, False)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict and args and dataclasses.is_dataclass(args[1]):
        return args[1], True
    return next((a for a in (annotation, *args) if dataclasses.is_dataclass(a)), None), False


def _check_keys(node: Any, schema: type, prefix: str = "") -> None:
    """Every key is in the schema, except below the free-form mappings (``params``, ``metadata``, ``hydra``)."""
    hints = typing.get_type_hints(schema)
    for key in node.keys():
        name = str(key)
        if name in FREE_KEYS:
            continue
        if name not in hints:
            close = difflib.get_close_matches(name, hints, n=1)
            hint = f"did you mean {prefix}{close[0]}? " if close else ""
            raise ConfigError(
                f"{prefix}{name} is not a config key ({hint}keys here: {', '.join(sorted(hints))}); "
                "a typo would silently create a new experiment"
            )
        child, mapping = _schema_of(hints[name])
        value = node._get_node(name)
        if child is None or not isinstance(value, DictConfig) or value._is_none():
            continue
        if mapping:
            for sub in value.keys():
                _check_keys(value[sub], child, f"{prefix}{name}.{sub}.")
        else:
            _check_keys(value, child, f"{prefix}{name}.")


def _strings(node: Any, path: str = "") -> typing.Iterator[tuple[str, str]]:
    """Every string in a config, unresolved (so ``${oc.env:VAR}`` stays as written), with its key."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def check_secrets(cfg: Any) -> None:
    """Refuse credentials written into a URL: Hydra would copy them into its files and folder names (and
    LiteLLM's HTTP client refuses URL credentials next to the key it always sends)."""
    container = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    found = [key for key, text in _strings(container) if _URL_CREDENTIALS.search(text)]
    if found:
        key = next((k for k in found if not k.startswith("hydra.")), "a command-line override")
        raise ConfigError(
            f"{key} has credentials in a URL (scheme://***@...): they would be written into Hydra's files and "
            "folder names; put the secret in an environment variable and name it in model.api_key_env "
            "(sent as a bearer key) instead"
        )


def _check_params(key: str, params: Any) -> None:
    """Sampling parameters of the usual names have the usual types (a wrong type would fail every call)."""
    for secret in ("api_key", "key", "token"):
        _check(secret not in params, f"{key}.params.{secret}: keys never go in configs; name the variable in {key}.api_key_env")
    number = (int, float)
    rules = {
        "temperature": (number, lambda v: 0 <= v <= 2, "a number in [0, 2]"),
        "top_p": (number, lambda v: 0 < v <= 1, "a number in (0, 1]"),
        "max_tokens": (int, lambda v: v >= 1, "an integer >= 1"),
        "max_completion_tokens": (int, lambda v: v >= 1, "an integer >= 1"),
        "seed": (int, lambda v: v >= 0, "an integer >= 0"),
    }
    for name, (types, ok, allowed) in rules.items():
        if name in params and params[name] is not None:
            value = params[name]
            _check(isinstance(value, types) and not isinstance(value, bool) and ok(value),
                   f"{key}.params.{name}={value!r} must be {allowed}")


def _check_model(key: str, model: Any) -> None:
    _check(model.name is not None and _PLAIN_NAME.fullmatch(str(model.name)) is not None,
           f"{key}.name={model.name!r} must be a plain name (letters, digits, '_', '-', '.', '+', ':', '@'): it names files")
    _check(model.max_concurrency >= 1, f"{key}.max_concurrency={model.max_concurrency} must be >= 1")
    _check(model.timeout_s is None or model.timeout_s > 0, f"{key}.timeout_s={model.timeout_s} must be > 0 (or null)")
    for limit in ("rpm", "tpm"):
        value = model[limit]
        _check(value is None or value >= 1, f"{key}.{limit}={value} must be >= 1 or null")
    _check_params(key, model.params)
    _check(model.structured_output in STRUCTURED_OUTPUT,
           f"{key}.structured_output={model.structured_output} must be one of json_schema, json_object or null")
    if model.server is not None:
        _check(0 <= model.server.port <= 65535, f"{key}.server.port={model.server.port} must be in [0, 65535] (0: a free port)")
        _check(model.server.startup_timeout_s > 0, f"{key}.server.startup_timeout_s={model.server.startup_timeout_s} must be > 0")


def _validate_axes(cfg: Any) -> None:
    """Names and personas, prompt perturbations and access scaling."""
    env, n = cfg.env, cfg.env.n_agents
    _check_names(env.agent_names, n, "env.agent_names", "env.n_agents")
    for name in env.agent_names or []:
        _check(re.fullmatch(r"[\w'.-]+( [\w'.-]+)*", str(name)) is not None,
               f"env.agent_names: {name!r} must be words of letters, digits, ' . - _ separated by single spaces")
    _check(env.personas is None or len(env.personas) == n,
           f"env.personas must list one persona (or null) per seat (env.n_agents={n}), got {len(env.personas or [])}")
    p = cfg.perturb
    _check(p.names >= 0, f"perturb.names={p.names} must be >= 0 (0: names as configured)")
    _check(p.scale > 0, f"perturb.scale={p.scale} must be > 0")
    _check(0 <= p.paraphrase <= PARAPHRASES, f"perturb.paraphrase={p.paraphrase} must be an integer in [0, {PARAPHRASES}]")
    a = cfg.access
    _check(1 <= a.k <= 16, f"access.k={a.k} must be an integer in [1, 16] (1: no drafts)")
    for phase in a.phases:
        _check(phase in PHASES, f"access.phases: {phase!r} must be one of {', '.join(PHASES)}")


def validate(cfg: Any) -> None:
    """Raise ConfigError naming the key and its allowed values for anything out of range.

    First refuses URL credentials and unknown keys, then gives every lineup model its true identity:
    ``model=litellm`` from the roster, and the name and metadata of the reasoning setting actually
    played (see :func:`bargain.roster.identify`).
    """
    check_secrets(cfg)
    _check_keys(cfg, Config)
    if (game_schema := GAME_SCHEMAS.get(cfg.game.name)) is not None:  # ``game`` holds one of several schemas
        _check_keys(cfg.game, game_schema, "game.")
    ecology.expand(cfg)
    keys = ["model", "opponent", *(f"opponents.{k}" for k in cfg.opponents)]
    models = {key: model_config(cfg, key) for key in keys + ["access.selector"] * (cfg.access.selector is not None)}
    for key, model in models.items():
        problem = roster.identify(key, model)
        _check(problem is None, problem or "")
    _check(isinstance(cfg.seed, int) and cfg.seed >= 0, f"seed={cfg.seed} must be an integer >= 0")
    _check(bool(str(cfg.store).strip()), "store='' must name a directory (default: outputs/store)")
    env = cfg.env
    _check(0.0 <= env.competition <= 1.0, f"env.competition={env.competition} must be in [0, 1]")
    _check(0.0 < env.gamma <= 1.0, f"env.gamma={env.gamma} must be in (0, 1]")
    _check(2 <= env.n_agents <= 10, f"env.n_agents={env.n_agents} must be an integer in [2, 10]")
    _check(2 <= env.n_items <= 12, f"env.n_items={env.n_items} must be an integer in [2, 12]")
    _check(env.max_rounds >= 1, f"env.max_rounds={env.max_rounds} must be >= 1")
    _check(env.discussion_turns >= 1, f"env.discussion_turns={env.discussion_turns} must be >= 1")
    _check(env.max_reasks >= 0, f"env.max_reasks={env.max_reasks} must be >= 0")
    try:
        vote_threshold(env.vote_threshold)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _check_names(env.item_names, env.n_items, "env.item_names", "env.n_items")
    _validate_game(cfg)
    _validate_axes(cfg)
    pref = cfg.preferences
    _check(0.0 <= pref.cooperation <= 1.0, f"preferences.cooperation={pref.cooperation} must be in [0, 1]")
    _check(
        pref.kind == PreferenceKind.matrix or pref.cooperation == 0.0,
        "preferences.cooperation is only used with preferences=matrix; set it to 0 or choose preferences=matrix",
    )
    _check(cfg.n_games >= 0, f"n_games={cfg.n_games} must be >= 0")
    _check(
        len(cfg.opponents) <= env.n_agents - 2,
        f"opponents has {len(cfg.opponents)} entries but env.n_agents={env.n_agents} leaves "
        f"{env.n_agents - 2} seats beyond the model and the opponent",
    )
    for phase in PHASES:
        cap = env.max_tokens[phase]
        _check(cap is None or cap >= 1, f"env.max_tokens.{phase}={cap} must be >= 1 or null")
    validate_run(cfg.run)
    for key, model in models.items():
        validate_model(key, model)


def validate_run(run: Any) -> None:
    """Range checks of the ``run`` group (shared by game jobs and judge jobs)."""
    _check(run.game_concurrency >= 1, f"run.game_concurrency={run.game_concurrency} must be >= 1")
    _check(run.workers is None or run.workers >= 1, f"run.workers={run.workers} must be >= 1 or null (automatic)")
    _check(run.max_retries >= 0, f"run.max_retries={run.max_retries} must be >= 0")
    _check(run.timeout_s > 0, f"run.timeout_s={run.timeout_s} must be > 0")
    _check(run.backoff_base_s > 0, f"run.backoff_base_s={run.backoff_base_s} must be > 0")
    _check(run.backoff_max_s >= run.backoff_base_s,
           f"run.backoff_max_s={run.backoff_max_s} must be >= run.backoff_base_s={run.backoff_base_s}")
    _check(run.budget_usd is None or run.budget_usd > 0, f"run.budget_usd={run.budget_usd} must be > 0 or null")
    _check(
        run.sweep_budget_usd is None or run.sweep_budget_usd > 0,
        f"run.sweep_budget_usd={run.sweep_budget_usd} must be > 0 or null",
    )
    _check(
        re.fullmatch(r"[A-Za-z0-9_.-]+", run.ledger) is not None and run.ledger not in (".", ".."),
        f"run.ledger={run.ledger!r} must be a plain file name (letters, digits, '_', '-', '.')",
    )
    _check(run.cache_dir is None or bool(str(run.cache_dir).strip()),
           "run.cache_dir='' must name a directory, or be null for <store>/.cache")
    _check(run.game_delay_s >= 0, f"run.game_delay_s={run.game_delay_s} must be >= 0")
    _check(0.0 <= run.max_error_fraction <= 1.0, f"run.max_error_fraction={run.max_error_fraction} must be in [0, 1]")


def validate_model(key: str, model: Any) -> None:
    """Checks of one model config under config key ``key`` (a lineup seat, or the judge)."""
    _check_model(key, model)
    _check_lifecycle(key, model)
    _check_reasoning(key, model)
    _check_facts(key, model)


def validate_judge(cfg: Any) -> None:
    """Raise ConfigError for an out-of-range judge job config (``python -m analysis judge``)."""
    check_secrets(cfg)
    _check_keys(cfg, JudgeConfig)
    problem = roster.identify("judge", cfg.judge)
    _check(problem is None, problem or "")
    _check(cfg.max_reasks >= 0, f"max_reasks={cfg.max_reasks} must be >= 0")
    _check(cfg.context_messages >= 0, f"context_messages={cfg.context_messages} must be >= 0")
    validate_run(cfg.run)
    validate_model("judge", cfg.judge)


def today() -> str:
    """The date lifecycle checks use: BARGAIN_TODAY (YYYY-MM-DD) if set, e.g. to re-check a past sweep, else today."""
    return os.environ.get("BARGAIN_TODAY") or dt.date.today().isoformat()


def _check_lifecycle(key: str, model: Any) -> None:
    """Refuse a retired model (unless allowed); warn about one whose retirement is announced."""
    life = model.lifecycle
    retires = life.retires_on
    _check(
        retires is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(retires)) is not None,
        f"{key}.lifecycle.retires_on={retires} must be a date YYYY-MM-DD or null",
    )
    retired = life.status == "retired" or (retires is not None and str(retires) <= today())
    instead = f"use {life.replacement}" if life.replacement else "choose a current model"
    if retired and not model.allow_retired:
        when = f"on {retires}" if retires else "(date not recorded)"
        raise ConfigError(
            f"{key}={model.name} ({model.litellm_model}) was retired {when}; {instead}, "
            f"or set {key}.allow_retired=true if your provider still serves it"
        )
    if not retired and retires is not None:
        _warn_once(f"{key}={model.name} ({model.litellm_model}) retires on {retires}; {instead} before then")


@functools.cache
def _warn_once(message: str) -> None:
    """A warning a sweep would otherwise repeat for every cell."""
    log.warning(message)


def _check_reasoning(key: str, model: Any) -> None:
    """The reasoning dial: allowed values, what the route accepts, and Anthropic's thinking rules."""
    reasoning, dials = model.reasoning, model.reasoning_dials
    _check(
        reasoning.effort is None or reasoning.effort in EFFORTS,
        f"{key}.reasoning.effort={reasoning.effort} must be one of {', '.join(EFFORTS)} or null",
    )
    for field_ in ("budget_tokens", "max_tokens"):
        value = reasoning[field_]
        _check(value is None or value >= 0, f"{key}.reasoning.{field_}={value} must be >= 0 or null")
    for dial in DIALS:
        if reasoning[dial] is not None and dials is not None and dial not in dials:
            accepted = ", ".join(f"reasoning.{d}" for d in dials) or "no reasoning setting"
            raise ConfigError(f"{key}.reasoning.{dial}: {model.litellm_model} accepts {accepted} "
                              f"({key}.reasoning_dials={list(dials)})")
    if reasoning.budget_tokens and model.litellm_model.startswith("anthropic/"):
        _check(reasoning.budget_tokens >= 1024, f"{key}.reasoning.budget_tokens={reasoning.budget_tokens} must be >= 1024 "
                                                "for Anthropic extended thinking (or 0/null to turn it off)")
        temperature = model.params.get("temperature")
        _check(temperature in (None, 1, 1.0), f"{key}.reasoning.budget_tokens needs temperature 1 on Anthropic "
                                              f"(extended thinking); set {key}.params.temperature=1")


def _check_facts(key: str, model: Any) -> None:
    """Capability metadata and model facts given in files or on the command line have the right types."""
    meta = model.metadata
    for name in ("params_b", "active_params_b", "arena_elo"):
        value = meta.get(name)
        _check(
            value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0),
            f"{key}.metadata.{name}={value} must be a positive number or null",
        )
    release = meta.get("release_date")
    _check(
        release is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(release)) is not None,
        f"{key}.metadata.release_date={release} must be a date YYYY-MM-DD or null",
    )
    _check(
        model.context_window is None or model.context_window > 0,
        f"{key}.context_window={model.context_window} must be > 0 tokens or null",
    )
    for price in ("price_input_per_mtok", "price_output_per_mtok"):
        value = model[price]
        _check(value is None or value >= 0, f"{key}.{price}={value} must be >= 0 (USD per million tokens) or null")
