"""Behaviour tables of a store: the truthfulness ledger, gaslighting flags, judged tactics, their
rates per model with intervals over preference draws, their scaling with capability (the utility
outcomes' fits) and their association with exploitation.

Every behaviour becomes a per agent-game rate (the share of the agent's public messages showing it),
with ``source`` naming where it comes from: ``record`` (the deterministic ledger and the gaslighting
check, always there) or a judge id (labels from ``<store>/judgements``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.behaviour.agreement import kappa
from analysis.behaviour.taxonomy import NAMES
from analysis.fits import fit_law
from analysis.load import load_tables
from analysis.rows import BEHAVIOUR
from analysis.stats import cluster_mean_ci

RECORD = "record"  # behaviours checked against the record itself, no judge
SUMMARY_TABLES = ("truthfulness", "truthfulness_by_round", "truthfulness_rules_vs_judge", "gaslighting_rates",
                  "behaviour_rates", "behaviour_scaling", "behaviour_exploitation")
LAW_COLS = ("n_obs", "n_clusters", "mean", "slope", "slope_ci_low", "slope_ci_high", "slope_p",
            "slope_boot_low", "slope_boot_high", "note")
_GAME_KEY = ["experiment_id", "game_index"]
_SEAT_KEY = [*_GAME_KEY, "seat"]
MESSAGE_COLS = [*_SEAT_KEY, "round", "turn", "n_claims", "n_false", "n_gaslighting"]
CLAIM_COLS = [*_SEAT_KEY, "round", "turn", "extractor", "item", "kind", "stated", "text", "true_value", "true_rank",
              "threshold", "false", "size"]
FLAG_COLS = [*_SEAT_KEY, "round", "turn", "message", "kind", "about", "statement", "verdict", "evidence"]


def record_frames(store: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(messages, claims, gaslighting) of every complete game: one row per public message, per claim
    extracted by the rules, and per gaslighting flag (see :func:`analysis.rows.behaviour_rows`), from
    the store's index, which reads only the records it has not seen."""
    return behaviour_frames(load_tables(store, BEHAVIOUR))


def behaviour_frames(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(messages, claims, gaslighting) out of the index's behaviour tables, with every column even when empty."""
    return tuple(tables[name].reindex(columns=columns)
                 for name, columns in zip(BEHAVIOUR, (MESSAGE_COLS, CLAIM_COLS, FLAG_COLS)))


def judged_frames(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(labels, claims) of every validly judged message: a 0/1 column per category per message and
    judge, and one row per claim the judge extracted (``extractor`` = the judge id)."""
    rows, claims, entries = [], [], iter(())
    if Path(root).is_dir():  # only then the judge module: it loads the Backend (LiteLLM), seconds of start-up
        from analysis.behaviour.judge import iter_judgements

        entries = iter_judgements(root)
    for e in entries:
        if e["labels"] is None:
            continue
        key = {k: e[k] for k in (*_SEAT_KEY, "round", "turn")}
        rows.append({"source": e["judge_id"], **key, **{c: int(c in e["labels"]) for c in NAMES}})
        claims += [{**key, "extractor": e["judge_id"], **c} for c in e["claims"]]
    return (pd.DataFrame(rows, columns=["source", *_SEAT_KEY, "round", "turn", *NAMES]),
            pd.DataFrame(claims, columns=CLAIM_COLS))


def agent_rates(messages: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """Per source, behaviour and agent-game: ``rate`` = share of the agent's messages showing it."""
    record = messages.assign(source=RECORD, misrepresentation=(messages["n_false"] > 0).astype(int),
                             gaslighting=(messages["n_gaslighting"] > 0).astype(int))
    long = [record.melt(id_vars=["source", *_SEAT_KEY], value_vars=["misrepresentation", "gaslighting"],
                        var_name="behaviour", value_name="shown")]
    if not judged.empty:
        long.append(judged.melt(id_vars=["source", *_SEAT_KEY], value_vars=list(NAMES), var_name="behaviour",
                                value_name="shown"))
    frame = pd.concat(long, ignore_index=True)
    return (frame.groupby(["source", "behaviour", *_SEAT_KEY], sort=True)["shown"]
            .agg(rate="mean", n_messages="size").reset_index())


def rates_table(rates: pd.DataFrame, agents: pd.DataFrame, keys: list[str], n_boot: int,
                seed: int) -> pd.DataFrame:
    """Mean rate per source, behaviour, model and group, with cluster-bootstrap intervals over draws."""
    df = rates.merge(agents[[*_SEAT_KEY, "model", "draw_id", *keys]], on=_SEAT_KEY)
    rng = np.random.default_rng(seed)
    rows = []
    for group, d in df.groupby(["source", "behaviour", "model", *keys], sort=True, dropna=False):
        m, lo, hi = cluster_mean_ci(d["rate"], d["draw_id"], n_boot, rng)
        rows.append({**dict(zip(["source", "behaviour", "model", *keys], group)), "n_agent_games": len(d),
                     "n_messages": int(d["n_messages"].sum()), "rate": m, "rate_low": lo, "rate_high": hi})
    return pd.DataFrame(rows)


def _law(x, y, clusters, family: str, n_boot: int, seed: int) -> dict:
    fit = fit_law(np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(clusters), family,
                  n_boot=n_boot, seed=seed)
    return {k: fit.row.get(k, np.nan if k != "note" else None) for k in LAW_COLS}


def scaling_table(rates: pd.DataFrame, focal: pd.DataFrame, keys: list[str], n_boot: int,
                  seed: int) -> pd.DataFrame:
    """Each behaviour's rate against the focal model's capability: the utility outcomes' fractional-logit law."""
    df = rates.merge(focal[[*_SEAT_KEY, "capability", "draw_id", *keys]], on=_SEAT_KEY)
    rows = []
    for i, (group, d) in enumerate(df.groupby(["source", "behaviour", *keys], sort=True, dropna=False)):
        rows.append({**dict(zip(["source", "behaviour", *keys], group)),
                     **_law(d["capability"], d["rate"], d["draw_id"], "logit", n_boot, seed + i)})
    return pd.DataFrame(rows)


def exploitation_table(rates: pd.DataFrame, focal: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Does the focal model win by a behaviour? Its share and exploitation index regressed on the rate,
    pooled over groups, clustered by draw: a positive slope means games with more of it paid more."""
    df = rates.merge(focal[[*_SEAT_KEY, "draw_id", "share", "exploitation_index"]], on=_SEAT_KEY)
    rows = []
    for i, ((source, behaviour), d) in enumerate(df.groupby(["source", "behaviour"], sort=True)):
        for outcome, family in (("share", "logit"), ("exploitation_index", "gaussian")):
            e = d.dropna(subset=[outcome])
            rows.append({"source": source, "behaviour": behaviour, "outcome": outcome,
                         **_law(e["rate"], e[outcome], e["draw_id"], family, n_boot, seed + i)})
    return pd.DataFrame(rows)


def _message_falsity(messages: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """Per message: claims and false claims of one extractor (messages without claims count 0)."""
    keys = [*_SEAT_KEY, "round", "turn"]
    counts = (claims.groupby(keys)["false"].agg(n_claims="size", n_false="sum").reset_index()
              if not claims.empty else pd.DataFrame(columns=[*keys, "n_claims", "n_false"]))
    out = messages[keys].merge(counts, on=keys, how="left").fillna({"n_claims": 0, "n_false": 0})
    return out.assign(misrep=(out["n_false"] > 0).astype(float))


def truthfulness_tables(messages: pd.DataFrame, judged: pd.DataFrame, claims: pd.DataFrame,
                        agents: pd.DataFrame, n_boot: int, seed: int) -> dict[str, pd.DataFrame]:
    """The ledger per extractor (the rules, and each judge on the messages it judged): per model and
    competition level, per model and round, and how often the judge and the rules agree on a message."""
    rng = np.random.default_rng(seed)
    info = agents[[*_SEAT_KEY, "model", "competition", "draw_id"]]
    extractors = {"rules": messages} | {j: d for j, d in judged.groupby("source")}
    rows, by_round, compared, flags = [], [], [], {}
    for extractor, msgs in extractors.items():
        mine = claims[claims["extractor"] == extractor] if not claims.empty else claims
        per_message = _message_falsity(msgs, mine).merge(info, on=_SEAT_KEY)
        flags[extractor] = per_message.set_index([*_SEAT_KEY, "round", "turn"])["misrep"]
        per_agent = per_message.groupby(_SEAT_KEY).agg(
            n_messages=("turn", "size"), n_claims=("n_claims", "sum"), misrep_rate=("misrep", "mean"),
            n_false=("n_false", "sum")).reset_index().merge(info, on=_SEAT_KEY)
        per_agent["false_claim_share"] = per_agent["n_false"] / per_agent["n_claims"].where(per_agent["n_claims"] > 0)
        if not mine.empty:
            sizes = mine[mine["false"]].groupby(_SEAT_KEY)["size"].mean().rename("misrep_size")
            per_agent = per_agent.merge(sizes, on=_SEAT_KEY, how="left")
        else:
            per_agent["misrep_size"] = np.nan
        for (model, comp), d in per_agent.groupby(["model", "competition"], sort=True):
            row = {"extractor": extractor, "model": model, "competition": comp, "n_agent_games": len(d),
                   "n_messages": int(d["n_messages"].sum()), "n_claims": int(d["n_claims"].sum())}
            for col in ("misrep_rate", "false_claim_share", "misrep_size"):
                m, lo, hi = cluster_mean_ci(d[col], d["draw_id"], n_boot, rng)
                row.update({col: m, f"{col}_low": lo, f"{col}_high": hi})
            rows.append(row)
        for (model, rnd), d in per_message.groupby(["model", "round"], sort=True):
            m, lo, hi = cluster_mean_ci(d["misrep"], d["draw_id"], n_boot, rng)
            by_round.append({"extractor": extractor, "model": model, "round": rnd, "n_messages": len(d),
                             "misrep_rate": m, "misrep_rate_low": lo, "misrep_rate_high": hi})
    for extractor, flag in flags.items():
        if extractor == "rules":
            continue
        both = pd.concat([flags["rules"].rename("rules"), flag.rename("judge")], axis=1, join="inner").reset_index()
        both = both.merge(info, on=_SEAT_KEY)
        compared.append({"extractor": extractor, **kappa(both["rules"], both["judge"], both["draw_id"], n_boot, seed)})
    return {"truthfulness": pd.DataFrame(rows), "truthfulness_by_round": pd.DataFrame(by_round),
            "truthfulness_rules_vs_judge": pd.DataFrame(compared)}


def behaviour_tables(store: str | Path, agents: pd.DataFrame, focal: pd.DataFrame, keys: list[str],
                     judgements: str | Path | None = None, n_boot: int = 1000, seed: int = 0,
                     recorded: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
                     ) -> dict[str, pd.DataFrame]:
    """Every behaviour table of a store; judged tactics only when ``judgements`` (default
    ``<store>/judgements``) holds labels. ``focal`` are the fit rows with a ``capability`` column;
    ``recorded`` the store's :func:`record_frames` when already loaded."""
    messages, claims, flags = recorded if recorded is not None else record_frames(store)
    if messages.empty:
        return {}
    judged, judge_claims = judged_frames(Path(judgements) if judgements else Path(store) / "judgements")
    claims = pd.concat([c for c in (claims, judge_claims) if not c.empty] or [claims], ignore_index=True)
    rates = agent_rates(messages, judged)
    tables = {"claims": claims, "gaslighting": flags,
              **truthfulness_tables(messages, judged, claims, agents, n_boot, seed)}
    tables["gaslighting_rates"] = rates_table(rates[rates["behaviour"] == "gaslighting"], agents, ["competition"],
                                              n_boot, seed)
    tables["behaviour_rates"] = rates_table(rates, agents, keys, n_boot, seed)
    tables["behaviour_scaling"] = scaling_table(rates, focal, keys, n_boot, seed)
    tables["behaviour_exploitation"] = exploitation_table(rates, focal, n_boot, seed)
    if not judged.empty:
        tables["behaviour_messages"] = judged
    return tables
