"""Judges you can trust: agreement of every judge with the hand-labelled set and with each other,
and the claim extractors' precision and recall.

The set (``labelled.jsonl`` beside this module) holds public messages from real SmolLM2 games played
with this project and messages written to cover every category, each with its context (items,
agents, the speaker's private values, earlier messages), its hand labels (taxonomy definitions in
:mod:`analysis.behaviour.taxonomy`) and its hand-extracted claims. ``group`` names the game or
written scenario a message belongs to: the cluster for every interval.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

import pandas as pd

from analysis.behaviour.agreement import kappa, precision_recall
from analysis.behaviour.claims import Claim, check, extract_claims
from analysis.behaviour.judge import Unit, iter_judgements, judges
from analysis.behaviour.messages import Message
from analysis.behaviour.taxonomy import NAMES

LABELLED = files(__package__) / "labelled.jsonl"
EXPERIMENT = "labelled-set"
HAND = "hand"
RULES_EXTRACTOR = "rules (deterministic)"


def load_labelled(path: str | Path | None = None) -> list[dict]:
    """The hand-labelled messages, each with a ``message`` (its :class:`Message`) added."""
    text = Path(path).read_text(encoding="utf-8") if path else LABELLED.read_text(encoding="utf-8")
    items = [json.loads(line) for line in text.splitlines() if line.strip()]
    turns: dict[str, int] = {}
    for x in items:
        unknown = set(x["labels"]) - set(NAMES)
        if unknown:
            raise ValueError(f"labelled message {x['id']}: unknown label(s) {sorted(unknown)}")
        turn = turns[x["group"]] = turns.get(x["group"], -1) + 1
        x["message"] = Message(EXPERIMENT, group_index(x["group"]), int(x["round"]), turn, x["agents"].index(x["speaker"]),
                               x["text"], tuple(x["agents"]), tuple(x["items"]), tuple(float(v) for v in x["values"]),
                               int(x["max_rounds"]))
    return items


def group_index(group: str) -> int:
    """A stable number for a group (its judgements file), unchanged when the set grows."""
    return int(hashlib.sha256(group.encode()).hexdigest()[:6], 16)


def labelled_units(items: list[dict], context: int) -> list[Unit]:
    """The set as judge units, one per group, each message with up to ``context`` earlier ones."""
    units: dict[int, Unit] = {}
    for x in items:
        m = x["message"]
        units.setdefault(m.game_index, Unit(EXPERIMENT, m.game_index, []))
        history = [tuple(h) for h in x.get("history", [])]
        units[m.game_index].messages.append((m, history[len(history) - context:] if context else []))
    return list(units.values())


def _polarity(kind: str) -> str:
    return {"top": "high", "high": "high"}.get(kind, kind)


def _claim_keys(claims: Iterable[dict]) -> set[tuple[str, str]]:
    return {(c["item"], _polarity(c["kind"])) for c in claims}


def _false_keys(claims: Iterable[dict]) -> set[tuple[str, str]]:
    return {(c["item"], _polarity(c["kind"])) for c in claims if c["false"]}


def gold_claims(x: dict) -> list[dict]:
    """The hand-extracted claims of a labelled message, checked against its private values."""
    m = x["message"]
    k = sum(c["kind"] == "top" for c in x["claims"])
    return [check(Claim(c["item"], c["kind"], c.get("value") if c["kind"] == "value" else (k if c["kind"] == "top" else None), ""),
                  m.items, m.values) for c in x["claims"]]


def judged_labels(root: str | Path) -> dict[str, dict[tuple[int, str], dict]]:
    """Per judge id: the valid entries of the labelled set, keyed by (group index, message id)."""
    out: dict[str, dict] = {}
    for e in iter_judgements(root):
        if e["experiment_id"] == EXPERIMENT and e["labels"] is not None:
            out.setdefault(e["judge_id"], {})[(e["game_index"], e["message"])] = e
    return out


def validation_tables(items: list[dict], root: str | Path, n_boot: int = 2000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """``judge_vs_hand``, ``judge_vs_judge`` and ``extraction`` tables for every judge stored under ``root``."""
    keyed = {(x["message"].game_index, x["message"].id): x for x in items}
    per_judge = judged_labels(root)
    names = {j["judge_id"]: j for j in judges(root)}
    vs_hand, vs_judge, extraction = [], [], []

    def add_kappas(rows: list, who: dict, keys: list, get_a, get_b) -> None:
        clusters = [k[0] for k in keys]
        for cat in NAMES:
            a = [cat in get_a(k) for k in keys]
            b = [cat in get_b(k) for k in keys]
            rows.append({**who, "category": cat, **kappa(a, b, clusters, n_boot, seed)})

    for jid, entries in sorted(per_judge.items()):
        keys = [k for k in keyed if k in entries]
        who = {"judge": jid, "model": names.get(jid, {}).get("litellm_model"),
               "coverage": len(keys) / len(keyed)}
        add_kappas(vs_hand, who, keys, lambda k: keyed[k]["labels"], lambda k, e=entries: e[k]["labels"])
        extraction += _extraction_rows(jid, [keyed[k] for k in keys], [entries[k]["claims"] for k in keys], n_boot, seed)
    for (ja, ea), (jb, eb) in itertools.combinations(sorted(per_judge.items()), 2):
        keys = [k for k in keyed if k in ea and k in eb]
        add_kappas(vs_judge, {"judge_a": ja, "judge_b": jb}, keys, lambda k, e=ea: e[k]["labels"],
                   lambda k, e=eb: e[k]["labels"])
    rules_claims = [[check(c, x["message"].items, x["message"].values)
                     for c in extract_claims(x["text"], x["message"].items)] for x in items]
    extraction = _extraction_rows(RULES_EXTRACTOR, items, rules_claims, n_boot, seed) + extraction
    return {
        "judge_vs_hand": pd.DataFrame(vs_hand), "judge_vs_judge": pd.DataFrame(vs_judge),
        "extraction": pd.DataFrame(extraction),
    }


def _extraction_rows(extractor: str, items: list[dict], predicted: list[list[dict]], n_boot: int,
                     seed: int) -> list[dict]:
    """Precision and recall of extracted claims (item and direction) and of false claims, vs the hand claims."""
    clusters = [x["message"].game_index for x in items]
    rows = []
    for target, keys in (("claims", _claim_keys), ("false claims", _false_keys)):
        gold = [keys(gold_claims(x)) for x in items]
        pred = [keys(p) for p in predicted]
        hits = [len(g & p) for g, p in zip(gold, pred)]
        rows.append({"extractor": extractor, "target": target,
                     **precision_recall(hits, [len(p) for p in pred], hits, [len(g) for g in gold], clusters, n_boot, seed)})
    return rows
