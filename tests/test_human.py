"""A person plays a seat (model=human): the real app in a pseudo-terminal, typed replies, re-asks, records."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bargain.store import load_record

ROOT = Path(__file__).resolve().parents[1]


class Terminal:
    """A child process on a real pseudo-terminal, read until a pattern appears (a minimal expect)."""

    def __init__(self, argv: list[str], **kwargs) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, **kwargs)
        os.close(slave)
        self.text, self.pos = "", 0

    def expect(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (match := re.compile(pattern).search(self.text, self.pos)):
            ready, _, _ = select.select([self.master], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self.master, 65536).decode(errors="replace") if ready else ""
            assert chunk, f"no {pattern!r} within {timeout}s; the terminal shows:\n{self.text[-3000:]}"
            self.text += chunk.replace("\r\n", "\n")
        self.pos = match.end()
        return match

    def sendline(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536).decode(errors="replace")
            except OSError:  # the child closed its side
                break
            if not chunk:
                break
            self.text += chunk
        os.close(self.master)
        return code


@pytest.mark.slow  # a real app process on a pty (~30 s on a loaded machine)
def test_a_person_plays_a_seat_in_a_terminal(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_OFFLINE_MODE": "true"}
    store = tmp_path / "store"
    child = Terminal(
        [sys.executable, "-m", "bargain.run", "model=human", "model@opponent=conceder", "n_games=1", "counterbalance=false",
         "env.max_rounds=2", "env.n_items=3", "env.thinking=false", "env.max_reasks=1", f"store={store}",
         "hydra.run.dir=" + str(tmp_path / "run")],
        cwd=str(ROOT), env=env,
    )
    # the rules and the private values come first, then the first instruction
    child.expect("You are Agent_1, one of 2 agents")
    match = child.expect(r'Your private valuations .*\n(\{.*\})')
    values = json.loads(match.group(1))
    assert list(values) == ["Apple", "Jewel", "Stone"] and sum(values.values()) == 100
    child.expect("## Round 1/2 · public discussion")
    child.expect("> ")
    child.sendline("")  # nothing typed: asked again, nothing sent
    child.expect("Nothing was typed")
    child.expect("> ")
    child.sendline("/rules")
    child.expect("Your private valuations")
    child.expect("> ")
    child.sendline("Hello, I would like the Apple.")
    child.expect("## Round 1/2 · proposal")
    child.expect("> ")
    child.sendline("everything for me")  # not a proposal: re-asked with the reason
    child.expect("Your reply could not be used: ")
    child.expect("> ")
    child.sendline('{"allocation": {"Agent_1": [], "Agent_2": ["Apple", "Jewel", "Stone"]}}')  # one it will accept
    child.expect("## Round 1/2 · private vote")
    child.expect(r"Proposal 2 by Agent_2: (\{.*?\}) \(worth")
    child.expect("> ")
    child.sendline('{"votes": {"1": "accept", "2": "accept"}}')
    assert child.finish() == 0, child.text[-3000:]

    (path,) = store.glob("*/games/00000.json")
    record = load_record(path)
    assert record["status"] == "complete" and record["agents"][0]["model"] == "human"
    mine = [c for c in record["calls"] if c["seat"] == 0]
    assert [(c["round"], c["phase"], c["attempt"]) for c in mine[:4]] == [
        (1, "discussion", 0), (1, "proposal", 0), (1, "proposal", 1), (1, "vote", 0)]
    assert mine[0]["reply"] == "Hello, I would like the Apple." and mine[1]["error"] and mine[2]["error"] is None
    assert mine[2]["parsed"] == [1, 1, 1] and mine[3]["parsed"] == [True, True]
    assert record["outcome"]["agreement"] and record["outcome"]["round"] == 1
    transcript = record["transcripts"][0]
    assert transcript[0]["content"].startswith("You are Agent_1") and "Hello, I would like the Apple." in [
        m["content"] for m in transcript if m["role"] == "assistant"]
    assert record["totals"]["calls"] == len(record["calls"]) and record["totals"]["cost_usd"] == 0.0
