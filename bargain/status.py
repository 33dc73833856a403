"""Summarise a results store (or the stores a sweep wrote to), one row per experiment cell.

Usage:
    python -m bargain.status outputs/store
    python -m bargain.status outputs/sweeps/qwen_ladder      # a sweep dir: finds its store(s)
    python -m bargain.status outputs/store --expected 20     # games per cell, overriding the config

Per cell: model lineup, competition level (or another game and its parameters), games expected, complete, errored, over budget, out of
context, interrupted, missing (expected games without a valid record), damaged and spend (sum of
``totals.cost_usd``). Expected is the most games any run of the cell asked for (``runs.jsonl``), so a
smaller re-run never hides games still missing; records beyond what the latest run asked for get a
line of their own. Every record is checked against the record schema: a damaged one (not JSON, not a
record, incomplete) is listed, moved to ``<cell>/quarantine/`` with its reason, and played again by
the next run. Nothing here is fatal, so it is safe to run while jobs are still writing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bargain.store import DamagedRecord, ForeignRecord, load_record, quarantine

_RECORD_NAME = re.compile(r"^(\d+)\.json$")


@dataclass
class Cell:
    """Tally of one experiment directory."""

    experiment_id: str
    lineup: str = "?"
    n_agents: int | None = None
    competition: float | None = None
    game: str | None = None  # another game than items, with its parameters (shown in the competition column)
    expected: int | None = None
    latest: int | None = None  # games the latest run asked for
    counts: Counter[str] = field(default_factory=Counter)
    indices: set[int] = field(default_factory=set)  # games with a valid record
    errors: Counter[str] = field(default_factory=Counter)
    spend: float = 0.0

    @property
    def missing(self) -> int | None:
        """Expected games without a valid record (damaged ones included: the next run plays them again)."""
        if self.expected is None:
            return None
        return sum(1 for i in range(self.expected) if i not in self.indices)

    @property
    def beyond(self) -> list[int]:
        """Games with a record beyond what the latest run asked for."""
        return sorted(i for i in self.indices if self.latest is not None and i >= self.latest)


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """Load a JSON object, or note why it cannot be read and return None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path}: {exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: not a JSON object")
        return None
    return data


def _get(obj: Any, *keys: str) -> Any:
    """Nested dict lookup that returns None on any missing or non-dict level."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _lineup(config: dict[str, Any]) -> str:
    """'focal vs opponents' from a resolved config (opponent fills the seats `opponents` leaves)."""
    focal = _get(config, "model", "name")
    opponent = _get(config, "opponent", "name")
    if focal is None or opponent is None:
        return "?"
    extra = [str(_get(m, "name")) for m in (config.get("opponents") or {}).values()]
    n_agents = _get(config, "env", "n_agents")
    n_default = (n_agents - 1 - len(extra)) if isinstance(n_agents, int) else 1
    others = ([f"{n_default}x{opponent}"] if n_default > 1 else [str(opponent)] * max(n_default, 0)) + extra
    return f"{focal} vs {', '.join(others)}"


def _expected_games(config: dict[str, Any]) -> int | None:
    """Games per cell: one per preference draw, times the seats when seat order is counterbalanced."""
    n_games, n_agents = config.get("n_games"), _get(config, "env", "n_agents")
    if not isinstance(n_games, int):
        return None
    if config.get("counterbalance"):
        return n_games * n_agents if isinstance(n_agents, int) else None
    return n_games


def _describe(cell: Cell, config: dict[str, Any]) -> None:
    cell.lineup = _lineup(config)
    n_agents = _get(config, "env", "n_agents")
    cell.n_agents = n_agents if isinstance(n_agents, int) else None
    game = _get(config, "game")
    if isinstance(game, dict) and game.get("name", "items") != "items":
        cell.game = " ".join([str(game["name"]), *(f"{k}={v}" for k, v in game.items()
                                                   if k != "name" and isinstance(v, (int, float)))])
        return
    competition = _get(config, "env", "competition")
    cell.competition = float(competition) if isinstance(competition, (int, float)) else None


def _runs(exp_dir: Path, problems: list[str]) -> list[int]:
    """Games each run of the cell asked for, oldest first (``runs.jsonl``; absent in older stores)."""
    path = exp_dir / "runs.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: {exc}")
        return []
    totals = []
    for line in lines:
        try:
            totals.append(int(json.loads(line)["total_games"]))
        except (ValueError, KeyError, TypeError):
            problems.append(f"{path}: skipped a line that is not a run: {line[:80]!r}")
    return totals


def scan_experiment(exp_dir: Path, problems: list[str], expected: int | None = None) -> Cell:
    """Tally one ``<store>/<experiment_id>`` directory; damaged records are quarantined and listed."""
    cell = Cell(experiment_id=exp_dir.name)
    meta_path = exp_dir / "experiment.json"
    config = None
    if meta_path.exists():
        meta = _read_json(meta_path, problems)
        config = _get(meta, "config")
        if meta is not None and not isinstance(config, dict):
            problems.append(f"{meta_path}: no 'config' object")
            config = None
    else:
        problems.append(f"{meta_path}: missing")
    games_dir = exp_dir / "games"
    try:
        paths = sorted(games_dir.iterdir()) if games_dir.is_dir() else []
    except OSError as exc:  # removed while we look
        problems.append(f"{games_dir}: {exc}")
        paths = []
    for path in paths:
        if _RECORD_NAME.match(path.name) is None:
            continue  # temp files of an atomic write in progress, claim locks
        try:
            record = load_record(path)
        except FileNotFoundError:
            continue  # replaced or moved while we look
        except ForeignRecord as exc:
            problems.append(f"{path}: left alone: {exc}")
            cell.counts["other"] += 1
            continue
        except DamagedRecord as exc:
            moved = quarantine(path, exc)
            where = f"moved to {moved}" if moved else "could not be moved aside"
            problems.append(f"{path}: damaged ({exc}); {where}; the next run plays it again")
            cell.counts["damaged"] += 1
            continue
        cell.indices.add(record["game_index"])
        status = record["status"]
        cell.counts[status] += 1
        if status == "error":
            cell.errors[str(record["error"].get("kind") or record["error"]["type"])] += 1
        cell.spend += float(record["totals"]["cost_usd"])
        config = config or record["config"]  # experiment.json unreadable: describe the cell from a record
    if config is not None:
        _describe(cell, config)
    runs = _runs(exp_dir, problems)
    asked = runs or ([_expected_games(config)] if config is not None and _expected_games(config) is not None else [])
    cell.expected = expected if expected is not None else max(asked, default=None)
    cell.latest = asked[-1] if asked else None
    return cell


def scan_store(store: Path, expected: int | None = None) -> tuple[list[Cell], list[str]]:
    """Tally every experiment directory in a store; also return the problems found."""
    problems: list[str] = []
    cells = [
        scan_experiment(d, problems, expected)
        for d in sorted(store.iterdir())
        if d.is_dir() and ((d / "experiment.json").exists() or (d / "games").is_dir())
    ]
    cells.sort(key=lambda c: (c.lineup, c.game or "", c.competition if c.competition is not None else -1.0,
                              c.experiment_id))
    return cells, problems


def _is_store(path: Path) -> bool:
    return any((d / "experiment.json").exists() or (d / "games").is_dir() for d in path.iterdir() if d.is_dir())


def stores_of_sweep(sweep_dir: Path) -> tuple[list[Path], list[str]]:
    """The store paths recorded in a Hydra sweep dir (multirun.yaml and each job's .hydra/)."""
    found: list[Path] = []
    problems: list[str] = []
    candidates = [(sweep_dir / "multirun.yaml", sweep_dir / "multirun.yaml")]
    candidates += [(p, p.parent / "hydra.yaml") for p in sorted(sweep_dir.glob("**/.hydra/config.yaml"))]
    for config_path, hydra_path in candidates:
        if not config_path.exists():
            continue
        try:
            config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
            hydra_cfg = yaml.safe_load(hydra_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{config_path}: {exc}")
            continue
        store, cwd = config.get("store"), _get(hydra_cfg, "hydra", "runtime", "cwd")
        if not isinstance(store, str):
            continue
        if isinstance(cwd, str):
            store = store.replace("${hydra:runtime.cwd}", cwd)
        if "${" in store:
            problems.append(f"{config_path}: cannot resolve store path {store!r}; pass the store itself")
            continue
        path = Path(store) if Path(store).is_absolute() or not isinstance(cwd, str) else Path(cwd) / store
        if path not in found:
            found.append(path)
    return found, problems


def _fmt(value: float | int | None, spec: str = "") -> str:
    return "?" if value is None else format(value, spec)


def render(store: Path, cells: list[Cell], problems: list[str]) -> str:
    """Plain-text table, one row per cell, then an overall line, records beyond the latest run, the problems.

    ``missing`` counts expected games without a valid record, damaged ones included (they are moved
    to quarantine/ and played again by the next run); ``other`` counts records left alone (a newer
    schema version, no permission to read).
    """
    lines = [f"store {store}"]
    header = ("experiment", "lineup", "n", "competition", "expected", "complete", "error",
              "budget", "context", "interrupted", "other", "missing", "damaged", "spend_usd")
    rows = [
        (c.experiment_id, c.lineup, _fmt(c.n_agents), c.game or _fmt(c.competition, "g"), _fmt(c.expected),
         str(c.counts["complete"]), str(c.counts["error"]), str(c.counts["budget_exceeded"]),
         str(c.counts["context_limit"]), str(c.counts["interrupted"]), str(c.counts["other"]), _fmt(c.missing),
         str(c.counts["damaged"]), f"{c.spend:.4f}")
        for c in cells
    ]
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    else:
        lines.append("(no experiments yet)")
    total: Counter[str] = Counter()
    for c in cells:
        total.update(c.counts)
    known = [c.missing for c in cells if c.missing is not None]
    unknown = len(cells) - len(known)
    lines.append(
        f"total: {len(cells)} cells, {sum(c.expected or 0 for c in cells)} expected, "
        f"{total['complete']} complete, {total['error']} error, {total['budget_exceeded']} budget_exceeded, "
        f"{total['context_limit']} context_limit, {total['interrupted']} interrupted, "
        f"{sum(known)} missing{f' (+{unknown} cells unknown)' if unknown else ''}, "
        f"{total['damaged']} damaged, {total['other']} other; spend ${sum(c.spend for c in cells):.4f}"
    )
    for c in cells:
        if c.beyond:
            lines.append(f"beyond the latest run in {c.experiment_id}: {len(c.beyond)} record(s) (games "
                         f"{c.beyond[0]}-{c.beyond[-1]}) past the {c.latest} games it asked for; counted in expected")
    for c in cells:
        if c.errors:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in c.errors.most_common())
            lines.append(f"errors in {c.experiment_id}: {kinds}")
    lines.extend(f"problem: {p}" for p in problems)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 unless the path does not exist."""
    parser = argparse.ArgumentParser(prog="python -m bargain.status", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a results store, or a Hydra sweep dir that wrote to one")
    parser.add_argument("--expected", type=int, default=None,
                        help="games expected per cell (default: from each experiment's n_games/counterbalance)")
    args = parser.parse_args(argv)
    path: Path = args.path
    if not path.is_dir():
        print(f"bargain.status: {path} is not a directory", file=sys.stderr)
        return 2
    if _is_store(path) or not ((path / "multirun.yaml").exists() or any(path.glob("**/.hydra/config.yaml"))):
        stores, sweep_problems = [path], []
    else:
        stores, sweep_problems = stores_of_sweep(path)
        print(f"sweep {path}")
        if not stores:
            print("no store path found in the sweep's configs")
    for problem in sweep_problems:
        print(f"problem: {problem}")
    for store in stores:
        cells, problems = scan_store(store, args.expected) if store.is_dir() else ([], [])
        print(render(store, cells, problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
