"""The behaviour commands of ``python -m analysis``: ``judge`` and ``validate``.

The command and its paths are argparse arguments, like the rest of ``python -m analysis``; which
model judges and how it is called are Hydra ``key=value`` overrides composed from ``conf/judge.yaml``,
because that is how models and run settings are chosen everywhere else (``judge=gpt-5.4-mini
run.budget_usd=5`` reads like ``python -m bargain.run model=gpt-5.4-mini run.budget_usd=5``, and takes
the same model files, key variables, prices, retries, budgets and validation).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bargain.backend import FatalBackendError
from bargain.config import ConfigError, register, validate_judge
from bargain.store import StoreError

CONF = Path(__file__).resolve().parents[2] / "conf"
OVERRIDES_HELP = ("judge=<model> (any conf/model/ file; default sim-judge, the offline rules judge) and other "
                  "key=value settings: judge.params.max_tokens=512, run.budget_usd=5, run.max_retries=3, "
                  "max_reasks=1, context_messages=6, structured=true ...")


def compose_judge(overrides: list[str]) -> dict[str, Any]:
    """The judge job's config from ``conf/judge.yaml`` and ``key=value`` overrides (``judge=X`` = ``model@judge=X``)."""
    register()
    overrides = [f"model@judge={o.split('=', 1)[1]}" if o.startswith("judge=") else o for o in overrides]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="judge", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        message = " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
        if "model/" in message or "model@judge" in message:
            message += f" (judge=<model> takes one of: {', '.join(sorted(p.stem for p in (CONF / 'model').glob('*.yaml')))})"
        raise ConfigError(message) from None
    finally:
        GlobalHydra.instance().clear()
    validate_judge(cfg)
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def _setup(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any]]:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args, compose_judge(args.overrides)
    except ConfigError as exc:
        parser.error(str(exc))


def _run(units: list, cfg: dict[str, Any], root: Path, home: Path) -> Any:
    """Judge ``units`` with the config's judge; the cache, ledger and server logs live under ``home``."""
    from analysis.behaviour.judge import run_judge

    run = cfg["run"]
    try:
        return run_judge(units, cfg["judge"], run, root, cache_dir=run.get("cache_dir") or home / ".cache",
                         ledger=home / ".ledger" / f"{run.get('ledger') or 'spend'}.jsonl", servers=home / ".servers",
                         context=cfg["context_messages"], max_reasks=cfg["max_reasks"], structured=cfg["structured"],
                         progress=run["progress"])
    except (FatalBackendError, StoreError) as exc:  # a dead end every message would hit: one line
        sys.exit(f"error: {exc}")


def _print_summary(summary: Any) -> None:
    print(f"judge {summary.judge_id}: {summary.judged} message(s) judged now, {summary.skipped} already in "
          f"{summary.directory}, {summary.invalid} unparseable; {summary.failed_games} game(s) unfinished; "
          f"spent ${summary.spent_usd:.4f} ({summary.provider_calls} provider calls, {summary.cache_hits} from the replay cache)")
    if summary.budget_stop:
        print(f"budget stop: {summary.budget_stop}; raise it and run the same command again to finish")
    for error in summary.errors[:5]:
        print(f"  {error}")


def judge_command(argv: list[str]) -> None:
    """``python -m analysis judge <store> judge=<model>``: label every public message, resumably."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis judge",
        description="Label every public message of a store's complete games with the tactics taxonomy. "
                    "Re-running resumes: only messages without a stored judgement are sent.")
    parser.add_argument("store", type=Path, help="results store, sweep directory or experiment directory")
    parser.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    parser.add_argument("--judgements", type=Path, default=None, help="judgements folder (default: <store>/judgements)")
    args, cfg = _setup(parser, argv)
    from analysis.behaviour.judge import game_units
    from analysis.load import iter_records

    store = args.store.resolve()
    if not store.exists():
        parser.error(f"no such store or sweep directory: {store}")
    units = list(game_units(iter_records(store), cfg["context_messages"]))
    if not units:
        parser.error(f"no complete game with public messages below {store}")
    summary = _run(units, cfg, args.judgements or store / "judgements", store)
    _print_summary(summary)
    if summary.failed_games or summary.budget_stop:
        sys.exit(1)  # something is left to judge: scripts must notice


def validate_command(argv: list[str]) -> None:
    """``python -m analysis validate judge=<model>``: judge the hand-labelled set, report agreement."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis validate",
        description="Judge the hand-labelled set and report Cohen's kappa per category against the hand labels "
                    "and between every pair of judges run so far, and the claim extractors' precision and recall.")
    parser.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    parser.add_argument("--out", type=Path, default=Path("outputs/validation"),
                        help="folder for the judgements, cache and tables (default: outputs/validation)")
    parser.add_argument("--labelled", type=Path, default=None, help="a labelled set (default: the one shipped)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    args, cfg = _setup(parser, argv)
    from analysis.behaviour.validation import labelled_units, load_labelled, validation_tables
    from analysis.report import to_markdown, write_table

    items = load_labelled(args.labelled)
    out = args.out.resolve()
    summary = _run(labelled_units(items, cfg["context_messages"]), cfg, out / "judgements", out)
    _print_summary(summary)
    tables = validation_tables(items, out / "judgements", n_boot=args.bootstrap, seed=args.seed)
    for name, df in tables.items():
        write_table(df, out, name, markdown=True)
    cols = ["judge", "category", "n", "pos_a", "pos_b", "kappa", "kappa_low", "kappa_high"]
    print(f"\n{len(items)} hand-labelled messages; pos_a = hand, pos_b = judge. Tables in {out}\n")
    print(to_markdown(tables["judge_vs_hand"].reindex(columns=cols)))
    print()
    print(to_markdown(tables["extraction"]))
