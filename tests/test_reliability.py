"""The reliability suite: the guarantees in the README's "Guarantees" section, re-measured.

- 200 games at a 20% mixed fault rate, 40 on each of five provider routes: none lost, none errored.
- 20 SIGKILLs of jobs mid-play over HTTP: no record corrupt, missing, duplicated or rewritten; the
  spend ledger misses no paid call, and the calls paid twice are at most the calls in flight at the kills.
- 18 kinds of damaged record: status, analysis and resume each list them, none crashes, resume plays
  exactly those games again.
- 59 bad inputs on the command line (games, roster models, reasoning and context settings included): each answered by one line and exit code 2, nothing written.
- Secrets and paths: a password in a URL is refused before Hydra writes a file or names a folder; Hydra's
  job folders stay inside the sweep dir whatever a value holds; validation runs before LiteLLM is imported.

Each test prints its figures (``pytest -s``). Kills use a fork server that has imported the pipeline
once, so each of the 20 jobs is a real process killed by a real SIGKILL without paying the import again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from faultserver import MIXED, FaultServer
from omegaconf import OmegaConf

from bargain.backend.budget import Ledger
from bargain.runner import run_experiment
from bargain.store import load_record

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("openai/test", "anthropic/claude-test", "openrouter/qwen/test", "hosted_vllm/test", "custom_openai/test")
SHORT_GAME = ["env.max_rounds=1", "env.thinking=false", "env.reflection=false"]  # 6 calls a game


def http_lineup(route: str, url: str) -> list[str]:
    """Both seats played over HTTP (two model names, so every request names its game and seat), priced."""
    return [f"{seat}.{key}" for seat, name in (("model", "a"), ("opponent", "b")) for key in (
        f"name=http-{name}", f"litellm_model={route}-{name}", f"api_base={url}",
        "price_input_per_mtok=1", "price_output_per_mtok=1", "max_concurrency=8")]


def records(store: Path) -> list[dict]:
    return [load_record(p) for p in sorted(store.glob("*/games/*.json"))]


def test_200_games_at_a_20_percent_fault_rate_on_five_routes_lose_nothing(make_cfg, tmp_path):
    figures = {}
    for i, route in enumerate(ROUTES):
        with FaultServer(fault_rate=0.2, seed=i) as srv:
            summary = run_experiment(make_cfg(
                *http_lineup(route, srv.url), *SHORT_GAME, "n_games=20", "run.game_concurrency=8",
                # 12 retries: at the default 6 a call fails after 7 faults in a row, 0.2^7 a call, so ~1.5%
                # of runs of ~1,200 calls would lose a game to chance; 0.2^13 makes that ~1 in a million
                "run.max_retries=12", "run.backoff_base_s=0.01", "run.backoff_max_s=0.05",
                f"store={tmp_path / route.split('/')[0]}"))
            statuses = Counter(r["status"] for r in summary.records)
            figures[route] = (len(summary.records), dict(statuses), dict(srv.books.faults), srv.books.requests)
            assert statuses == {"complete": 40}, (route, [r["error"] for r in summary.records if r["error"]])
            assert 0.15 <= sum(srv.books.faults.values()) / srv.books.requests <= 0.25
            assert srv.books.paid_twice == 0
    requests = sum(n for *_, n in figures.values())
    faults = sum(sum(f.values()) for *_, f, _ in figures.values())
    print(f"\nfaults: {sum(n for n, *_ in figures.values())} games on {len(ROUTES)} routes, {requests} requests, "
          f"{faults} faults ({faults / requests:.1%}), lost 0, errored 0, paid twice 0")
    assert sum(n for n, *_ in figures.values()) == 200
    assert set().union(*(faults for *_, faults, _ in figures.values())) == set(MIXED)  # every kind of fault was met


def _play(cfg: dict) -> None:
    """A job in a fork-server child: the process the test kills."""
    run_experiment(cfg)


def test_20_sigkills_lose_nothing_and_pay_twice_at_most_the_calls_in_flight(make_cfg, tmp_path):
    store = tmp_path / "store"
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bargain.runner"])
    rng = random.Random(12)
    with FaultServer(delay_s=0.02) as srv:
        cfg = OmegaConf.to_container(make_cfg(*http_lineup("openai/test", srv.url), "n_games=15", "env.max_rounds=2",
                                              "run.game_concurrency=4"), resolve=True, enum_to_str=True)
        complete: dict[Path, int] = {}  # complete records and their mtimes, to prove none is ever rewritten
        kills = mid_play = 0
        while kills < 20:
            job = context.Process(target=_play, args=(cfg,))
            sent = srv.books.requests
            job.start()
            while srv.books.requests == sent and job.is_alive():
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.6))
            mid_play += job.is_alive()
            job.kill()
            job.join()
            kills += 1
            for path in store.glob("*/games/*.json"):
                record = load_record(path)  # every file present is whole
                if record["status"] == "complete":
                    assert complete.setdefault(path, path.stat().st_mtime_ns) == path.stat().st_mtime_ns
        finished = context.Process(target=_play, args=(cfg,))
        finished.start()
        finished.join()
        assert finished.exitcode == 0
        books = srv.books
    done = records(store)
    assert [r["game_index"] for r in done] == list(range(30)) and all(r["status"] == "complete" for r in done)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in complete.items())
    events = [json.loads(line) for line in (store / ".ledger" / "spend.jsonl").read_text().splitlines()]
    how = Counter(e["how"] for e in events if e["t"] == "done")
    in_flight = how["cache"] + how["max"]  # calls on record when a kill struck, reconciled afterwards
    assert sum(e["t"] == "send" for e in events) == sum(how.values())  # every call settled
    assert books.billed <= how["reply"] + in_flight  # no answered call is missing from the ledger
    assert books.paid_twice <= in_flight  # paid twice: at most the calls in flight at the kills
    ledger = Ledger(store / ".ledger" / "spend.jsonl")
    ledger.open()
    assert ledger.total >= books.billed_tokens / 1e6 * (1 - 1e-9)  # never less than what was billed ($1/Mtok)
    print(f"\nkills: {kills} ({mid_play} mid-play), complete records rewritten: 0, calls billed {books.billed}, "
          f"paid twice {books.paid_twice}, in flight at the kills {in_flight} (reconciled from the cache "
          f"{how['cache']}, at their maximum {how['max']}), ledger ${ledger.total:.6f} vs billed ${books.billed_tokens / 1e6:.6f}")


def _damage(games: Path, exp_id: str) -> dict[str, str]:
    """Eighteen kinds of damage, one per game file; returns file name -> kind."""
    good = load_record(games / "00000.json")

    def edited(**changes) -> bytes:
        return json.dumps({**good, **changes}).encode()

    kinds = {
        "half-written": b'{"schema_version": 1, "status": "comp', "binary junk": b"\x00\xff\xfe\x9f junk",
        "a JSON list": b"[1, 2]", "a JSON string": b'"complete"', "empty": b"",
        "status only": b'{"status": "complete"}', "utf-16": json.dumps(good).encode("utf-16"),
        "unknown version 0": edited(schema_version=0), "complete without outcome": edited(outcome=None),
        "index as text": edited(game_index="3"), "unknown status": edited(status="done"),
        "a seat missing": edited(agents=good["agents"][:1]),
        "utilities short": edited(outcome={**good["outcome"], "raw_utility": [1.0]}),
        "another experiment's": edited(experiment_id="0" * 16),
    }
    names = {}
    for index, (kind, data) in enumerate(kinds.items(), start=1):
        path = games / f"{index:05d}.json"
        path.write_bytes(data if kind != "index as text" else edited(game_index=index + 100))
        names[path.name] = kind
    special = {"a directory": lambda p: p.mkdir(), "a symlink loop": lambda p: p.symlink_to(p.name),
               "a dangling symlink": lambda p: p.symlink_to("nowhere.json"),
               "the wrong game": lambda p: p.write_bytes(edited(game_index=0))}
    for index, (kind, make) in enumerate(special.items(), start=len(kinds) + 1):
        path = games / f"{index:05d}.json"
        if path.exists() or path.is_symlink():
            path.unlink()
        make(path)
        names[path.name] = kind
    return names


def test_18_kinds_of_damaged_record_never_stop_status_analysis_or_resume(make_cfg, tmp_path, capsys):
    from analysis.__main__ import main as analysis_main
    from bargain.status import main as status_main

    cfg = make_cfg("n_games=12", "env.max_rounds=2")
    first = run_experiment(cfg)
    damaged = _damage(first.directory / "games", first.experiment_id)
    assert len(damaged) == 18
    copies = {name: tmp_path / name for name in ("for-status", "for-analysis")}
    for copy in copies.values():
        shutil.copytree(tmp_path / "store", copy, symlinks=True)
    capsys.readouterr()

    assert status_main([str(copies["for-status"])]) == 0
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if line.startswith("problem:") and "damaged" in line]
    assert sorted(Path(line.split(": damaged")[0].removeprefix("problem: ")).name for line in listed) == sorted(damaged)

    analysis_main([str(copies["for-analysis"]), "--bootstrap", "20", "--out", str(tmp_path / "out")])  # no exception
    out = capsys.readouterr().out
    assert f"skipped {len(damaged)} damaged record(s)" in out

    resumed = run_experiment(cfg)
    assert sorted(f"{r['game_index']:05d}.json" for r in resumed.records) == sorted(damaged)
    assert all(r["status"] == "complete" for r in records(tmp_path / "store"))
    assert len(list((first.directory / "quarantine").glob("*.reason"))) == 18
    print(f"\ndamaged records: {len(damaged)} kinds; status, analysis and resume crashed 0 times; "
          f"resume replayed {len(resumed.records)} games")


BAD_INPUTS = {
    "env.competition=1.3": "env.competition=1.3 must be in [0, 1]",
    "env.competition=-0.1": "env.competition=-0.1 must be in [0, 1]",
    "env.competition=high": "could not be converted to Float",
    "env.gamma=0": "env.gamma=0.0 must be in (0, 1]",
    "env.gamma=1.5": "env.gamma=1.5 must be in (0, 1]",
    "env.n_agents=1": "env.n_agents=1 must be an integer in [2, 10]",
    "env.n_agents=11": "env.n_agents=11 must be an integer in [2, 10]",
    "env.n_items=1": "env.n_items=1 must be an integer in [2, 12]",
    "env.max_rounds=0": "env.max_rounds=0 must be >= 1",
    "env.discussion_turns=0": "env.discussion_turns=0 must be >= 1",
    "env.max_reasks=-1": "env.max_reasks=-1 must be >= 0",
    "env.vote_threshold=0.4": "env.vote_threshold=0.4 must be in (1/2, 1]",
    "env.vote_rule=plurality": "plurality",
    "env.memory=partial": "partial",
    "env.item_names=[a,a,b,c,d]": "env.item_names must list 5 distinct",
    "+env.typo=3": "env.typo is not a config key",
    "+run.max_retry=3": "run.max_retry is not a config key (did you mean run.max_retries?",
    "+model.temprature=0.5": "model.temprature is not a config key",
    "typo=1": "Could not override 'typo'",
    "seed=-1": "seed=-1 must be an integer >= 0",
    "seed=abc": "could not be converted to Integer",
    "n_games=-2": "n_games=-2 must be >= 0",
    "store=": "store='' must name a directory",
    "preferences.cooperation=0.5": "preferences.cooperation is only used with preferences=matrix",
    "preferences=matrix preferences.cooperation=2": "preferences.cooperation=2.0 must be in [0, 1]",
    "run.game_concurrency=0": "run.game_concurrency=0 must be >= 1",
    "run.max_retries=-1": "run.max_retries=-1 must be >= 0",
    "run.timeout_s=0": "run.timeout_s=0.0 must be > 0",
    "run.backoff_base_s=-1": "run.backoff_base_s=-1.0 must be > 0",
    "run.backoff_max_s=0.5": "run.backoff_max_s=0.5 must be >= run.backoff_base_s=1.0",
    "run.budget_usd=0": "run.budget_usd=0.0 must be > 0 or null",
    "run.sweep_budget_usd=-5": "run.sweep_budget_usd=-5.0 must be > 0 or null",
    "run.ledger=../spend": "run.ledger='../spend' must be a plain file name",
    "run.cache_dir=": "run.cache_dir='' must name a directory",
    "run.max_error_fraction=2": "run.max_error_fraction=2.0 must be in [0, 1]",
    "model.rpm=-5": "model.rpm=-5 must be >= 1 or null",
    "model.tpm=0": "model.tpm=0 must be >= 1 or null",
    "model.max_concurrency=0": "model.max_concurrency=0 must be >= 1",
    "model.price_input_per_mtok=-1": "model.price_input_per_mtok=-1.0 must be >= 0 (USD per million tokens) or null",
    "model.name=../../outside": "model.name='../../outside' must be a plain name",
    "model.params.temperature=hot": "model.params.temperature='hot' must be a number in [0, 2]",
    "+model.params.max_tokens=0": "model.params.max_tokens=0 must be an integer >= 1",
    "+model.params.api_key=sk-x": "keys never go in configs",
    "model=no-such-model": "Could not find 'model/no-such-model'",
    "model.api_base=http://user:PASS@127.0.0.1:9/v1": "model.api_base has credentials in a URL",
    "env.n_agents=2 +model@opponents.b=sim-weak": "opponents has 1 entries but env.n_agents=2",
    "no-equals-sign": "Error parsing override",
    "game=chess": "Could not find 'game/chess'",
    "game=treaty game.rho=2": "game.rho=2.0 must be in [",
    "game=treaty game.n_issues=1": "game.n_issues=1 must be an integer in [2, 12]",
    "game=cofunding game.alpha=1.5": "game.alpha=1.5 must be in [0, 1]",
    "game=treaty env.item_names=[a,b,c,d,e]": "env.item_names names the item game's items",
    "game=cofunding preferences=matrix": "preferences=matrix belongs to the item game",
    "game=treaty +game.rh=1": "game.rh is not a config key (did you mean game.rho?",
    "model=litellm": "model=litellm needs model.litellm_model=",
    "model.reasoning.effort=extreme": "model.reasoning.effort=extreme must be one of",
    "model.reasoning.budget_tokens=-5": "model.reasoning.budget_tokens=-5 must be >= 0 or null",
    "env.context_overflow=truncate": "expected one of [end, compact]",
    "model.context_window=0": "model.context_window=0 must be > 0 tokens or null",
}


def _cli(tmp: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bargain.run", *args], cwd=tmp, capture_output=True, text=True,
                          timeout=300, env=env or os.environ)


# One interpreter imports the command once, then forks a child per input that runs it as
# ``python -m bargain.run <args>`` would (same cli(), its own stdout, stderr and exit code): 59 inputs
# cost one import instead of 59 (3.4 s an input with an interpreter each, 2 s forked, on a loaded 2-core machine).
FORKED_CLI = """
import json, os, runpy, sys
import bargain.run  # the command's imports, done once
del sys.modules["bargain.run"]  # each child runs the module itself, as python -m does
answers = []
for args in json.loads(sys.argv[1]):
    out = os.path.join(sys.argv[2], "out")
    pid = os.fork()
    if pid == 0:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(os.open(out + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        sys.argv = ["bargain.run", *args]
        try:
            runpy.run_module("bargain.run", run_name="__main__", alter_sys=True)  # python -m bargain.run
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    answers.append([code, open(out).read(), open(out + ".err").read()])
print(json.dumps(answers))
"""


def _clis(cwd: Path, scratch: Path, inputs: list[list[str]]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of ``python -m bargain.run <args>`` in ``cwd`` for each input."""
    result = subprocess.run([sys.executable, "-c", FORKED_CLI, json.dumps(inputs), str(scratch)], cwd=cwd,
                            capture_output=True, text=True, timeout=600, check=True)
    return [tuple(answer) for answer in json.loads(result.stdout)]


def test_59_bad_inputs_are_each_answered_by_one_line_and_leave_nothing_behind(tmp_path_factory):
    assert len(BAD_INPUTS) >= 40
    cwd, scratch = tmp_path_factory.mktemp("cwd"), tmp_path_factory.mktemp("scratch")
    answers = _clis(cwd, scratch, [args.split() for args in BAD_INPUTS])
    for (args, expected), (code, out, err) in zip(BAD_INPUTS.items(), answers):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, err)
        assert expected in lines[0], (args, lines[0])
        assert "PASS" not in err + out
    assert len(answers) == len(BAD_INPUTS) and list(cwd.iterdir()) == []  # not a log, not a Hydra folder, not a store
    print(f"\nbad inputs: {len(answers)}, each one line, exit code 2, nothing written")


def test_validation_runs_before_litellm_is_imported(tmp_path):
    fake = tmp_path / "fake"
    (fake / "litellm").mkdir(parents=True)
    (fake / "litellm" / "__init__.py").write_text("raise ImportError('litellm was imported')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(fake)])}
    started = time.monotonic()
    result = _cli(tmp_path, "env.competition=1.3", "+run.typo=1", env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 2 and result.stderr.strip().startswith("error: run.typo is not a config key")
    ok = _cli(tmp_path, "n_games=0", f"store={tmp_path / 'store'}", f"hydra.run.dir={tmp_path / 'h'}", env=env)
    assert "litellm was imported" in ok.stderr  # the fake is on the path: a valid config does import it
    print(f"\nvalidation error after {elapsed:.2f} s, LiteLLM never imported")


def test_a_password_in_a_url_is_refused_before_anything_is_written(tmp_path):
    secret = "s3cret-PASS-42"
    env = {**os.environ, "BARGAIN_TEST_PASS": secret}
    for base in (f"http://user:{secret}@127.0.0.1:9/v1", "http://user:${oc.env:BARGAIN_TEST_PASS}@127.0.0.1:9/v1"):
        for mode in ([], ["-m", "env.competition=0.5,1", "hydra.sweep.subdir=${hydra.job.override_dirname}"]):
            result = _cli(tmp_path, *mode, f"model.api_base={base}", env=env)
            assert result.returncode == 2 and "model.api_base has credentials in a URL" in result.stderr
            assert secret not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # no Hydra file, no folder named after the override


def test_hydra_job_folders_stay_in_the_sweep_dir_whatever_a_value_holds(tmp_path):
    sweep = tmp_path / "deep" / "sweep"
    values = ["../../../escape", "/abs/path", ".."]
    result = _cli(tmp_path, "-m", "sweep=smoke", f"hydra.sweep.dir={sweep}", f"store={tmp_path / 'store'}", "n_games=0",
                  "model=sim-weak", "env.competition=0.5", f"run.cache_dir={','.join(values)}")
    assert result.returncode == 0, result.stderr
    jobs = [p.parent for p in tmp_path.rglob(".hydra")]
    assert len(jobs) == len(values) and all(job.parent == sweep for job in jobs)  # one folder each, inside
    names = sorted(job.name.split("run.cache_dir=")[1] for job in jobs)
    assert names == sorted([".._.._.._escape", "_abs_path", ".."])  # separators gone: a name, not a path
