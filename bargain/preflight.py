"""What a model needs on the machine that starts or submits a job: its key variable and its endpoint.

Pure checks (no LiteLLM), shared by the job (:meth:`bargain.backend.Backend.check_keys`) and by the
sweep-level check that runs before a sweep is started or submitted (:mod:`bargain.sweep`).
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing a model lacks; ``subject`` groups the same lack across models and sweep cells."""

    subject: str  # a key variable, a program, or "<model> endpoint"
    message: str  # one line: what is wrong and how to fix it
    missing_key: bool = False
    this_machine: bool = False  # true only of this machine (a program not installed), maybe not of the one running jobs


def model_problems(key: str, model: Mapping[str, Any]) -> list[Problem]:
    """Unset key variable, unset endpoint, a server that cannot be started here."""
    name, route = model["name"], model["litellm_model"]
    problems = []
    var = model.get("api_key_env")
    if var and not os.environ.get(var):
        problems.append(Problem(var, f"{var} is not set: model {name} ({key}, {route}) reads its API key from it", True))
    server = model.get("server")
    endpoint = f"{name} endpoint"
    if "{port}" in (model.get("api_base") or "") and not server:
        problems.append(Problem(endpoint, f"{key}.api_base contains {{port}} but {key}.server is null: nothing starts a server"))
    if route.startswith("hosted_vllm/") and not model.get("api_base") and not server:
        problems.append(Problem(endpoint, (
            f"model {name} ({key}, {route}) is self-hosted: set {key}.api_base=http://HOST:PORT/v1 to an "
            f"OpenAI-compatible server serving {model.get('hf_id') or route}, or give {key}.server"
        )))
    program = str(server["command"][0]) if server and server.get("command") else None
    if program and not program.startswith("{") and shutil.which(program) is None:
        problems.append(Problem(program, (
            f"{program} is not installed here: model {name} ({key}) starts its server with it "
            f"(pip install {program}, or set {key}.server=null and {key}.api_base to a running server)"
        ), this_machine=True))
    return problems


def unreachable(api_base: str, timeout_s: float = 3.0) -> str | None:
    """Why nothing accepts connections at an endpoint's host and port, or None if something does."""
    url = urllib.parse.urlsplit(api_base)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{url.hostname}:{port}: {exc.strerror or exc}"
