"""Benchmark: SmolLM2-135M on llama.cpp through the pipeline vs llama.cpp alone, side by side in one run.

1. The default command, ``python -m bargain.run model=smollm2`` (2 draws x both seats, 10 rounds, the
   job starting and stopping the server of ``conf/model/smollm2.yaml``), timed from composition to the
   last record. Its server logs llama.cpp's own timings of every request (``llama_perf`` lines) and how
   many prompt tokens its prefix cache reused (``prefix-match hit`` lines).
2. **llama.cpp alone**: a sample of the same calls (one from each eighth of their prompt lengths: the
   exact conversations the games sent, from the records, with the same reply limit, temperature and
   response format) replayed through ``llama_cpp.Llama`` in this process with the profile's settings
   and no pipeline: no HTTP, no LiteLLM, no prefix cache (each prompt evaluated from scratch, as a
   caller that does not keep conversations would).
3. Tokens per game of the default protocol, full memory vs ``env=stateless``, from recorded usage
   (a self-hosted model costs nothing, so tokens are its cost).

Figures: prompt tokens/s (ours: the tokens the games' prompts held over the server's prompt time; with
the prefix cache only the new part of each conversation is evaluated), generation tokens/s (ours:
completion tokens over the calls' client-side time minus that prompt time, so HTTP, LiteLLM and the
cache bookkeeping count against us; llama.cpp alone: its tokens over its wall time minus its prompt
time, so sampling and the grammar count on both sides), seconds per call, the command's wall time, the share of prompt
tokens served from the prefix cache, tokens per game.

    python bench/llama.py            # the full run (needs the local-llm extra; two default commands and 8 replays)
    python bench/llama.py --smoke    # one one-round game; what CI runs
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/llama.py` finds bench.*

from bench.concurrency import config, timed  # noqa: E402

from bargain.backend.servers import expand  # noqa: E402

log = logging.getLogger("bench.llama")

DEFAULT = ("model=smollm2", "run.progress=false")
SMOKE = ("n_games=1", "counterbalance=false", "env.max_rounds=1")
_PERF = re.compile(r"llama_perf_context_print:\s+(prompt eval|eval) time =\s*([\d.]+) ms /\s*(\d+) (?:tokens|runs)")
_REUSED = re.compile(r"Llama\.generate: (\d+) prefix-match hit")
# llama_cpp.Llama keyword arguments the server profile sets, with their types
_LLAMA_ARGS = {"n_ctx": int, "n_threads": int, "n_threads_batch": int, "n_batch": int, "n_ubatch": int,
               "logits_all": lambda v: v.lower() == "true", "flash_attn": lambda v: v.lower() == "true"}


def server_figures(log_text: str) -> dict[str, float]:
    """llama.cpp's own totals over every request in a server log: prompt/generation tokens and ms, reused tokens."""
    totals = {"prompt_ms": 0.0, "prompt_tokens": 0, "eval_ms": 0.0, "eval_tokens": 0, "requests": 0, "reused": 0}
    for kind, ms, n in _PERF.findall(log_text):
        if kind == "prompt eval":
            totals["prompt_ms"] += float(ms)
            totals["prompt_tokens"] += int(n)
            totals["requests"] += 1
        else:
            totals["eval_ms"] += float(ms)
            totals["eval_tokens"] += int(n)
    totals["reused"] = sum(int(n) for n in _REUSED.findall(log_text))
    return totals


def llama_kwargs(command: list[str]) -> tuple[str, dict[str, Any]]:
    """The GGUF path and the ``Llama(...)`` settings of a llama-cpp-python server command."""
    args = [expand(str(a), 0) for a in command]
    pairs = dict(zip(args, args[1:]))  # each argument -> the one after it: "--n_ctx" -> "8192"
    kwargs = {k: cast(pairs[f"--{k}"]) for k, cast in _LLAMA_ARGS.items() if f"--{k}" in pairs}
    return pairs["--model"], kwargs


def focal_calls(records: list[dict]) -> list[tuple[list[dict], dict]]:
    """(messages sent, call) for every call of the focal model, in the order they were sent."""
    out = []
    for record in records:
        for call in record["calls"]:
            if record["agents"][call["seat"]]["role"] == "focal":
                transcript = record["transcripts"][call["seat"]]
                out.append(([m for start, end in call["sent"] for m in transcript[start:end]], call))
    return sorted(out, key=lambda pair: pair[1]["started"])


def play(tmp: Path, name: str, *overrides: str) -> dict[str, Any]:
    """Play one command into its own store: wall time, the focal calls, llama.cpp's own figures."""
    store = tmp / name
    seconds, records = timed(*DEFAULT, *overrides, f"store={store}")
    calls = focal_calls(records)
    logs = "".join(p.read_text(errors="replace") for p in sorted((store / ".servers").glob("*.log")))
    games = ", ".join(f"{r['status']}{' (agreed)' if r['outcome'] and r['outcome']['agreement'] else ''} "
                      f"r{len(r['rounds'])}" for r in records)
    log.info("%s: %d games (%s), %d calls, %.1f s", name, len(records), games, len(calls), seconds)
    return {"seconds": seconds, "records": records, "calls": calls, "server": server_figures(logs)}


def direct(model_path: str, kwargs: dict[str, Any], calls: list[tuple[list[dict], dict]]) -> dict[str, float]:
    """The calls replayed through llama_cpp.Llama in this process: llama_perf totals and wall time per call."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path, verbose=False, seed=0, **kwargs)
    totals = {"prompt_ms": 0.0, "prompt_tokens": 0, "eval_ms": 0.0, "eval_tokens": 0, "wall_s": 0.0}
    for messages, call in calls:
        llm.reset()  # no prefix reuse: every prompt from scratch
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)  # its timings add up over calls otherwise
        start = time.perf_counter()
        llm.create_chat_completion(messages, max_tokens=call["params"]["max_tokens"],  # same grammar, if any
                                   temperature=call["params"].get("temperature", 0.7), seed=0,
                                   response_format=call["params"].get("response_format"))
        totals["wall_s"] += time.perf_counter() - start
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)  # the timings llama.cpp keeps for this completion
        totals["prompt_ms"] += perf.t_p_eval_ms
        totals["prompt_tokens"] += perf.n_p_eval
        totals["eval_ms"] += perf.t_eval_ms
        totals["eval_tokens"] += perf.n_eval
    return totals


def tokens_per_game(run: dict[str, Any]) -> float:
    used = [c["usage"]["prompt_tokens"] + c["usage"]["completion_tokens"] for _m, c in run["calls"]]
    return sum(used) / len(run["records"])


def row(figure: str, ours: float, baseline: float | None, unit: str, target: str,
        met: bool | None = None, ratio: float | None = None) -> dict[str, Any]:
    if ratio is None and baseline:
        ratio = ours / baseline
    return {"figure": figure, "ours": ours, "baseline": baseline, "ratio": ratio, "unit": unit,
            "target": target, "met": met}


def measure(smoke: bool) -> list[dict[str, Any]]:
    """Rows for the README's Performance table (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        full = play(Path(tmp), "full", *(SMOKE if smoke else ()))
        stateless = None if smoke else play(Path(tmp), "stateless", "env=stateless")
    calls, server = full["calls"], full["server"]
    # one call from each eighth of the prompt lengths: decoding slows as the context grows, so the sample
    # holds contexts as long as the games' on average
    by_length, n = sorted(calls, key=lambda mc: mc[1]["usage"]["prompt_tokens"]), 2 if smoke else 8
    sample = [by_length[int((i + 0.5) * len(by_length) / n)] for i in range(n)]
    model_path, kwargs = llama_kwargs(config(*DEFAULT).model.server.command)
    alone = direct(model_path, kwargs, sample)
    log.info("llama.cpp alone on %d of the %d calls: %s", len(sample), len(calls), alone)
    log.info("llama.cpp inside the pipeline's server: %s", server)

    prompt_tokens = sum(c["usage"]["prompt_tokens"] for _m, c in calls)
    completion_tokens = sum(c["usage"]["completion_tokens"] for _m, c in calls)
    latency = sum(c["latency_s"] for _m, c in calls)
    prompt_s = server["prompt_ms"] / 1000
    ours_prompt = prompt_tokens / prompt_s
    ours_gen = completion_tokens / max(latency - prompt_s, 1e-9)
    alone_prompt = alone["prompt_tokens"] / (alone["prompt_ms"] / 1000)
    # both sides: generated tokens over the time that was not prompt evaluation (decoding, sampling and the
    # grammar alike; ours also HTTP, LiteLLM and the pipeline)
    alone_gen = alone["eval_tokens"] / (alone["wall_s"] - alone["prompt_ms"] / 1000)
    ours_call = latency / len(calls)
    # the same sampled calls, ours: their recorded client-side seconds
    ours_sample_call = sum(c["latency_s"] for _m, c in sample) / len(sample)
    alone_call = alone["wall_s"] / len(sample)
    what = "1 one-round game" if smoke else "`model=smollm2` default command"
    rows = [
        row(f"SmolLM2 prompt tokens/s ({what}; baseline llama.cpp alone)", ours_prompt, alone_prompt, "tokens/s", ">= 1x",
            ours_prompt >= alone_prompt),
        row(f"SmolLM2 generation tokens/s, end to end ({what}; baseline llama.cpp alone)", ours_gen, alone_gen,
            "tokens/s", ">= 0.8x", ours_gen >= 0.8 * alone_gen),
        row(f"SmolLM2 seconds per call ({len(sample)} of the calls; baseline llama.cpp alone)", ours_sample_call,
            alone_call, "s", "<= 1x", ours_sample_call <= alone_call),
        row(f"SmolLM2 prompt tokens served from llama.cpp's prefix cache ({what})",
            server["reused"] / max(prompt_tokens, 1), None, "share", "report"),
        row(f"SmolLM2 wall time, {what} ({len(full['records'])} games, {len(calls)} calls, {ours_call:.1f} s/call)",
            full["seconds"], None, "s", "<= 300 s" if not smoke else "report", full["seconds"] <= 300 if not smoke else None),
    ]
    if stateless is not None:
        rows.append(row("SmolLM2 tokens per default game, full memory (baseline: env=stateless)", tokens_per_game(full),
                        tokens_per_game(stateless), "tokens", "report"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one one-round game (seconds, not minutes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    for r in measure(args.smoke):
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
        baseline = f"{r['baseline']:.4g}" if r["baseline"] is not None else ""
        print(f"{r['figure']}: ours {r['ours']:.4g} {r['unit']}, baseline {baseline} {ratio} (target {r['target']})")


if __name__ == "__main__":
    main()
