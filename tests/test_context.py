"""Context limits: every prompt is checked against the model's context window before it is sent; a game
that would overflow ends with a recorded reason and its rounds, or compacts older turns when env asks.

The offline models count a prompt's tokens as its characters / 4 (their reported usage), so a prompt
fits by their count while the character estimate (2.5 characters a token) says it does not: the
check counts a full-memory prompt as the previous call's reported prompt and reply plus an estimate
of what was added since."""

from __future__ import annotations

from bargain.backend.limits import estimate_tokens
from bargain.runner import run_experiment

# a long game (the Boulware opponent holds out) against a model with a small window
LONG = ["n_games=1", "counterbalance=false", "env.competition=1.0", "model.context_window=2500"]


def _sent(record: dict, call: dict) -> list[dict]:
    transcript = record["transcripts"][call["seat"]]
    return [m for start, end in call["sent"] for m in transcript[start:end]]


def test_a_game_that_would_overflow_ends_with_its_reason_and_rounds(make_cfg):
    (record,) = run_experiment(make_cfg(*LONG)).records
    assert record["status"] == "context_limit" and record["outcome"] is None
    assert record["error"]["type"] == "ContextLimitExceeded"
    assert "does not fit the 2500 tokens its context window leaves" in record["error"]["message"]
    assert "env.context_overflow=end" in record["error"]["message"]
    assert record["rounds"] and record["rounds"][0]["proposals"]  # what was played is kept
    focal = [c for c in record["calls"] if c["seat"] == record["focal_seat"]]
    assert focal and all(c["usage"]["prompt_tokens"] <= 2500 for c in focal)  # nothing oversized was sent
    # counted, not only estimated: prompts the estimate alone would have refused were sent, and the game
    # ended when the conversation (by the model's own count) held more than 90% of the window
    assert max(estimate_tokens(_sent(record, c)) for c in focal) > 2500
    transcript = record["transcripts"][record["focal_seat"]]
    assert sum(len(m["content"]) for m in transcript) // 4 > 0.9 * 2500
    # the opponent has no window set: only the focal model's prompts are limited
    assert max(estimate_tokens(_sent(record, c)) for c in record["calls"] if c["seat"] != record["focal_seat"]) > 2000


def test_compaction_keeps_the_rules_and_the_newest_turns(make_cfg, tmp_path):
    (record,) = run_experiment(make_cfg(*LONG, "env.context_overflow=compact")).records
    assert record["status"] == "complete", record["error"]
    focal = [c for c in record["calls"] if c["seat"] == record["focal_seat"]]
    compacted = [c for c in focal if c["sent"][0] == [0, 1] and len(c["sent"]) == 2]
    assert compacted, "the window was never reached"
    transcript = record["transcripts"][record["focal_seat"]]
    for call in focal:
        assert call["usage"]["prompt_tokens"] <= 2500
    for call in compacted:
        start = call["sent"][1][0]
        assert start > 1 and transcript[start]["role"] == "user"  # whole turns, oldest first out
    (ended,) = run_experiment(make_cfg(*LONG, f"store={tmp_path / 'ended'}")).records
    assert len(record["rounds"]) > len(ended["rounds"])


def test_a_window_too_small_for_one_turn_ends_even_when_compacting(make_cfg):
    (record,) = run_experiment(make_cfg(*LONG[:3], "model.context_window=100", "env.context_overflow=compact")).records
    assert record["status"] == "context_limit"
    assert not [c for c in record["calls"] if c["seat"] == record["focal_seat"]]
