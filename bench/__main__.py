"""Every benchmark in one command: runs each module's ``measure()`` and writes the README's table.

    python -m bench                    # all figures; rewrites the table in README.md's "Performance"
    python -m bench --only callpath    # one module (still rewrites the table, with its rows only)
    python -m bench --smoke            # tiny runs of every module (CI); prints, writes nothing

Each module in MODULES that is present exposes ``measure(smoke: bool) -> list[dict]``: rows with
``figure``, ``ours``, ``baseline``, ``ratio``, ``unit``, ``target`` and ``met`` (see the modules).
The table states the date, the machine and its load when the run started: on a shared machine the
ratios, measured side by side in one run, are what count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import logging
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODULES = ("bench.callpath", "bench.analysis", "bench.store", "bench.llama", "bench.adaptive")
README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
log = logging.getLogger("bench")


def machine() -> str:
    """CPU, cores, memory, load: what the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, {memory:.0f} GB RAM, load average {load:.1f} at the start; "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict[str, Any]], when: str, where: str) -> str:
    """The Markdown table, with the line saying when and on what it was measured."""
    lines = [f"Measured {when} by `python -m bench` on {where}.", "",
             "| Figure | Ours | Baseline | Ratio | Unit | Target | Met |", "|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        ratio = f"{r['ratio']:.3g}x" if r["ratio"] is not None else ""
        lines.append(f"| {r['figure']} | {_number(r['ours'])} | {_number(r['baseline'])} | {ratio} | {r['unit']} | "
                     f"{r['target']} | {met} |")
    return "\n".join(lines)


def write_readme(text: str, readme: Path = README) -> None:
    """Put the table between the markers in the README's "Performance" section."""
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} ... {END} markers in its Performance section")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    readme.write_text(pattern.sub(lambda _m: f"{START}\n{text}\n{END}", content, count=1))


def run(modules: tuple[str, ...], smoke: bool) -> list[dict[str, Any]]:
    """Every present module's rows, in order."""
    rows = []
    for name in modules:
        if importlib.util.find_spec(name) is None:
            log.warning("%s is not here: skipped", name)
            continue
        log.info("%s ...", name)
        rows += importlib.import_module(name).measure(smoke=smoke)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny runs (CI): prints the table, writes nothing")
    parser.add_argument("--only", action="append", metavar="MODULE", help="run only this module (e.g. callpath)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # the modules' details (bench.<module> loggers) go to stderr
    modules = MODULES
    if args.only:
        unknown = [m for m in args.only if f"bench.{m}" not in MODULES]
        if unknown:
            parser.error(f"--only {unknown[0]}: must be one of {', '.join(m.split('.')[1] for m in MODULES)}")
        modules = tuple(f"bench.{m}" for m in args.only)
    where = machine()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = table(run(modules, args.smoke), when, where)
    print(text)
    if not args.smoke:
        write_readme(text)


if __name__ == "__main__":
    main()
