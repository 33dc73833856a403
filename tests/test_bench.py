"""`python -m bench`: the smoke run of every benchmark (nothing about time is asserted) and the
README table it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.__main__ import END, MODULES, START, table, write_readme  # noqa: E402

ROW = {"figure": "Wall time per call", "ours": 1.5, "baseline": 1.25, "ratio": 1.2, "unit": "ms", "target": "<= 1.2x",
       "met": True}


@pytest.mark.slow  # starts loopback servers and worker processes, plays a few tiny games per figure
def test_the_smoke_run_measures_every_figure_and_writes_nothing():
    before = (ROOT / "README.md").read_text()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| Figure | Ours | Baseline | Ratio | Unit | Target | Met |" in done.stdout
    for figure in ("Wall time per call, pipeline vs bare litellm.acompletion", "Concurrency efficiency",
                   "Efficiency expected from client CPU alone",
                   "Loopback server's CPU", "Critical path of a game, n = 3", "Critical path of a game, n = 5",
                   "Tokens per default game", "Cost per default game", "Prompt tokens served from the provider's"):
        assert figure in done.stdout
    assert (ROOT / "README.md").read_text() == before
    assert "bench.callpath" in MODULES


def test_the_table_goes_between_the_readme_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Performance\n\n{START}\nold\n{END}\n\n## Next\n")
    write_readme(table([ROW], "2026-01-01 00:00 UTC", "a test machine"), readme)
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{END}\n\n## Next\n")
    assert "Measured 2026-01-01 00:00 UTC by `python -m bench` on a test machine." in text
    assert "| Wall time per call | 1.5 | 1.25 | 1.2x | ms | <= 1.2x | yes |" in text
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no <!-- bench:start -->"):
        write_readme("t", readme)
