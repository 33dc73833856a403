"""Prompt templates, one file per message kind; ``render`` fills them with ``str.format``.

The item game's templates sit at the top; another game keeps its own in a folder named after it
(``treaty/system`` is ``treaty/system.txt``) and shares the top-level ones it does not replace.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def template(name: str) -> str:
    return files(__package__).joinpath(*f"{name}.txt".split("/")).read_text(encoding="utf-8").strip()


def render(template_name: str, /, **fields: Any) -> str:
    return template(template_name).format(**fields)


def templates_hash(folder: str | None = None) -> str:
    """Hash of the top-level templates and ``folder``'s: part of the experiment identity, since prompts change outcomes."""
    root = files(__package__)
    named = [(path.name, path) for path in root.iterdir()]
    if folder:
        named += [(f"{folder}/{path.name}", path) for path in root.joinpath(folder).iterdir()]
    digest = hashlib.sha256()
    for name, path in sorted(named, key=lambda entry: entry[0]):
        if name.endswith(".txt"):
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
