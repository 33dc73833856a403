"""A fault-injecting model server on 127.0.0.1 that speaks the OpenAI chat-completions API (every
OpenAI-compatible route: ``openai/``, ``openrouter/``, ``hosted_vllm/``, ``custom_openai/``) and
Anthropic's Messages API (``anthropic/``).

Good answers come from the offline negotiator, so whole games complete over real HTTP. With
``fault_rate`` > 0 (or a ``script`` of faults) a request gets a fault instead: an HTTP error status,
a reset connection, a hang, a truncated or HTML body, no choices, or empty content. The server
keeps the books a provider would: every good answer is "billed" (its usage is counted), keyed by
the exact request, so a test can tell calls paid twice from calls paid once.

Run as a script (``python tests/faultserver.py PORT FAULT_RATE SEED BOOKS_PATH``, or :func:`spawn`) it
serves until killed, writing its books to BOOKS_PATH on SIGTERM or SIGUSR1.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUS_FAULTS = ("408", "409", "429", "500", "502", "503", "504")
BODY_FAULTS = ("truncated", "html", "empty_choices", "empty_content")
TRANSPORT_FAULTS = ("reset",)
# every transient fault a provider or a proxy in front of it produces (hangs are slow: opt in)
MIXED = STATUS_FAULTS + BODY_FAULTS + TRANSPORT_FAULTS


def _text(content: Any) -> str:
    """Message content as plain text (Anthropic and cache-marked messages carry lists of blocks)."""
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return content or ""


def request_key(body: dict) -> str:
    """What makes two requests the same call: the model and the exact conversation."""
    messages = [{"role": m["role"], "content": _text(m["content"])} for m in body.get("messages", [])]
    system = _text(body.get("system"))
    return hashlib.sha256(json.dumps([body.get("model"), system, messages]).encode()).hexdigest()


class Books:
    """What the server did: requests, faults by kind, and every billed answer by request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: collections.Counter[str] = collections.Counter()
        self.by_request: collections.Counter[str] = collections.Counter()  # request key -> good answers
        self.billed_tokens = 0
        self.in_progress = 0

    @property
    def billed(self) -> int:
        """Good answers given (each one billed)."""
        return sum(self.by_request.values())

    @property
    def paid_twice(self) -> int:
        """Good answers to a request that had already been answered (a client that paid again)."""
        return sum(n - 1 for n in self.by_request.values() if n > 1)

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "faults": dict(self.faults), "billed": self.billed,
                "paid_twice": self.paid_twice, "billed_tokens": self.billed_tokens}


class Handler(BaseHTTPRequestHandler):
    server: FaultServer

    protocol_version = "HTTP/1.1"  # keep-alive, as real providers: resets then hit pooled connections

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, json.dumps({"object": "list", "data": [{"id": "test-model", "object": "model"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        anthropic = self.path.rstrip("/").endswith("/messages")
        srv = self.server
        if srv.on_request is not None:
            srv.on_request(body)
        with srv.books.lock:
            srv.books.requests += 1
            fault = srv.next_fault()
            if fault:
                srv.books.faults[fault] += 1
        if fault:
            self._fault(fault, anthropic)
            return
        with srv.books.lock:
            srv.books.in_progress += 1
        try:
            time.sleep(srv.delay_s)
            text, usage = srv.answer(body, anthropic)
            payload = _anthropic(body, text, usage) if anthropic else _openai(body, text, usage)
            self._send(200, json.dumps(payload).encode())
        finally:
            with srv.books.lock:
                srv.books.in_progress -= 1
        with srv.books.lock:  # billed once the answer went out, as a provider bills a finished generation
            srv.books.by_request[request_key(body)] += 1
            srv.books.billed_tokens += usage["prompt_tokens"] + usage["completion_tokens"]

    def _fault(self, fault: str, anthropic: bool) -> None:
        if fault.isdigit():  # any HTTP status: the transient ones, or 400/403/404 to test what is not retried
            status = int(fault)
            kind = {429: "rate_limit_error", 408: "timeout"}.get(status, "server_error")
            error = ({"type": "error", "error": {"type": "overloaded_error" if status >= 500 else kind, "message": f"fault {fault}"}}
                     if anthropic else {"error": {"message": f"fault {fault}", "type": kind, "code": status}})
            self._send(status, json.dumps(error).encode(), headers={"retry-after-ms": "5"} if status == 429 else None)
        elif fault == "context":  # what servers say when the conversation outgrew the model's context
            message = ("prompt is too long: 5000 tokens > 4096 maximum" if anthropic else
                       "This model's maximum context length is 4096 tokens. However, your messages resulted in 5000 tokens.")
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}} if anthropic else \
                {"error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}}
            self._send(400, json.dumps(error).encode())
        elif fault == "reset":  # RST instead of an answer: the connection is reset by the peer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif fault == "hang":
            time.sleep(self.server.hang_s)
            self._send(504, b'{"error": {"message": "gateway timeout"}}')
        elif fault == "truncated":
            whole = json.dumps(_openai({"model": "x"}, "cut short", {"prompt_tokens": 1, "completion_tokens": 1}))
            self._send(200, whole[: len(whole) // 2].encode())
        elif fault == "html":
            self._send(200, b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", "text/html")
        elif fault == "empty_choices":
            payload = _anthropic({"model": "x"}, "", {"prompt_tokens": 1, "completion_tokens": 0}) if anthropic else \
                _openai({"model": "x"}, "", {"prompt_tokens": 1, "completion_tokens": 0})
            if anthropic:
                payload["content"] = []
            else:
                payload["choices"] = []
            self._send(200, json.dumps(payload).encode())
        elif fault == "empty_content":
            payload = (_anthropic if anthropic else _openai)({"model": "x"}, "", {"prompt_tokens": 1, "completion_tokens": 0})
            self._send(200, json.dumps(payload).encode())
        else:
            raise ValueError(f"unknown fault {fault}")


def _openai(body: dict, text: str, usage: dict) -> dict:
    return {
        "id": f"chatcmpl-{random.getrandbits(40):x}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
    }


def _anthropic(body: dict, text: str, usage: dict) -> dict:
    return {
        "id": f"msg_{random.getrandbits(40):x}", "type": "message", "role": "assistant", "model": body.get("model"),
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]},
    }


class FaultServer(ThreadingHTTPServer):
    """The server; ``with FaultServer(...) as s:`` serves on a free port in a background thread."""

    daemon_threads = True

    def __init__(self, fault_rate: float = 0.0, faults: tuple[str, ...] = MIXED, seed: int = 0,
                 port: int = 0, delay_s: float = 0.0, hang_s: float = 5.0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.fault_rate = fault_rate
        self.faults = faults
        self.rng = random.Random(seed)
        self.script: list[str] = []  # faults to give next, in order, before any random ones
        self.delay_s = delay_s
        self.hang_s = hang_s
        self.books = Books()
        self.on_request: Any = None  # called with each request's body before it is answered
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (a killed job, a cancelled call) is not the server's error."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_fault(self) -> str | None:
        if self.script:
            return self.script.pop(0)
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return self.rng.choice(self.faults)
        return None

    def answer(self, body: dict, anthropic: bool) -> tuple[str, dict[str, int]]:
        """The offline negotiator's reply to a game's conversation (same conversation, same reply);
        a conversation that is not a game gets a reply naming the request."""
        from bargain import sim

        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body.get("messages", [])]
        if anthropic and body.get("system"):
            messages.insert(0, {"role": "system", "content": _text(body["system"])})
        seed = int(request_key(body)[:8], 16)
        if messages and messages[0]["content"].startswith("You are "):
            text = sim.respond("base", messages, seed=seed, temperature=float(body.get("temperature") or 0.0))
        else:
            text = f"reply to {request_key(body)[:12]}"
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        return text, {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4 + 1}

    def __enter__(self) -> FaultServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()


def spawn(books_path: str, fault_rate: float = 0.0, seed: int = 0) -> tuple[subprocess.Popen, str]:
    """The server in a process of its own (to kill it, or to outlive the jobs a test kills); returns it and its URL.

    SIGTERM or SIGUSR1 makes it write its books to ``books_path``.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, str(port), str(fault_rate), str(seed), books_path],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and "serving" in proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}/v1"


if __name__ == "__main__":
    import signal

    port, rate, seed, books_path = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    server = FaultServer(rate, seed=seed, port=port)

    def dump(*_: Any) -> None:
        with open(books_path, "w") as fh:
            json.dump({**server.books.as_dict(), "by_request": server.books.by_request}, fh)

    def stop(*_: Any) -> None:
        dump()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, dump)
    print(f"serving on 127.0.0.1:{server.port}", flush=True)
    server.serve_forever()
