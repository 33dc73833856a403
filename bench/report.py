"""Benchmark: the HTML report at 1,000 and 10,000 games, side by side in one run.

Plays a base store of real offline games (the sim ladder against two opponents at the default
protocol), then builds larger stores by copying those records under new experiment ids. For each
size it measures building the report (the analysis and the HTML separately), the file size (and
how much the compressed transcripts save), and, in headless Chromium, the time until the page is
usable, to apply a filter, and to open a transcript; for the largest store also with the
transcripts in a folder beside the file (what reports above ``--embed-mb`` do).

    python bench/report.py                        # base store, then 1,000 and 10,000 games
    python bench/report.py --sizes 500,5000 --keep /tmp/bench-report
    python bench/report.py --base outputs/store     # copies of your own games (e.g. real LLM text)
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from analysis.browser import Chromium  # noqa: E402
from analysis.html_report import write_report  # noqa: E402
from analysis.load import iter_records  # noqa: E402
from analysis.report import analyze  # noqa: E402
from bargain.config import register  # noqa: E402
from bargain.runner import run_experiment  # noqa: E402

CONF = str(Path(__file__).resolve().parent.parent / "conf")
BASE = [[f"model={m}", f"model@opponent={o}", f"env.competition={c}", "n_games=2", "run.progress=false"]
        for m in ("sim-weak", "sim-base", "sim-strong") for o in ("boulware", "conceder") for c in (0.25, 0.75)]
# In the page: change the hash (what a filter or a link does) and wait until the page shows it.
TIMED_HASH = """(async (hash) => { const t = performance.now(); location.hash = hash;
  while (document.body.dataset.hash !== location.hash) await new Promise(r => requestAnimationFrame(r));
  return performance.now() - t; })"""


def play_base(store: Path) -> list[dict]:
    """Real offline games of the default protocol (10 rounds)."""
    register()
    for overrides in BASE:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            run_experiment(compose(config_name="config", overrides=[f"store={store}", *overrides]))
    GlobalHydra.instance().clear()
    return list(iter_records(store))


def copy_store(base: list[dict], experiments: dict[str, dict], n_games: int, store: Path) -> None:
    """``n_games`` records copied from ``base``, each copy of an experiment under a new id."""
    by_exp: dict[str, list[dict]] = {}
    for r in base:
        by_exp.setdefault(r["experiment_id"], []).append(r)
    written, copy = 0, 0
    while written < n_games:
        for exp, records in by_exp.items():
            new = hashlib.sha256(f"{exp}:{copy}".encode()).hexdigest()[:16]
            games = store / new / "games"
            games.mkdir(parents=True)
            (store / new / "experiment.json").write_text(json.dumps({**experiments[exp], "experiment_id": new}))
            for r in records[: n_games - written]:
                (games / f"{r['game_index']:05d}.json").write_text(json.dumps({**r, "experiment_id": new}, indent=1))
                written += 1
            if written >= n_games:
                break
        copy += 1


def in_browser(path: Path) -> dict:
    """Load time, memory, filtering and opening a transcript, measured by the page itself."""
    with Chromium(width=1400, height=1000) as browser:
        browser.open(path, ready="document.body.dataset.ready")
        row = {"ready_ms": browser.eval("window.reportReadyMs"),
               "load_event_ms": browser.eval("performance.getEntriesByType('navigation')[0].loadEventEnd"),
               "heap_mb": browser.eval("performance.memory.usedJSHeapSize") / 1e6}
        games = browser.eval("[...document.querySelectorAll('#game-list tbody tr')].map(r => r.dataset.game)")
        model = browser.eval("document.querySelector('select[data-filter=model] option:nth-child(2)').value")
        row["filter_ms"] = browser.eval(f"{TIMED_HASH}('#model={model}&competition=0.75')")
        row["clear_ms"] = browser.eval(f"{TIMED_HASH}('#')")
        row["open_game_ms"] = browser.eval(f"{TIMED_HASH}('#game={games[-1]}')")  # decodes its block
        row["open_next_in_block_ms"] = browser.eval(f"{TIMED_HASH}('#game={games[-2]}')")
        if browser.errors:
            raise RuntimeError(f"page errors: {browser.errors}")
    return row


def measure(store: Path, out: Path, n_boot: int, split: bool) -> list[tuple[str, dict]]:
    """The report of ``store`` with the transcripts embedded (and, if ``split``, in a folder)."""
    n = sum(1 for _ in store.rglob("games/*.json"))
    common = {"store_mb": sum(p.stat().st_size for p in store.rglob("*.json")) / 1e6}
    t = time.perf_counter()
    result = analyze(store, out, "auto", n_boot=n_boot)
    common["analysis_s"] = time.perf_counter() - t
    columns = []
    for name, embed_mb in [("report.html", float("inf")), *([("split.html", 0.0)] if split else [])]:
        row = dict(common)
        t = time.perf_counter()
        path = write_report(result, store, out / name, embed_mb=embed_mb)
        row["html_s"] = time.perf_counter() - t
        row["html_mb"] = path.stat().st_size / 1e6
        folder = path.with_name(f"{path.stem}_files")
        texts = ([p.read_text().split('"')[1] for p in folder.glob("*.js")] if embed_mb == 0 else
                 re.findall(r'<script type="application/gzip" id="block-\d+">(.*?)</script>', path.read_text(), re.S))
        row["blocks_mb"] = sum(map(len, texts)) / 1e6
        row["payload_json_mb"] = sum(len(gzip.decompress(base64.b64decode(b))) for b in texts) / 1e6
        row.update(in_browser(path))
        columns.append((f"{n:,}" + (" folder" if embed_mb == 0 else ""), row))
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="store sizes in games (comma-separated)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates of the analysis")
    parser.add_argument("--keep", type=Path, default=None, help="keep the stores and reports in this folder")
    parser.add_argument("--base", type=Path, default=None,
                        help="copy the records of this store instead of playing offline games (e.g. a store of real LLM games)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        t = time.perf_counter()
        base_dir = args.base or root / "base"
        base = list(iter_records(base_dir)) if args.base else play_base(base_dir)
        experiments = {p.parent.name: json.loads(p.read_text()) for p in base_dir.rglob("experiment.json")}
        print(f"base store: {len(base)} games" + ("" if args.base else f", played offline in {time.perf_counter() - t:.0f} s"))
        columns = []
        sizes = [int(x) for x in args.sizes.split(",")]
        for n in sizes:
            store = root / f"store-{n}"
            shutil.rmtree(store, ignore_errors=True)
            copy_store(base, experiments, n, store)
            columns += measure(store, root / f"store-{n}-analysis", args.bootstrap, split=n == sizes[-1])
        rows = [row for _, row in columns]
        print(f"{'':<24}" + "".join(f"{name:>15}" for name, _ in columns))
        for c in rows[0]:
            print(f"{c:<24}" + "".join(f"{r[c]:>15.1f}" for r in rows))
        if len(sizes) > 1:
            first, last = rows[0], rows[len(sizes) - 1]  # the embedded reports of the smallest and largest store
            print(f"{sizes[-1]:,} vs {sizes[0]:,} games, embedded: " + ", ".join(
                f"{c} {last[c] / first[c]:.1f}x" for c in ("html_mb", "ready_ms", "load_event_ms", "filter_ms", "open_game_ms")))
        last = rows[len(sizes) - 1]
        print(f"per game: {1e3 * last['html_mb'] / sizes[-1]:.2f} KB of HTML; transcripts "
              f"{last['payload_json_mb']:.0f} MB as JSON -> {last['blocks_mb']:.1f} MB compressed+base64 "
              f"({last['payload_json_mb'] / last['blocks_mb']:.1f}x smaller)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
