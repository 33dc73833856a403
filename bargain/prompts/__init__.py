"""Prompt templates, one file per message kind; ``render`` fills them with ``str.format``."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def template(name: str) -> str:
    return (files(__package__) / f"{name}.txt").read_text(encoding="utf-8").strip()


def render(template_name: str, /, **fields: Any) -> str:
    return template(template_name).format(**fields)


def templates_hash() -> str:
    """Hash of every template's text: part of the experiment identity, since prompts change outcomes."""
    digest = hashlib.sha256()
    for path in sorted(files(__package__).iterdir(), key=lambda p: p.name):
        if path.name.endswith(".txt"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
