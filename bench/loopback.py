"""An OpenAI-compatible chat server on loopback for the call-path benchmarks, in its own process.

It answers ``POST /v1/chat/completions`` with the offline negotiator's reply (so whole games
complete) after a fixed ``--latency`` (0 = as fast as it can), over HTTP/1.1 keep-alive, on one
asyncio loop with a hand-rolled parser so it spends as little CPU as possible. ``GET /stats``
returns the requests served and the server process's CPU seconds, which the benchmark uses to show
that the server is not the bottleneck. Usage counts ~4 characters a token and reports cached prompt
tokens under OpenAI's automatic prompt caching rules (``prompt_tokens_details.cached_tokens``): the
longest prefix of whole messages seen before, in steps of 128 tokens, for prompts of 1,024 tokens
or more.

    python bench/loopback.py --latency 0.2     # prints the port, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bargain import sim

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class Loopback:
    """The server's state: latency, counters and the prompt prefixes it has seen (its "prompt cache")."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.requests = 0
        self.prefixes: set[bytes] = set()

    def reply(self, request: dict[str, Any]) -> dict[str, Any]:
        messages = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                     else "".join(part["text"] for part in m["content"])} for m in request["messages"]]
        digest = hashlib.sha256()
        cached = tokens = 0
        for message in messages:  # tokens of the longest prefix sent before count as cache reads
            digest.update(json.dumps(message).encode())
            tokens += len(message["content"]) // 4
            if digest.digest() in self.prefixes:
                cached = tokens
            else:
                self.prefixes.add(digest.copy().digest())
        cached = cached // 128 * 128 if tokens >= 1024 else 0
        seed = int(digest.hexdigest()[:8], 16)  # same prompt, same reply
        player = request["model"] if request["model"] in sim.STRATEGIES else "base"  # openai/boulware plays boulware
        text = sim.respond(player, messages, seed=seed, temperature=request.get("temperature", 0.0))
        completion = len(text) // 4 + 1
        return {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time()),
            "model": request["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tokens, "completion_tokens": completion, "total_tokens": tokens + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                if head.startswith(b"GET /stats"):
                    cpu = os.times()
                    answer = {"requests": self.requests, "cpu_s": cpu.user + cpu.system}
                else:
                    started = time.monotonic()
                    self.requests += 1
                    answer = self.reply(json.loads(body))
                    if self.latency:  # a fixed wait from the request's arrival, like a provider's
                        await asyncio.sleep(max(0.0, self.latency - (time.monotonic() - started)))
                data = json.dumps(answer).encode()
                writer.write(_HEAD % len(data) + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(latency: float) -> None:
    server = await asyncio.start_server(Loopback(latency).handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class Server:
    """The loopback server as a child process: ``with Server(0.2) as s: s.base_url``."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> Server:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                            os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, __file__, "--latency", str(self.latency)],
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, float]:
        """Requests served and CPU seconds the server process has used so far."""
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/stats").json()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    asyncio.run(_serve(parser.parse_args().latency))
