"""Spread one job's games over worker processes, for when one event loop runs out of CPU.

Each call costs a few milliseconds of client CPU (most of it inside LiteLLM), so one event loop
serves a few hundred calls a second: at 200 ms per call that is a few dozen games at once. With
``run.workers`` > 1 the job plans its games once (experiment record, run log, what to resume),
splits them round-robin over that many processes and merges their records. Each worker plays its
share with its own event loop and backend, under the same guarantees as a single process:

- **records** are written by the worker that played the game, atomically, under the store's claim;
- **spend**: every worker appends to the same spend journal under its ``flock`` and checks the
  budgets against the journal's totals when a call is about to be sent, so caps hold across them
  exactly as across the jobs of a sweep;
- **limits**: each endpoint's ``max_concurrency``, ``rpm`` and ``tpm`` are divided between the
  workers (the job never uses more workers than an endpoint has concurrency slots or requests a
  minute), so together they stay within them;
- **stops**: a signal to the job (or to the workers directly, as from SLURM) stops every worker
  cleanly, a second one at once; a job-level failure in one worker (a dead key, an unwritable
  store) stops the others, and the job raises it.

Self-hosted servers (``model.server``) are started once by the job, before the workers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bargain.signals import Stopped, stop_on_signals

if TYPE_CHECKING:
    from bargain.runner import Experiment, Summary

log = logging.getLogger(__name__)
GAMES_PER_WORKER = 16  # games one event loop plays at once with CPU to spare (bench/callpath.py)
_FAILED = -1  # the stop flag's value when another worker failed (else a signal number)


def workers(run: dict[str, Any]) -> int:
    """The worker processes a job uses: ``run.workers``, or by default one per GAMES_PER_WORKER concurrent
    games, at most one per CPU core this process may use."""
    if run.get("workers"):
        return int(run["workers"])
    return max(1, min(len(os.sched_getaffinity(0)), math.ceil(run["game_concurrency"] / GAMES_PER_WORKER)))


def _share(models: dict[str, dict[str, Any]], processes: int) -> dict[str, dict[str, Any]]:
    """Each worker's models: an endpoint's limits divided between the workers; servers already started."""
    shared = {}
    for key, model in models.items():
        model = {**model, "server": None, "max_concurrency": (model.get("max_concurrency") or 8) // processes}
        for limit in ("rpm", "tpm"):
            if model.get(limit):
                model[limit] = model[limit] // processes
        shared[key] = model
    return shared


def play_in_workers(experiment: Experiment, processes: int) -> Summary:
    """Plan the experiment's games here, play them in ``processes`` worker processes, merge their summaries."""
    from bargain.runner import Summary

    backend = experiment.backend
    # never more workers than an endpoint has concurrency slots or requests a minute, so each gets a share
    caps = [m.get("max_concurrency") or 8 for m in backend.models.values()]
    caps += [m["rpm"] for m in backend.models.values() if m.get("rpm")]
    todo, kept = experiment.plan()
    processes = min(processes, len(todo), *caps)
    summaries: list[Summary] = []
    if processes <= 1:
        summaries.append(asyncio.run(experiment.run(todo)))
    else:
        log.info("experiment %s: %d games over %d worker processes", experiment.id, len(todo), processes)
        summaries = _run_workers(experiment, [todo[w::processes] for w in range(processes)])
    records = sorted((r for s in summaries for r in s.records), key=lambda r: r["game_index"])
    total = experiment.total_games
    return Summary(
        experiment.id, experiment.store.dir, total, total - len(todo), records,
        unstarted=sum(s.unstarted for s in summaries), kept=kept,
        stopped_by=next((s.stopped_by for s in summaries if s.stopped_by), None),
        budget=next((s.budget for s in summaries if s.budget), None),
    )


def _run_workers(experiment: Experiment, shares: list[list[int]]) -> list[Summary]:
    """Start one spawned process per share, wait for every summary; raise the first job-level failure."""
    backend = experiment.backend
    context = multiprocessing.get_context("spawn")  # no fork: LiteLLM and the ledger hold threads and locks
    stop = context.Value("i", 0)
    models = _share(backend.models, len(shares))
    run = {**backend.run, "game_concurrency": math.ceil(backend.run["game_concurrency"] / len(shares)), "progress": False}
    pipes, procs = [], []
    for share in shares:
        receive, send = context.Pipe(duplex=False)
        args = (experiment.cfg, run, models, share, stop, os.getpid(), send)
        proc = context.Process(target=_worker, args=args)
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    summaries: list[Summary] = []
    failure: BaseException | None = None
    with stop_on_signals(_stop_workers(stop, procs)):
        waiting = dict(zip(pipes, procs))
        while waiting:
            for pipe in multiprocessing.connection.wait(list(waiting)):
                proc = waiting.pop(pipe)
                try:
                    kind, result = pipe.recv()
                except EOFError:  # died without a word (killed): the next run plays its unrecorded games
                    proc.join()
                    kind, result = "error", RuntimeError(f"worker process {proc.pid} died (exit code {proc.exitcode})")
                proc.join()
                if kind == "ok":
                    summaries.append(result)
                    continue
                failure = failure or result
                with stop.get_lock():
                    if not stop.value:
                        stop.value = _FAILED
    if failure is not None:
        raise failure
    return summaries


def _stop_workers(stop: Any, procs: list[Any]) -> Callable[[int, Any], None]:
    """The job's signal handler: a first SIGINT/SIGTERM stops every worker cleanly (through ``stop``), a second kills them."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.value > 0:
            for proc in procs:
                proc.kill()  # records are written atomically; the ledger settles what was in flight
            raise Stopped(signal.Signals(signum).name)
        log.warning("%s: stopping the workers; the games in flight are recorded as interrupted",
                    signal.Signals(signum).name)
        stop.value = signum

    return handle


def _worker(cfg: dict[str, Any], run: dict[str, Any], models: dict[str, dict[str, Any]], games: list[int], stop: Any,
            parent: int, pipe: Any) -> None:
    """One worker process: play ``games`` with its share of the job's concurrency (``run``) and send back
    the summary, or the job-level failure."""
    from bargain.runner import Experiment, job_backend

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        with stop_on_signals():
            backend = job_backend(cfg, models)
            with backend.session(Path(cfg["store"]).expanduser() / ".servers"):
                experiment = Experiment(cfg, backend)  # records show the job's config, not the worker's share
                experiment.cfg = {**cfg, "run": run}
                summary = asyncio.run(_play(experiment, games, stop, parent))
        pipe.send(("ok", summary))
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent, which raises it
        try:
            pipe.send(("error", exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its message does
            pipe.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


async def _play(experiment: Experiment, games: list[int], stop: Any, parent: int) -> Summary:
    """Play the games; stop when the parent says so (a signal, another worker's failure) or is gone."""

    async def watch() -> None:
        while not stop.value and os.getppid() == parent:
            await asyncio.sleep(0.1)
        if stop.value == _FAILED:
            experiment._stop("another worker's job-level failure")
        else:
            experiment._stop(signal.Signals(stop.value).name if stop.value else "the job's exit")

    watcher = asyncio.create_task(watch())
    try:
        return await experiment.run(games)
    finally:
        watcher.cancel()
