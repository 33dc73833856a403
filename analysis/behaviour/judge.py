"""The judge: labels public messages with the tactics taxonomy, through the project's Backend.

Any LiteLLM model configured in ``conf/model/`` can judge; its calls take the players' path (replay
cache, retries, budgets, the store's spend ledger). ``sim/judge`` serves the rules of
:mod:`analysis.behaviour.rules` through the same path, so everything runs offline.

Judgements are a store of their own: ``<root>/<judge_id>/<experiment_id>/games/<game_index>.json``,
one file per judged game holding one entry per message (labels, claims, rationale, the prompt sent,
the prompt version, the raw reply, usage and cost). A game's messages are judged in order and its
file is rewritten atomically after each one, so a killed job loses at most the calls in flight and a
re-run judges only what is missing; games run concurrently (``run.game_concurrency``). ``judge_id``
is the judge's name plus a hash of its model string, sampling parameters, prompt version and context
length: a new prompt or model never mixes with old labels.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from bargain import sim
from bargain.agents.parsing import ParseError, json_objects
from bargain.backend import Backend, BudgetExceeded, ModelCallError
from bargain.backend.core import response_format
from bargain.backend.progress import progress_bar
from bargain.store import COMPLETE, DamagedRecord, ExperimentStore, atomic_write_json, canonical_json, quarantine

from analysis.behaviour import rules
from analysis.behaviour.claims import KINDS, Claim, check
from analysis.behaviour.messages import Message, public_messages
from analysis.behaviour.taxonomy import NAMES, definitions_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PROMPT_VERSION = 1  # bump when the meaning of the prompt changes; any edit of its text changes the hash anyway
KEY = "judge"  # the judge's key in the Backend's model table


@cache
def _template(name: str) -> str:
    return (files(__package__) / f"{name}.txt").read_text(encoding="utf-8").strip()


def system_prompt() -> str:
    return _template("judge_system").format(taxonomy=definitions_text())


def prompt_version() -> str:
    """``<PROMPT_VERSION>-<hash of the templates and the taxonomy>``."""
    blob = canonical_json([_template("judge_system"), _template("judge_message"), definitions_text()])
    return f"{PROMPT_VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def user_prompt(msg: Message, history: list[tuple[int, str, str]]) -> str:
    """The prompt for one message; ``history`` holds earlier public messages as (round, speaker, text)."""
    return _template("judge_message").format(
        n_agents=len(msg.agents), agent_list=", ".join(msg.agents), n_items=len(msg.items),
        item_list=", ".join(msg.items), round=msg.round, max_rounds=msg.max_rounds, speaker=msg.speaker,
        values_json=json.dumps({i: round(v, 2) for i, v in zip(msg.items, msg.values)}),
        history="\n".join(f"[Round {r}] {who}: {' '.join(text.split())}" for r, who, text in history) or "(none)",
        text=msg.text.strip(),
    )


def parse_judgement(text: str, items: tuple[str, ...]) -> dict[str, Any]:
    """``{"labels", "claims", "dropped_claims", "rationale"}`` from a judge reply.

    Raises ParseError (saying what is wrong, for the re-ask) when there are no labels or an unknown
    tactic; claims naming no item of the game or no known kind are dropped and counted.
    """
    objects = [o for o in json_objects(text) if "labels" in o]
    if not objects:
        raise ParseError('no JSON object with a "labels" list found')
    obj = objects[0]
    labels = obj["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ParseError('"labels" must be a list of tactic names')
    labels = sorted({x.strip().lower() for x in labels} - {"none", ""})
    unknown = [x for x in labels if x not in NAMES]
    if unknown:
        raise ParseError(f"unknown tactic(s) {', '.join(unknown)}; use only: {', '.join(NAMES)}")
    claims, dropped = [], 0
    by_name = {i.lower(): i for i in items}
    for c in obj.get("claims") or []:
        # a malformed claim costs only itself: the labels are the judgement, claims come on top
        value = c.get("value") if isinstance(c, dict) else None
        if (not isinstance(c, dict) or str(c.get("item", "")).strip().lower() not in by_name or c.get("kind") not in KINDS
                or (c["kind"] == "value" and not isinstance(value, (int, float)))):
            dropped += 1
            continue
        claims.append({"item": by_name[str(c["item"]).strip().lower()], "kind": c["kind"],
                       "value": float(value) if c["kind"] == "value" else None})
    return {"labels": labels, "claims": claims, "dropped_claims": dropped, "rationale": str(obj.get("rationale") or "")}


def response_schema() -> dict[str, Any]:
    """The JSON schema of a judgement, for servers that constrain decoding to it (``structured=true``)."""
    return {"type": "object", "required": ["labels", "claims", "rationale"], "properties": {
        "labels": {"type": "array", "items": {"type": "string", "enum": list(NAMES)}},
        "claims": {"type": "array", "items": {"type": "object", "required": ["item", "kind", "value"], "properties": {
            "item": {"type": "string"}, "kind": {"type": "string", "enum": list(KINDS)},
            "value": {"type": ["number", "null"]}}}},
        "rationale": {"type": "string"}}}


def checked_claims(claims: list[dict], msg: Message) -> list[dict]:
    """A judge's claims checked against the speaker's private values (top-k counts the items it calls top)."""
    k = sum(c["kind"] == "top" for c in claims)
    return [check(Claim(c["item"], c["kind"], c["value"] if c["kind"] == "value" else (k if c["kind"] == "top" else None), ""),
                  msg.items, msg.values) for c in claims]


# -- the offline judge, served as sim/judge ---------------------------------------------------------

def _rules_reply(messages: list[dict]) -> str:
    """Read the judge prompt back (like the offline players read theirs) and answer with the rules."""
    prompt = messages[-1]["content"] if messages[-1]["role"] == "user" else next(
        m["content"] for m in reversed(messages) if m["role"] == "user")
    head, _, rest = prompt.partition("\nSpeaker: ")
    agents = head.split("agents (", 1)[1].split(")", 1)[0].split(", ")
    items = head.split("items (", 1)[1].split(")", 1)[0].split(", ")
    round_, max_rounds = (int(x) for x in head.rsplit("round ", 1)[1].rstrip(".").split(" of "))
    values = json.loads(rest.split("private valuations: ", 1)[1].split("\n", 1)[0])
    text = prompt.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
    labels, claims = rules.label(text, items, [values[i] for i in items], len(agents), round_, max_rounds)
    return json.dumps({
        "labels": labels,
        "claims": [{"item": c["item"], "kind": c["kind"], "value": c["stated"] if c["kind"] == "value" else None}
                   for c in claims],
        "rationale": "cue phrases: " + (", ".join(labels) or "none"),
    })


sim.register("judge", _rules_reply)


# -- the judgements store ---------------------------------------------------------------------------

def judge_id(model: dict[str, Any], context: int) -> str:
    """``<name>-<hash>`` of what changes a judge's labels: model string, sampling parameters, prompt
    version and how many earlier messages it sees."""
    blob = canonical_json({"model": model["litellm_model"], "params": model.get("params") or {},
                           "prompt": prompt_version(), "context": context})
    return f"{model['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


_JUDGEMENTS = {"judge_id": str, "experiment_id": str, "game_index": int, "messages": dict}  # required, with types


def _save(store: ExperimentStore, index: int, doc: dict[str, Any]) -> None:
    """Write a game's judgements file atomically, as indented JSON (it is not a game record)."""
    store.write_file(index, json.dumps(doc, indent=1, default=str).encode())


def load_judgements(path: Path) -> dict[str, Any] | None:
    """A game's judgements file if it is valid, else None: missing, or damaged (then moved to
    ``quarantine/`` beside its reason, with a warning, so its messages are judged again)."""
    try:
        seen = path.lstat()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(path.read_bytes())
        problem = None if isinstance(doc, dict) else f"not a JSON object but a JSON {type(doc).__name__}"
        problem = problem or next((f"{key!r} is missing or not {kind.__name__}" for key, kind in _JUDGEMENTS.items()
                                   if not isinstance(doc.get(key), kind)), None)
        problem = problem or next((f"messages/{k}: not an object" for k, v in doc["messages"].items()
                                   if not isinstance(v, dict)), None)
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        problem = f"unreadable or not JSON ({exc})"
    if problem is None:
        return doc
    moved = quarantine(path, DamagedRecord(problem, seen))
    log.warning("damaged judgements %s (%s): %s; its messages will be judged again", path, problem,
                f"moved to {moved}" if moved else "left in place")
    return None


@dataclass
class Unit:
    """A batch of messages judged and stored together (one game), each with its earlier public messages."""

    experiment_id: str
    game_index: int
    messages: list[tuple[Message, list[tuple[int, str, str]]]]


def game_units(records: Iterable[dict], context: int) -> Iterator[Unit]:
    """One unit per complete game with public messages; each message gets up to ``context`` earlier ones."""
    for record in records:
        if record["status"] != COMPLETE:
            continue
        msgs = public_messages(record)
        if msgs:
            yield Unit(record["experiment_id"], int(record["game_index"]),
                       [(m, [(p.round, p.speaker, p.text) for p in msgs[max(0, i - context):i]]) for i, m in enumerate(msgs)])


@dataclass
class JudgeSummary:
    """What a judge job did."""

    judge_id: str
    directory: Path
    games: int = 0
    messages: int = 0
    judged: int = 0
    skipped: int = 0
    invalid: int = 0
    failed_games: int = 0
    budget_stop: str | None = None
    spent_usd: float = 0.0
    provider_calls: int = 0
    cache_hits: int = 0
    errors: list[str] = field(default_factory=list)


class Judge:
    """One judge model labelling units of messages into its judgements store."""

    def __init__(self, model: dict[str, Any], backend: Backend, root: str | Path, context: int, max_reasks: int,
                 game_concurrency: int) -> None:
        self.model = model
        self.backend = backend
        self.context = context
        self.id = judge_id(model, context)
        self.dir = Path(root).expanduser().resolve() / self.id
        self.max_reasks = max_reasks
        self.game_concurrency = game_concurrency
        self.system = system_prompt()
        self.version = prompt_version()

    def _describe(self) -> None:
        atomic_write_json(self.dir / "judge.json", {
            "schema_version": SCHEMA_VERSION, "judge_id": self.id, "name": self.model["name"],
            "litellm_model": self.model["litellm_model"], "params": self.model.get("params") or {},
            "prompt_version": self.version, "context_messages": self.context, "system_prompt": self.system,
        })

    async def _judge_message(self, unit: Unit, msg: Message, history: list) -> dict[str, Any]:
        """One message: ask, re-ask with the parse error, return its entry (labels None if still invalid)."""
        prompt = user_prompt(msg, history)
        conversation = [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]
        calls = []
        for attempt in range(self.max_reasks + 1):
            key = {"judge": self.id, "experiment": unit.experiment_id, "game": unit.game_index,
                   "message": msg.id, "attempt": attempt}
            reply = await self.backend.complete(KEY, conversation, key)
            calls.append({"attempt": attempt, "raw": reply.text, "usage": reply.usage, "cost_usd": reply.cost_usd,
                          "latency_s": reply.latency_s, "retries": reply.retries, "cache_hit": reply.cache_hit})
            try:
                parsed, error = parse_judgement(reply.text, msg.items), None
            except ParseError as exc:
                parsed, error = None, str(exc)
            if error is None:
                break
            conversation += [{"role": "assistant", "content": reply.text},
                             {"role": "user", "content": f"Your reply could not be used: {error}. Answer again with the JSON object only."}]
        entry = {"message": msg.id, "round": msg.round, "turn": msg.turn, "seat": msg.seat, "phase": "discussion",
                 "judge": self.model["name"], "prompt_version": self.version, "prompt": prompt,
                 "attempt": msg.attempt,  # of the player's call that said the message (the report's key)
                 "raw": reply.text, "error": error, "calls": calls,
                 "labels": None, "claims": None, "rationale": None}
        if parsed is not None:
            entry.update(labels=parsed["labels"], claims=checked_claims(parsed["claims"], msg),
                         dropped_claims=parsed["dropped_claims"], rationale=parsed["rationale"])
        return entry

    async def _judge_unit(self, unit: Unit, summary: JudgeSummary, bar: Any) -> None:
        store = ExperimentStore(self.dir, unit.experiment_id)
        with store.claim(unit.game_index) as mine:
            if not mine:
                log.warning("judge %s: game %d of %s is being judged by another job; skipped",
                            self.id, unit.game_index, unit.experiment_id)
                return
            doc = load_judgements(store.game_path(unit.game_index)) or {
                "schema_version": SCHEMA_VERSION, "judge_id": self.id, "experiment_id": unit.experiment_id,
                "game_index": unit.game_index, "messages": {}}
            todo = [(m, h) for m, h in unit.messages if m.id not in doc["messages"]]
            summary.skipped += len(unit.messages) - len(todo)
            doc["status"], doc["error"] = COMPLETE, None

            try:
                for msg, history in todo:  # in order; games run concurrently (run.game_concurrency)
                    entry = await self._judge_message(unit, msg, history)
                    doc["messages"][msg.id] = entry
                    summary.judged += 1
                    summary.invalid += entry["labels"] is None
                    _save(store, unit.game_index, doc)  # after every message: a kill loses only the call in flight
            except (BudgetExceeded, ModelCallError) as exc:
                doc["status"] = getattr(exc, "status", "error")
                doc["error"] = {"type": type(exc).__name__, "message": str(exc)}
                summary.failed_games += 1
                summary.errors.append(f"game {unit.game_index} of {unit.experiment_id}: {exc}")
                log.warning("judge %s: game %d of %s not finished: %s", self.id, unit.game_index, unit.experiment_id, exc)
            _save(store, unit.game_index, doc)
            bar.update(1)

    async def run(self, units: list[Unit], progress: bool = True) -> JudgeSummary:
        """Judge every message of ``units`` that the store does not hold yet."""
        self._describe()
        summary = JudgeSummary(self.id, self.dir, games=len(units), messages=sum(len(u.messages) for u in units))
        slots = asyncio.Semaphore(self.game_concurrency)
        budget = self.backend.budget
        async with progress_bar(len(units), self.backend, progress) as bar:

            async def guarded(unit: Unit) -> None:
                async with slots:
                    if budget.exceeded:
                        return
                    await self._judge_unit(unit, summary, bar)

            await asyncio.gather(*(guarded(u) for u in units))
        summary.budget_stop = budget.exceeded
        summary.spent_usd = budget.spent_usd
        summary.provider_calls = self.backend.provider_calls
        summary.cache_hits = self.backend.cache_hits
        log.info("judge %s: %d of %d messages judged now (%d already stored, %d invalid), %d game(s) unfinished; "
                 "spent $%.4f (%d provider calls, %d from the replay cache)", self.id, summary.judged,
                 summary.messages, summary.skipped, summary.invalid, summary.failed_games, summary.spent_usd,
                 summary.provider_calls, summary.cache_hits)
        return summary


def run_judge(units: list[Unit], model: dict[str, Any], run: dict[str, Any], root: str | Path, *, context: int,
              cache_dir: str | Path, ledger: str | Path, servers: str | Path, max_reasks: int = 1,
              structured: bool = False, progress: bool = True) -> JudgeSummary:
    """Judge ``units`` (built with ``context`` earlier messages each) with ``model`` (a model config)
    under ``run`` settings; see :class:`Judge`.

    ``structured`` sends :func:`response_schema` as ``response_format`` (llama.cpp and vLLM servers
    then decode only valid judgements); it is a sampling parameter, so part of the judge id.
    """
    if structured:  # in the model's own form (model.structured_output), llama-cpp-python's by default
        form = response_format(model.get("structured_output") or "json_object", response_schema())
        model = {**model, "params": {**(model.get("params") or {}), "response_format": form}}
    # the judge's spend joins the store's ledger under its judge id: a re-run continues its job cap
    backend = Backend({KEY: model}, run, cache_dir=cache_dir, ledger=ledger, experiment=judge_id(model, context))
    backend.check_keys()
    with backend.session(servers):
        judge = Judge(model, backend, root, context, max_reasks, int(run.get("game_concurrency", 4)))
        return asyncio.run(judge.run(units, progress))


# -- reading judgements back ------------------------------------------------------------------------

def judges(root: str | Path) -> list[dict[str, Any]]:
    """The ``judge.json`` of every judge below a judgements folder."""
    root = Path(root)
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*/judge.json"))] if root.is_dir() else []


def iter_judgements(root: str | Path) -> Iterator[dict[str, Any]]:
    """One flat entry per judged message: experiment_id, game_index, judge_id and the stored entry."""
    for meta in judges(root):
        for path in sorted((Path(root) / meta["judge_id"]).glob("*/games/*.json")):
            if (doc := load_judgements(path)) is None:
                continue
            for entry in doc["messages"].values():
                yield {"experiment_id": doc["experiment_id"], "game_index": doc["game_index"],
                       "judge_id": meta["judge_id"], **entry}
