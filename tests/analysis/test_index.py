"""The store's columnar index on real offline games: kept as games are written, the same tables as the
records give, mended when stale (new, rewritten, damaged, deleted records, other code), rebuildable."""

from __future__ import annotations

import json
import logging
import shutil

import pandas as pd
import pytest

from analysis import index, journal, rows
from analysis import load as load_module
from analysis.__main__ import main
from analysis.load import frames, iter_records, load_store
from analysis.report import analyze
from bargain import sim
from bargain.runner import run_experiment
from bargain.sim import strategies
from bargain.sim.observe import read
from bargain.store import load_record

# item game: 2 models x 2 draws x 2 seats; the gaslighter, treaty and co-funding: 1 draw x 2 seats
N_GAMES = 2 * 2 * 2 + 2 + 2 + 2


def gaslighter(messages: list[dict]) -> str:
    """Boulware, whose messages from round 2 on also say its best item is worth nothing to it (a false
    claim) and that the other offered it the last item and accepted its proposal (which the record
    mostly does not bear out: the other, stronger, rejects its proposals)."""
    reply = strategies.respond("boulware", messages, seed=0)
    sit = read(messages)
    if sit.phase != "discussion" or sit.round < 2:
        return reply
    best = sit.items[int(sit.values[:, sit.me].argmax())]
    return (f"The {best} is worth nothing to me. You offered me the {sit.items[-1]} already. "
            f"You accepted my proposal before. {reply}")


sim.register("gaslighter", gaslighter)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Real offline games through the runner (so through the store's write hook): two focal models in the
    item game (whose messages claim top items), a gaslighting one, and a treaty and a co-funding experiment."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bargain.config import register
    from tests.conftest import CONF

    store = tmp_path_factory.mktemp("played") / "store"
    register()
    runs = [[f"model={m}", "model@opponent=boulware", "n_games=2"] for m in ("sim-weak", "sim-strong")]
    # the opponent's metadata holds a date, as real models' do (text the bulk JSON reader must keep as text)
    runs += [["model=boulware", "model.litellm_model=sim/gaslighter", "model@opponent=sim-strong", "n_games=1",
              "opponent.metadata.release_date='2025-04-14'"],
             ["game=treaty", "n_games=1"], ["game=cofunding", "model@opponent=sim-base", "n_games=1"]]
    for overrides in runs:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            run_experiment(compose(config_name="config", overrides=[
                f"store={store}", *overrides, "env.max_rounds=4", "run.progress=false"]))
    GlobalHydra.instance().clear()
    return store


@pytest.fixture
def store(played, tmp_path):
    """A fresh copy of the played store, journaled as the write hook does (a copy has new inodes, so the
    played store's journal lines do not match it)."""
    shutil.copytree(played, tmp_path / "store", ignore=shutil.ignore_patterns("index", ".cache"))
    for path in sorted((tmp_path / "store").rglob("games/*.json")):
        journal.on_write(path)
    return tmp_path / "store"


def largest_experiment(store):
    """An item-game experiment (four games)."""
    return max(sorted(p.parent for p in store.rglob("experiment.json")), key=lambda e: len(list(e.glob("games/*.json"))))


def from_records(store):
    return frames(iter_records(store))


def assert_same(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)


def counting_reads(monkeypatch) -> list:
    """Record every record the index reads itself (instead of taking its rows from the index or journal)."""
    reads = []
    real = load_module.read_record

    def read(path, skipped=None):
        reads.append(path.name)
        return real(path, skipped)

    monkeypatch.setattr(load_module, "read_record", read)
    return reads


def test_written_games_are_journaled_then_folded_into_parquet(played, monkeypatch, caplog):
    store = played  # the only test that folds the runner's own journal lines
    lines = [json.loads(line) for line in (store / "index" / journal.PENDING).read_text().splitlines()]
    assert len(lines) == N_GAMES and {entry["version"] for entry in lines} == {journal.VERSION}
    reads = counting_reads(monkeypatch)
    expected = from_records(store)
    reads.clear()
    with caplog.at_level(logging.INFO, logger="analysis.index"):
        assert_same(load_store(store), expected)
    assert reads == []  # every row came from the journal
    assert "one by one" not in caplog.text  # read in bulk
    assert set(expected[1]["release_date"].dropna()) == {"2025-04-14"}
    assert not (store / "index" / journal.PENDING).exists()
    assert {p.name for p in (store / "index").glob("*.parquet")} == {f"{t}.parquet" for t in index.ALL}
    assert_same(load_store(store), expected)  # from Parquet alone
    assert reads == []
    calls = index.load(store, ("calls",))["calls"].to_pandas()
    assert len(calls) == sum(len(r["calls"]) for r in iter_records(store))
    assert calls["prompt_tokens"].gt(0).all() and calls["latency_s"].notna().all()
    reads.clear()
    behaviour = index.load(store, rows.BEHAVIOUR)
    assert reads == []
    direct = index.tables_from_records(iter_records(store))
    for name in rows.BEHAVIOUR:
        assert behaviour[name].num_rows > 0, name
        pd.testing.assert_frame_equal(behaviour[name].to_pandas(), direct[name].to_pandas(), obj=name)


def test_analysis_from_the_index_equals_analysis_from_the_records(store, tmp_path):
    """Every table (fits with their bootstrap intervals, ratings, reference-solution metrics, behaviour
    tables) is the same whether the rows come from the journal, the Parquet index or the records themselves."""
    first = analyze(store, tmp_path / "journal", n_boot=100)
    assert set(first.tables["games"]["game"]) == {"items", "treaty", "cofunding"}
    second = analyze(store, tmp_path / "parquet", n_boot=100)
    for folder in store.rglob("index"):
        shutil.rmtree(folder)
    third = analyze(store, tmp_path / "records", n_boot=100)
    assert first.tables["headline"]["slope"].notna().any()  # the item ladder (treaty, co-funding: one model)
    # behaviour rows come from the index too: claims (some false), gaslighting flags, their rates
    assert first.tables["claims"]["false"].any() and not first.tables["claims"]["false"].all()
    assert "agreement" in set(first.tables["gaslighting"]["kind"])
    assert first.tables["gaslighting_rates"]["rate"].gt(0).any() and len(first.tables["truthfulness"])
    for name, table in first.tables.items():
        pd.testing.assert_frame_equal(table, second.tables[name], obj=name)
        pd.testing.assert_frame_equal(table, third.tables[name], obj=name)


def test_stale_rows_are_derived_again_from_the_records(store, monkeypatch):
    load_store(store)  # fold the journal
    exp = largest_experiment(store)
    games = exp / "games"
    # rewritten by hand: same file, other content
    record = load_record(games / "00001.json")
    record["outcome"]["discounted_utility"] = [u + 1.0 for u in record["outcome"]["discounted_utility"]]
    (games / "00001.json").write_text(json.dumps(record))
    # a game written without the hook (an older bargain, a copy)
    extra = {**load_record(games / "00000.json"), "game_index": 7}
    (games / "00007.json").write_text(json.dumps(extra))
    (games / "00003.json").unlink()  # deleted
    reads = counting_reads(monkeypatch)
    got = load_store(store)
    assert sorted(reads) == ["00001.json", "00007.json"]
    assert_same(got, from_records(store))
    reads.clear()
    load_store(store)
    assert reads == []


def test_torn_pending_lines_lose_nothing(store, monkeypatch, caplog):
    """A writer killed mid-line leaves a torn line, which the next append runs into, or a torn last line:
    those games' records are read instead; every other line is used."""
    pending = store / "index" / journal.PENDING
    lines = pending.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 2]  # line 3 runs into it: both unreadable
    lines[-1] = lines[-1][:-10]
    pending.write_bytes(b"".join(lines))
    reads = counting_reads(monkeypatch)
    with caplog.at_level(logging.INFO, logger="analysis.index"):
        got = load_store(store)
    assert len(reads) == 3 and "one by one" in caplog.text
    reads.clear()
    assert_same(got, from_records(store))


def test_damaged_records_stay_out_and_are_quarantined_as_without_an_index(store):
    load_store(store)
    exp = largest_experiment(store)
    (exp / "games" / "00002.json").write_text('{"cut short')
    skipped: list[str] = []
    games, _ = load_store(store, skipped)
    assert len(skipped) == 1 and "00002.json: not JSON" in skipped[0] and "quarantine" in skipped[0]
    assert list((exp / "quarantine").glob("00002.json.*"))
    assert 2 not in set(games.loc[games["experiment_id"] == exp.name, "game_index"])
    assert len(games) == N_GAMES - 1
    assert_same(load_store(store), from_records(store))


def test_rows_of_other_code_are_rebuilt(store, monkeypatch):
    load_store(store)
    monkeypatch.setattr(index, "VERSION", "another-version")
    reads = counting_reads(monkeypatch)
    got = load_store(store)
    assert len(reads) == N_GAMES
    assert_same(got, from_records(store))


def test_read_only_store_is_analysed_from_its_records(store, monkeypatch):
    monkeypatch.setattr(index, "_locked", _not_writable)
    assert_same(load_store(store), from_records(store))
    assert not list(store.rglob("*.parquet"))


def _not_writable(folder):
    import contextlib

    @contextlib.contextmanager
    def locked():
        yield False

    return locked()


def test_index_command_rebuilds_from_the_records(store, capsys, monkeypatch):
    load_store(store)
    reads = counting_reads(monkeypatch)
    main(["index", str(store)])
    assert f"indexed {N_GAMES} game(s)" in capsys.readouterr().out
    assert len(reads) == N_GAMES
    reads.clear()
    assert_same(load_store(store), from_records(store))
    with pytest.raises(SystemExit):
        main(["index", str(store / "nope")])


def test_one_experiment_analysed_alone_leaves_the_others_rows_and_journal(store, monkeypatch):
    exp = sorted(p.parent for p in store.rglob("experiment.json"))[0]
    reads = counting_reads(monkeypatch)
    games, _ = load_store(exp)
    assert set(games["experiment_id"]) == {exp.name} and len(games) == len(list(exp.glob("games/*.json")))
    assert reads == []
    assert (store / "index" / journal.PENDING).exists()
    assert_same(load_store(store), from_records(store.parent / "store"))
    reads.clear()
    load_store(store)
    assert reads == []
