"""No file in the repo points at a document or a repo path that is not there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.md)\b")  # any Markdown document named
# a repo path; one that goes on with a placeholder (<date>, {name}, *) is checked up to its last folder
REPO_PATH = re.compile(r"(?<![\w/.<{$-])((?:bargain|analysis|conf|tests|bench|\.ci)/[\w./-]*\w)(?![<{*\w])")
GENERATED = {"report.md", "judge_vs_hand.md"}  # written by `python -m analysis` (and its validate), not in the repo


def test_every_referenced_document_and_path_exists():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    dangling = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".yaml", ".txt", ".toml", ""} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in (DOCUMENT, REPO_PATH):
            for ref in pattern.findall(text):
                if ref not in GENERATED and not any((base / ref).exists() for base in (ROOT, path.parent)):
                    dangling.append(f"{name}: {ref}")
    assert dangling == []
