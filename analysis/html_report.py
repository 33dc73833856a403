"""The HTML report: one offline file with every analysis table, linked figures and every game.

The page is built from the analysis result generically: each table in ``Result.tables`` becomes a
section, and each one with intervals that has no figure of its own gets a forest plot, so tables
added to the analysis show up without code here. Figures are drawn in the browser as inline SVG
from those tables; every point, cell and row links to the games behind it. Games are listed from
the ``games`` table and each one opens in a transcript viewer. To stay fast at tens of thousands
of games, the per-game details are gzip blocks (base64) decoded on demand with the browser's
``DecompressionStream``: embedded in the file, or in a folder beside it for very large stores.
Nothing is fetched: the CSS and JavaScript of ``analysis/web/`` are inlined.

Judge labels are shown on the messages they label when a judgements folder exists (the store
``python -m analysis judge`` writes, or JSON Lines, one object per labelled message; see
``load_judge_labels``).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
import math
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.behaviour.judge import iter_judgements
from analysis.game_views import game_view
from analysis.load import condition_cols, experiment_dirs, iter_records
from analysis.load import capability_label as axis_label
from analysis.report import AXES_TABLES, Result, group_keys

log = logging.getLogger(__name__)

GAMES_PER_BLOCK = 32  # games per compressed block: one block is decoded when one of its games opens
EMBED_MB = 64.0  # compressed game details up to this size go into the file, beyond it into a folder beside it
MAX_TABLE_ROWS = 2000  # longer tables are cut in the page (the CSV beside it has every row)
TIDY_TABLES = ("games", "agents")  # one row per game or seat: shown as the game list, not as tables
FIGURE_DATA = ("scaling_curves",)  # drawn in a figure, not worth a table section
# Game-list columns: (games-table column, index key). The index keys are what the page filters on.
INDEX_COLUMNS = (("experiment_id", "exp"), ("game_index", "idx"), ("focal_model", "model"),
                 ("opponent", "opponent"), ("competition", "competition"), ("focal_seat", "seat"),
                 ("agreement_round", "round"), ("rounds_played", "rounds"), ("focal_share", "share"),
                 ("focal_discounted_utility", "utility"), ("focal_exploitation_index", "ei"),
                 ("efficiency", "efficiency"), ("cost_usd", "cost"))
# Record fields kept per call: everything the viewer shows (the messages sent are left out; the
# record on disk has them).
CALL_FIELDS = ("seat", "round", "phase", "attempt", "reply", "error", "latency_s", "cost_usd")
JUDGE_KEY = ("experiment_id", "game_index", "round", "phase", "seat", "attempt")
NOTES = {
    "headline": "The focal model's share of the total utility against capability, per opponent and "
                "condition: fractional-logit slope with a cluster-jackknife Wald interval (slope_ci) and a "
                "bootstrap interval over preference draws (slope_boot); preferred law by (Q)AIC; crossover "
                "where the fitted share reaches the Nash-bargaining share; leave-the-strongest-out backtest.",
    "scaling": "Every fitted law (share: fractional logit; exploitation index: least squares).",
    "scaling_points": "Per model and group: mean outcomes with 95% bootstrap intervals over preference draws.",
    "scaling_curves": "The fitted laws on a grid of capability with 95% bootstrap bands.",
    "ratings": "Bradley-Terry / Plackett-Luce ratings on the Elo scale from each game's ranking by "
               "discounted utility, with bootstrap intervals over preference draws.",
    "seat_effect": "Seat advantage from counterbalanced games: focal share at a seat minus its mean over "
                   "the seats of the same draw.",
    "competition": "Outcomes per competition level, opponent and focal model (and pooled: 'all').",
    "validity": "Format failures per model and role, kept apart from payoffs; payoffs also over games "
                "in which every move was valid.",
    "branch_effects": "Counterfactual branches (python -m bargain.branch) of the parent game in parent_record, "
                      "replayed exactly to the branch point: the intervention's effect on each seat's discounted "
                      "utility against control branches from the same point, with 95% bootstrap intervals; read "
                      "along point_order for one game and seat, it is the game's turning-point view.",
    "branch_effects_pooled": "The branches' effects per branch point and intervention, averaged over parent games "
                             "(intervals resample games).",
    "turning_points": "Per game and swap: the last branch point at which swapping the seat's model still changes "
                      "its result (decided_at), and the next one (turning_point), after which it no longer does.",
    "name_effect": "Name effect: the share of the seat holding a display name minus the mean share of the seats "
                   "of the same game, per model and pooled ('all'); seats lists the seats the name held.",
    "ecology": "Games of three or more: every seat's payoff relative to the other seats of its game (vs_others, "
               "utility units), its share relative to an equal split (relative_share, 1 = equal) and relative to "
               "the reference solution (exploitation index vs the Nash bargaining solution). Invasion: one focal "
               "model among copies of a resident (against = the resident, or the invader for resident seats).",
    "perturbation_variance": "Fraction of the focal share's variance explained by the model, the prompt "
                             "perturbation and the preference draw (main effects); residual = interactions and noise.",
    "perturbation_slope": "The focal share's capability slope (fractional logit) per prompt perturbation, its "
                          "difference from the unperturbed slope, and Cochran's Q test of equal slopes; stable = "
                          "not rejected at 5% and every slope has the unperturbed sign.",
    "access": "Access scaling: the focal share, calls and cost per game by the number of drafts k per move.",
}


def write_report(result: Result, store: str | Path, path: str | Path, judgements: str | Path | None = None,
                 embed_mb: float = EMBED_MB) -> Path:
    """Write the report of ``result`` (the analysis of ``store``) to the HTML file ``path``.

    The games' details are embedded in the file while they take at most ``embed_mb`` MB
    (compressed); beyond that they go to a folder beside it, ``<name>_files/``, which the page
    reads as scripts (allowed from disk, unlike fetch), one block when one of its games opens.
    """
    store, path = Path(store), Path(path)
    games = result.tables["games"]
    keys = ["experiment_id", "game_index"]
    if games.duplicated(keys).any():
        exp, idx = games.loc[games.duplicated(keys), keys].iloc[0]
        raise ValueError(f"game {idx} of experiment {exp} is stored twice below {store}: report one copy")
    labels = load_judge_labels(judgements) if judgements else {}
    order, blocks, n_labels = _game_blocks(iter_records(store), labels)
    if len(order) != len(games):
        raise ValueError(f"{store} changed while the report was built ({len(games)} games analysed, "
                         f"{len(order)} read): run it again")
    folder = path.with_name(f"{path.stem}_files")
    split = sum(map(len, blocks)) > embed_mb * 1e6
    meta = {
        "title": f"bargain report: {store.name}",
        "store": str(store), "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "capability": result.capability, "capability_label": axis_label(result.capability or "capability"),
        "keys": group_keys(games),
        "conditions": condition_cols(games),
        "n_games": len(games), "n_experiments": int(games["experiment_id"].nunique()),
        "games_per_block": GAMES_PER_BLOCK, "block_folder": folder.name if split else None,
        "n_judge_labels": n_labels,
        "records": {d.name: os.path.relpath(d / "games", path.parent.resolve()) for d in experiment_dirs(store)},
        "tables": [table_payload(name, df) for name, df in result.tables.items()
                   if name not in TIDY_TABLES and not (name in AXES_TABLES and df.empty)],  # axes the store does not vary
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder.is_dir():  # a previous report's blocks: stale either way
        shutil.rmtree(folder)
    if split:
        folder.mkdir()
        for i, b in enumerate(blocks):
            (folder / f"block-{i}.js").write_text(f'bargainBlock({i}, "{b}");\n', encoding="ascii")
    page = _template().format(
        title=_html_escape(meta["title"]),
        css=_asset("report.css"),
        js=_asset("report.js").replace("</", "<\\/"),
        meta=_json(meta).replace("<", "\\u003c"),  # JSON has "<" only inside strings
        index=_pack(game_index(games, result.tables["agents"], order, labels)),
        blocks="" if split else "\n".join(f'<script type="application/gzip" id="block-{i}">{b}</script>'
                                           for i, b in enumerate(blocks)),
    )
    path.write_text(page, encoding="utf-8")
    log.info("report: %s (%.1f MB, %d games in %d blocks%s)", path, path.stat().st_size / 1e6, len(order),
             len(blocks), f" in {folder}" if split else "")
    return path


def game_index(games: pd.DataFrame, agents: pd.DataFrame, order: list[tuple[str, int]],
               labels: dict[tuple[str, int], list[dict]]) -> dict[str, list]:
    """The game list, columnar and in ``order`` (the order of the embedded blocks)."""
    g = games.set_index(["experiment_id", "game_index"], drop=False).loc[order]
    invalid = agents.pivot_table(index=["experiment_id", "game_index"], columns="is_focal",
                                 values="invalid_moves", aggfunc="sum", fill_value=0)
    invalid = invalid.reindex(columns=[True, False], fill_value=0).reindex(g.index, fill_value=0)
    out = {key: _column(g[col]) for col, key in INDEX_COLUMNS if col in g}
    out["outcome"] = [s if s != "complete" else "deal" if a else "no deal" for s, a in zip(g["status"], g["agreement"])]
    out["invalid"] = ["none" if f == o == 0 else "both" if f and o else "focal" if f else "opponent"
                      for f, o in zip(invalid[True], invalid[False])]
    for col in condition_cols(games):
        out[col] = _column(g[col])
    if labels:
        out["labels"] = [sorted({name for entry in labels.get(key, []) for name in entry["labels"]}) for key in order]
    return out


def game_payload(record: dict, labels: list[dict]) -> dict:
    """What the transcript viewer needs of one record (messages sent are left out: they repeat replies)."""
    rounds = [{**r, "discussion": [{k: v for k, v in d.items() if k != "text"} for d in r.get("discussion", [])]}
              for r in record.get("rounds") or []]  # the texts are the calls' replies
    return {
        "status": record["status"], "error": record.get("error"), "focal_seat": record["focal_seat"],
        "game": record["game"], "draw_index": record.get("draw_index"),
        "agents": [{k: a.get(k) for k in ("seat", "name", "model", "role")} for a in record["agents"]],
        "preferences": {k: record["preferences"].get(k) for k in ("kind", "values", "cosine")},
        "rounds": rounds, "outcome": record.get("outcome"), "totals": record.get("totals"), "view": game_view(record),
        "calls": _viewer_calls(record.get("calls") or []),
        "labels": labels,
    }


def _viewer_calls(calls: list[dict]) -> list[dict]:
    """The calls the viewer lays out as turns: a drafting seat's drafts and selection ride on its chosen draft."""
    def turn(c: dict) -> tuple:
        return c["round"], c["phase"], c["seat"], c["attempt"]

    def side(c: dict) -> bool:
        return bool(c.get("access")) and not c["access"].get("chosen")

    beside: dict[tuple, list[dict]] = defaultdict(list)
    for c in filter(side, calls):
        beside[turn(c)].append({"role": c["access"]["role"], "reply": c.get("reply"), "error": c.get("error"),
                                "cost_usd": c.get("cost_usd")})
    return [{**{k: c.get(k) for k in CALL_FIELDS},
             "tokens": [(c.get("usage") or {}).get(k) for k in ("prompt_tokens", "completion_tokens")],
             **({"drafts": beside[turn(c)], "draft": c["access"]["index"]} if c.get("access") else {})}
            for c in calls if not side(c)]


def load_judge_labels(path: str | Path) -> dict[tuple[str, int], list[dict]]:
    """Judge labels per game from ``*.jsonl`` files at or below ``path``, and from the judgements
    store ``python -m analysis judge`` writes there (valid judgements only).

    One JSON object per line and labelled message: ``experiment_id``, ``game_index``, ``round``,
    ``phase``, ``seat``, ``attempt`` (the call that produced the message), ``judge`` (a name) and
    ``labels`` (a list of label names), optionally ``rationale``. A missing path means no labels.
    """
    root = Path(path)
    files_ = [root] if root.is_file() else sorted(root.rglob("*.jsonl")) if root.is_dir() else []
    out: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for f in files_:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            entry = json.loads(line)
            missing = [k for k in (*JUDGE_KEY, "judge", "labels") if k not in entry]
            if missing:
                raise ValueError(f"{f}:{n}: judge label lacks {', '.join(missing)}")
            out[(entry["experiment_id"], int(entry["game_index"]))].append(
                {k: entry.get(k) for k in ("round", "phase", "seat", "attempt", "judge", "labels", "rationale")})
    for entry in iter_judgements(root) if root.is_dir() else ():
        if entry["labels"] is not None:
            out[(entry["experiment_id"], int(entry["game_index"]))].append(
                {k: entry[k] for k in ("round", "phase", "seat", "attempt", "judge", "labels", "rationale")})
    return dict(out)


def table_payload(name: str, df: pd.DataFrame) -> dict:
    """A table for the page: columns, rows (the first MAX_TABLE_ROWS) and its note."""
    rows = df.head(MAX_TABLE_ROWS)
    return {"name": name, "note": NOTES.get(name, ""), "figure_only": name in FIGURE_DATA,
            "columns": [str(c) for c in df.columns],
            "rows": [[_value(v) for v in row] for row in rows.itertuples(index=False)], "n_rows": len(df)}


def _game_blocks(records: Iterable[dict], labels: dict[tuple[str, int], list[dict]]
                 ) -> tuple[list[tuple[str, int]], list[str], int]:
    """Stream the records into compressed blocks; returns the game order, the blocks and labels used."""
    order: list[tuple[str, int]] = []
    blocks: list[str] = []
    pending: list[dict] = []
    used = 0
    for record in records:
        key = (record["experiment_id"], record["game_index"])
        order.append(key)
        game_labels = labels.get(key, [])
        used += len(game_labels)
        pending.append(game_payload(record, game_labels))
        if len(pending) == GAMES_PER_BLOCK:
            blocks.append(_pack(pending))
            pending = []
    if pending:
        blocks.append(_pack(pending))
    if used < sum(map(len, labels.values())):
        log.warning("%d judge labels name games that are not in the store", sum(map(len, labels.values())) - used)
    return order, blocks, used


def _pack(obj: Any) -> str:
    """gzip (fixed mtime: the same store gives the same bytes) and base64."""
    return base64.b64encode(gzip.compress(_json(obj).encode(), compresslevel=6, mtime=0)).decode("ascii")


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_value)


def _value(v: Any) -> Any:
    """A JSON-safe cell: NaN and missing become null, numpy scalars plain numbers, others strings."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _value(x) for k, x in v.items()}
    return str(v)


def _column(s: pd.Series) -> list:
    return [_value(v) for v in s.tolist()]


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _asset(name: str) -> str:
    return files("analysis").joinpath("web", name).read_text(encoding="utf-8")


def _template() -> str:
    return _asset("report.html")
