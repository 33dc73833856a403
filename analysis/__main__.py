"""Analyse a results store: ``python -m analysis <store or sweep dir> [--out DIR] [--capability NAME]``.

Writes tidy tables (Parquet, CSV; Markdown for summaries) and figures (PNG, PDF) into one folder
(default: ``<store>-analysis`` beside the store) and prints the headline table: the focal share's
scaling law per opponent and competition level.

    python -m analysis outputs/store
    python -m analysis outputs/multirun/2026-01-01 --capability skill --out results/ladder
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from analysis.report import analyze, to_markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="results store, sweep directory or experiment directory")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <store>-analysis)")
    parser.add_argument("--capability", default="auto",
                        help="metadata column for the capability axis: params_b (log10), release_date, "
                             "arena_elo, skill, ... (default auto: the first of params_b, arena_elo, "
                             "release_date, skill that the focal models have)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    store = args.store.resolve()
    out = args.out or store.parent / f"{store.name}-analysis"
    result = analyze(store, out, args.capability, n_boot=args.bootstrap, seed=args.seed)
    print(f"Focal-share scaling law (capability: {result.capability}); all outputs in {result.out}\n")
    print(to_markdown(result.tables["headline"]))


if __name__ == "__main__":
    main()
