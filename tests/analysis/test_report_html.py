"""The HTML report on a store of real offline games: one offline file whose data match the records,
and, in headless Chromium, tables that render, figures that link to their games, filters that
change the list, transcripts that open with invalid moves, re-asks and judge labels, no console
errors and no network request.

The browser tests need Debian's ``chromium``; they skip without it, unless
``BARGAIN_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure. With
``BARGAIN_UPDATE_SCREENSHOTS=1`` they also refresh the README's screenshots in ``docs/``.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from analysis.__main__ import main
from analysis.browser import Chromium, find_chromium
from analysis.html_report import GAMES_PER_BLOCK, load_judge_labels, write_report
from analysis.load import condition_cols, iter_records, load_store
from analysis.report import Result, analyze
from bargain.config import register
from bargain.runner import run_experiment

CONF = str(Path(__file__).resolve().parents[2] / "conf")
DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPTED = ["model.litellm_model=openai/scripted", "model.api_key_env=null", "n_games=1", "counterbalance=false",
            "model@opponent=sim-base"]
LINEUPS = [
    # the sim ladder against sim-base at two competition levels, both seats, 2 draws, 3 rounds
    *[[f"model={m}", "model@opponent=sim-base", f"env.competition={c}", "n_games=2", "env.max_rounds=3"]
      for m in ("sim-weak", "sim-strong") for c in (0.25, 0.75)],
    # a model that never answers in format: re-asked, then recorded invalid
    [*SCRIPTED, "model.name=scripted-prose", "model.metadata.skill=0.1", "env.max_rounds=2", "env.max_reasks=1",
     "env.competition=0.75", "+model.params.mock_response='I would like the Apple and the Jewel.'"],
    # a game that fails: recorded with status error
    [*SCRIPTED, "model.name=scripted-overflow", "model.metadata.skill=0.1", "env.competition=0.75",
     "+model.params.mock_response=litellm.ContextWindowExceededError"],
]
LABELLED = {"judge": "offline-rules", "labels": ["anchoring", "appeal_to_fairness"], "rationale": "asks for a fair split"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Real offline games (sim ladder, invalid moves, a failed game) in one store, plus judge labels."""
    root = tmp_path_factory.mktemp("report") / "store"
    register()
    for overrides in LINEUPS:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            run_experiment(compose(config_name="config", overrides=[f"store={root}", *overrides]))
    GlobalHydra.instance().clear()
    # Judge labels in the shape the report reads: one JSON object per labelled message.
    first = next(r for r in iter_records(root) if r["calls"])
    call = next(c for c in first["calls"] if c["phase"] == "discussion")
    (root / "judgements").mkdir()
    entry = {"experiment_id": first["experiment_id"], "game_index": first["game_index"],
             **{k: call[k] for k in ("round", "phase", "seat", "attempt")}, **LABELLED}
    (root / "judgements" / "offline-rules.jsonl").write_text(json.dumps(entry) + "\n")
    return root


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    main(["report", str(store), "--out", str(out), "--bootstrap", "50"])
    return out / "report.html"


@pytest.fixture(scope="module")
def result(store, tmp_path_factory) -> Result:
    return analyze(store, tmp_path_factory.mktemp("analysis"), n_boot=20)


def records(store: Path) -> dict[str, dict]:
    return {f"{r['experiment_id']}:{r['game_index']}": r for r in iter_records(store)}


def embedded(html: str) -> tuple[dict, list[dict]]:
    """The page's metadata and every game payload, decoded as the browser decodes them."""
    meta = json.loads(re.search(r'<script type="application/json" id="meta">(.*?)</script>', html, re.S).group(1))
    blocks = re.findall(r'<script type="application/gzip" id="block-(\d+)">(.*?)</script>', html, re.S)
    games = [g for _, b in sorted(blocks, key=lambda x: int(x[0]))
             for g in json.loads(gzip.decompress(base64.b64decode(b)))]
    return meta, games


def index_of(html: str) -> dict[str, list]:
    b64 = re.search(r'<script type="application/gzip" id="index">(.*?)</script>', html, re.S).group(1)
    return json.loads(gzip.decompress(base64.b64decode(b64)))


# ---------------------------------------------------------------- the file


def test_report_is_one_offline_file_with_every_game(report, store):
    html = report.read_text()
    assert (report.parent / "headline.csv").exists() and (report.parent / "games.parquet").exists()
    # nothing is loaded from anywhere: no external script, style, image or font
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', html)
    assert "@import" not in html and "url(" not in html
    meta, games = embedded(html)
    index = index_of(html)
    recs = records(store)
    assert meta["n_games"] == len(recs) == len(games) == len(index["exp"]) == 4 * 4 + 2
    assert -(-len(games) // GAMES_PER_BLOCK) == len(re.findall(r'id="block-', html))
    for i, game in enumerate(games):
        record = recs[f"{index['exp'][i]}:{index['idx'][i]}"]
        assert [c["reply"] for c in game["calls"]] == [c["reply"] for c in record["calls"]]
        assert [c["error"] for c in game["calls"]] == [c["error"] for c in record["calls"]]
        assert game["outcome"] == record["outcome"] and game["status"] == record["status"]
        assert [r["proposals"] for r in game["rounds"]] == [r["proposals"] for r in record["rounds"]]
        assert [r["votes"] for r in game["rounds"]] == [r["votes"] for r in record["rounds"]]
    outcomes = dict(zip(index["model"], index["outcome"]))
    assert outcomes["scripted-overflow"] == "error"
    assert set(index["invalid"][index["model"].index("scripted-prose")].split()) == {"focal"}
    assert {t["name"] for t in meta["tables"]} >= {"headline", "scaling", "scaling_points", "scaling_curves",
                                                   "ratings", "seat_effect", "competition", "validity"}
    assert sum(len(g["labels"]) for g in games) == meta["n_judge_labels"] == 1


def test_tables_added_to_the_analysis_appear_without_code(result, store, tmp_path):
    """A table another part of the analysis adds (e.g. behaviour rates) is a section of the page."""
    behaviour = pd.DataFrame({"model": ["sim-weak"], "tactic": ["anchoring"], "rate": [0.4], "rate_low": [0.2],
                              "rate_high": [0.6]})
    more = Result(result.out, result.capability, {**result.tables, "behaviour": behaviour})
    meta, _ = embedded(write_report(more, store, tmp_path / "r.html").read_text())
    behaviour = next(t for t in meta["tables"] if t["name"] == "behaviour")
    assert behaviour["columns"] == ["model", "tactic", "rate", "rate_low", "rate_high"]
    assert behaviour["rows"] == [["sim-weak", "anchoring", 0.4, 0.2, 0.6]]


def test_judge_labels_are_checked_line_by_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"experiment_id": "e", "game_index": 3, "round": 1, "phase": "discussion", "seat": 0,
                                "attempt": 0, "judge": "j", "labels": ["threat"]}) + "\n\n"
                    + json.dumps({"experiment_id": "e", "game_index": 3, "judge": "j", "labels": []}) + "\n")
    with pytest.raises(ValueError, match=r"j.jsonl:3: judge label lacks round, phase, seat, attempt"):
        load_judge_labels(path)
    path.write_text(path.read_text().splitlines()[0])
    assert load_judge_labels(tmp_path) == {("e", 3): [{"round": 1, "phase": "discussion", "seat": 0, "attempt": 0,
                                                       "judge": "j", "labels": ["threat"], "rationale": None}]}


def test_missing_paths_fail_in_one_line_before_any_work(store, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(store), "--out", str(tmp_path), "--judgements", str(tmp_path / "nope")])
    assert f"--judgements {tmp_path / 'nope'}: no such file or folder" in capsys.readouterr().err
    for command in (["report"], []):
        with pytest.raises(SystemExit):
            main([*command, str(tmp_path / "nostore"), "--out", str(tmp_path)])
        assert f"error: no such store or sweep directory: {tmp_path / 'nostore'}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser():
    if not find_chromium():
        if os.environ.get("BARGAIN_REQUIRE_BROWSER") == "1":
            pytest.fail("BARGAIN_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium installed (apt-get install chromium)")
    with Chromium(width=1400, height=1000) as b:
        yield b


def shown(browser) -> int:
    return int(browser.eval("document.getElementById('n-shown').textContent"))


def settle(browser) -> None:
    """Wait until the page shows the state its URL hash asks for."""
    browser.wait_for("document.body.dataset.hash === location.hash")


def choose(browser, key: str, value: str) -> None:
    browser.select(f"select[data-filter={key}]", value)
    settle(browser)


def clear(browser) -> None:
    if not browser.eval("document.getElementById('viewer').hidden"):
        browser.click("#close-game")
        settle(browser)
    browser.click("#clear")
    settle(browser)


def open_first_game(browser) -> dict:
    browser.click("#game-list tbody tr")
    settle(browser)
    return browser.eval("document.querySelector('#transcript').dataset.game")


def games_where(index: dict[str, list], **conditions) -> int:
    return sum(all(str(index[k][i]) == v for k, v in conditions.items()) for i in range(len(index["exp"])))


@pytest.mark.slow
def test_report_in_chromium(browser, report, store, tmp_path):
    html = report.read_text()
    index = index_of(html)
    meta, _ = embedded(html)
    tables = {t["name"]: t for t in meta["tables"]}
    recs = records(store)
    browser.open(report, ready="document.body.dataset.ready")

    # tables render, row for row (closed ones when opened); the per-experiment summary has every cell
    expected_rows = {name: len(tables[name]["rows"]) for name in ("headline", "validity", "competition", "ratings")}
    for name, n_rows in {**expected_rows, "cells": len(LINEUPS)}.items():
        if not browser.eval(f"document.getElementById('table-{name}').open"):
            browser.click(f"#table-{name} > summary")
        rows = f"document.querySelectorAll('#table-{name} table.data tbody tr').length"
        browser.wait_for(f"{rows} > 0")
        assert browser.eval(rows) == n_rows > 0, name
    # figures: one point per scaling point, one heatmap cell per model x opponent x competition
    points = browser.eval("document.querySelectorAll('#fig-scaling [data-point]').length")
    assert points == sum(r[tables["scaling_points"]["columns"].index("share")] is not None
                         for r in tables["scaling_points"]["rows"]) > 0
    cells = [r for r in tables["competition"]["rows"] if "all" not in r]
    assert browser.eval("document.querySelectorAll('#fig-heatmap [data-cell]').length") == len(cells)
    # a table without a figure of its own gets a forest plot
    assert browser.eval("document.querySelectorAll('#forest-ratings [data-point]').length") == len(tables["ratings"]["rows"])
    browser.eval("window.scrollTo(0, 0)")
    shot = browser.screenshot(tmp_path / "overview.png")

    # filters change what is shown
    assert shown(browser) == len(index["exp"])
    choose(browser, "model", "sim-weak")
    assert shown(browser) == games_where(index, model="sim-weak") > 0
    choose(browser, "competition", "0.75")
    expected = games_where(index, model="sim-weak", competition="0.75")
    assert shown(browser) == browser.eval("document.querySelectorAll('#game-list tbody tr').length") == expected > 0
    clear(browser)
    assert shown(browser) == len(index["exp"])

    # a heatmap cell links to exactly its games
    browser.click("#fig-heatmap a.go")
    settle(browser)
    params = dict(browser.eval("[...new URLSearchParams(location.hash.slice(1))]"))
    conditions = condition_cols(load_store(store)[0])  # the condition fields that vary, e.g. max_rounds
    assert "max_rounds" in conditions and {"model", "opponent", "competition", *conditions} == set(params)
    assert shown(browser) == games_where(index, **params) > 0

    # a transcript opens: every round, the public discussion word for word, private thinking labelled
    clear(browser)
    choose(browser, "model", "sim-strong")
    record = recs[open_first_game(browser)]
    assert browser.eval("document.querySelectorAll('#transcript h3.round').length") == len(record["rounds"])
    said = browser.eval("[...document.querySelectorAll('#transcript .msg.public .text')].map(e => e.textContent)")
    assert said == [d["text"] for r in record["rounds"] for d in r["discussion"]]
    private = browser.eval("[...document.querySelectorAll('#transcript .msg.private')].map(e => "
                           "getComputedStyle(e.querySelector('.who'), '::before').content)")
    assert len(private) == sum(c["phase"] in ("thinking", "reflection") for c in record["calls"]) > 0
    assert set(private) == {'"PRIVATE · "'}
    utilities = browser.eval("[...document.querySelectorAll('#outcome tbody tr')].map(r => r.cells[4].textContent)")
    assert [float(u) for u in utilities] == pytest.approx(record["outcome"]["discounted_utility"], abs=0.005)
    first = record["experiment_id"] + ":" + str(record["game_index"])
    browser.click("#next-game")
    settle(browser)
    assert browser.eval("document.querySelector('#transcript').dataset.game") != first

    # invalid moves and re-asks are highlighted with the raw reply
    clear(browser)
    choose(browser, "invalid", "by focal")
    assert shown(browser) == 1
    record = recs[open_first_game(browser)]
    failed = [c for c in record["calls"] if c["error"]]
    attempts = browser.eval("[...document.querySelectorAll('#transcript .attempt')].map(e => e.textContent)")
    assert len(attempts) == len(failed) > 0
    assert all(c["error"] in text and c["reply"] in text for c, text in zip(failed, attempts))
    assert browser.eval("document.querySelectorAll('#transcript .attempt.final').length") == sum(record["invalid_moves"])
    assert browser.eval("document.querySelectorAll('#transcript .badge.reask').length") > 0
    browser.eval("document.querySelectorAll('#transcript .phase')[2].scrollIntoView();"  # round 1's proposals,
                 "document.getElementById('viewer').scrollTop -= 60")  # below the viewer's sticky title
    shot_transcript = browser.screenshot(tmp_path / "transcript.png")

    # a failed game says why
    clear(browser)
    choose(browser, "outcome", "error")
    open_first_game(browser)
    assert "ContextWindowExceededError" in browser.eval("document.querySelector('#outcome.error').textContent")

    # judge labels sit on the message they label, and filter the list
    clear(browser)
    choose(browser, "label", "anchoring")
    assert shown(browser) == 1
    open_first_game(browser)
    chips = browser.eval("[...document.querySelectorAll('#transcript .msg [data-label]')].map(e => e.dataset.label)")
    assert chips == LABELLED["labels"]

    assert browser.errors == [] and browser.requests == []
    for png in (shot, shot_transcript):
        data = png.read_bytes()
        size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and size == (1400, 1000)
    if os.environ.get("BARGAIN_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copy(shot, DOCS / "report-overview.png")
        shutil.copy(shot_transcript, DOCS / "report-transcript.png")


@pytest.mark.slow
def test_large_reports_keep_the_transcripts_in_a_folder_beside_them(browser, result, store, tmp_path):
    html = write_report(result, store, tmp_path / "report.html", embed_mb=0).read_text()
    blocks = sorted((tmp_path / "report_files").glob("block-*.js"))
    assert 'id="block-' not in html and len(blocks) == -(-len(records(store)) // GAMES_PER_BLOCK)
    browser.open(tmp_path / "report.html", ready="document.body.dataset.ready")
    choose(browser, "model", "sim-weak")
    record = records(store)[open_first_game(browser)]
    said = browser.eval("[...document.querySelectorAll('#transcript .msg.public .text')].map(e => e.textContent)")
    assert said == [d["text"] for r in record["rounds"] for d in r["discussion"]]
    assert browser.errors == [] and browser.requests == []
    # rebuilt small, the report embeds its games again and the stale folder goes
    write_report(result, store, tmp_path / "report.html")
    assert not (tmp_path / "report_files").exists() and 'id="block-0"' in (tmp_path / "report.html").read_text()
