"""Analyse a results store: tables and figures, or the same plus a self-contained HTML report.

    python -m analysis <store or sweep dir> [--out DIR] [--capability NAME]   # tables and figures
    python -m analysis report <store or sweep dir> [--out DIR] [--judgements DIR]
    python -m analysis judge <store or sweep dir> [judge=<model>] [key=value ...]
    python -m analysis validate [judge=<model>] [key=value ...] [--out DIR]
    python -m analysis index <store or sweep dir>     # rebuild the store's index from its records

The first form writes tidy tables (Parquet, CSV; Markdown for summaries) and figures (PNG, PDF)
into one folder (default: ``<store>-analysis`` beside the store) and prints the headline table (the
focal share's scaling law per opponent and condition), the competence-vs-strategy fits and the
capability sensitivity table (the same law on every available capability axis, flagged where the
conclusion changes); behaviour tables (truthfulness ledger, gaslighting, and judged tactics when
``<store>/judgements`` holds labels) go beside them. ``report`` does the same and adds
``report.html``: every table, interactive figures and a transcript viewer for every game, in one
file that opens offline. ``judge`` labels every public message with the tactics taxonomy
(resumable); ``validate`` measures a judge on the hand-labelled set. Both read the store's
columnar index (``<store>/index/``, kept up to date as games are written and mended from the
records when stale); ``index`` rebuilds it from scratch.

    python -m analysis outputs/store
    python -m analysis outputs/multirun/2026-01-01 --capability skill --out results/ladder
    python -m analysis report outputs/store
    python -m analysis judge outputs/store judge=gpt-5.4-mini run.budget_usd=5
    python -m analysis validate judge=sim-judge
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from analysis.behaviour.cli import judge_command, validate_command
from analysis.html_report import EMBED_MB, write_report
from analysis.index import rebuild
from analysis.load import NoRecords, SchemaError
from analysis.report import Result, analyze, to_markdown


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the arguments every command shares."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("store", type=Path, help="results store, sweep directory or experiment directory")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <store>-analysis)")
    parser.add_argument("--capability", default="auto",
                        help="metadata column for the capability axis: params_b (log10), release_date, "
                             "arena_elo, skill, ... (default auto: the first of params_b, arena_elo, "
                             "release_date, skill that the focal models have)")
    parser.add_argument("--judgements", type=Path, default=None,
                        help="judge labels for the behaviour tables (and the report's transcripts): a folder written "
                             "by `python -m analysis judge`, or .jsonl files (default: <store>/judgements when it exists)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    return parser


def _analyze(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Result:
    if not args.store.exists():
        parser.error(f"no such store or sweep directory: {args.store}")
    if args.judgements and not args.judgements.exists():
        parser.error(f"--judgements {args.judgements}: no such file or folder")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    store = args.store.resolve()
    out = args.out or store.parent / f"{store.name}-analysis"
    try:
        result = analyze(store, out, args.capability, n_boot=args.bootstrap, seed=args.seed,
                         judgements=args.judgements)
    except (NoRecords, SchemaError) as exc:  # nothing valid to analyse, or a newer record format
        parser.exit(2, f"error: {exc}\n")
    if result.skipped:
        print(f"skipped {len(result.skipped)} damaged record(s), moved to their experiment's quarantine/ "
              "(re-running their job plays those games again):")
        print("\n".join(f"  {note}" for note in result.skipped) + "\n")
    return result


def tables_command(argv: list[str]) -> None:
    """``python -m analysis <store>``: tables and figures, and the headline table printed."""
    parser = _parser("python -m analysis", __doc__.splitlines()[0]
                     + " Commands: report, judge, validate (python -m analysis <command> -h).")
    result = _analyze(parser, parser.parse_args(argv))
    print(f"Focal-share scaling law (capability: {result.capability}); all outputs in {result.out}\n")
    print(to_markdown(result.tables["headline"]))
    competence = result.tables["competence"]
    print("\nCompetence vs strategy: all games, valid games, P(valid game) (two-part model)\n")
    print(to_markdown(competence[[c for c in competence.columns if c not in ("family", "slope_boot_low",
                                                                              "slope_boot_high")]]))
    print("\nCapability sensitivity: the share law on every available axis\n")
    print(to_markdown(result.tables["sensitivity"]))


def report_command(argv: list[str]) -> None:
    """``python -m analysis report <store>``: the analysis plus ``report.html``."""
    parser = _parser("python -m analysis report",
                     "Write the analysis and report.html: tables, figures and every game's transcript in one offline file.")
    parser.add_argument("--embed-mb", type=float, default=EMBED_MB,
                        help="the games' transcripts go into report.html up to this many MB (compressed), "
                             f"beyond it into report_files/ beside it (default {EMBED_MB:g})")
    args = parser.parse_args(argv)
    judgements = args.judgements or args.store.resolve() / "judgements"
    result = _analyze(parser, args)
    path = write_report(result, args.store.resolve(), result.out / "report.html",
                        judgements if judgements.exists() else None, embed_mb=args.embed_mb)
    n_games = len(result.tables["games"])
    print(f"Report: {path} ({path.stat().st_size / 1e6:.1f} MB, {n_games} games); open it in a browser, no server needed")


def index_command(argv: list[str]) -> None:
    """``python -m analysis index <store>``: drop the store's index and build it again from the records."""
    parser = argparse.ArgumentParser(prog="python -m analysis index", description=index_command.__doc__.split(": ", 1)[1])
    parser.add_argument("store", type=Path, help="results store, sweep directory or experiment directory")
    args = parser.parse_args(argv)
    if not args.store.exists():
        parser.error(f"no such store or sweep directory: {args.store}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t = time.perf_counter()
    try:
        n_games, skipped = rebuild(args.store)
    except SchemaError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"indexed {n_games} game(s) below {args.store} in {time.perf_counter() - t:.1f} s"
          + (f"; skipped {len(skipped)} damaged record(s), moved to their experiment's quarantine/" if skipped else ""))


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "report": report_command, "judge": judge_command, "validate": validate_command, "index": index_command,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        COMMANDS[argv[0]](argv[1:])
    else:
        tables_command(argv)


if __name__ == "__main__":
    main()
