"""A model that never answers in the requested format: re-asked with the error, then recorded as
invalid; the game goes on by rule and nothing is filled in for it."""

from __future__ import annotations

import pytest

from bargain.runner import run_experiment

SCRIPTED = ["model.litellm_model=openai/scripted", "model.api_key_env=null", "n_games=1", "counterbalance=false",
            "env.max_rounds=2", "env.max_reasks=2"]


@pytest.mark.parametrize(
    "reply",
    [
        "I would really like the Apple and the Jewel.",  # prose only
        '{"offer": "Apple for me"}',  # wrong keys
        '{"allocation": {"Agent_1": ["Apple", "Jewel"], "Agent_2": ["Stone"',  # truncated
        "```json\n{\"allocation\": {\"Agent_1\": [\"Apple\"], \"Agent_2\": [\"Apple\"]}}\n```",  # fenced, duplicate item
    ],
)
def test_invalid_replies_are_reasked_then_recorded(make_cfg, reply):
    (record,) = run_experiment(make_cfg(*SCRIPTED, f"+model.params.mock_response='{reply}'")).records
    assert record["status"] == "complete"
    assert record["outcome"]["agreement"] is False  # the scripted model never casts a valid vote
    assert record["invalid_moves"][0] == 2 * 2  # a proposal and a ballot in each of the 2 rounds
    assert record["invalid_moves"][1] == 0
    for round_ in record["rounds"]:
        (mine,) = [p for p in round_["proposals"] if p["seat"] == 0]
        assert mine == {"seat": 0, "owners": None, "valid": False, "error": mine["error"]} and mine["error"]
        assert [v for v in round_["votes"] if v["seat"] == 0][0]["votes"] is None
        proposals = [c for c in record["calls"] if c["seat"] == 0 and c["phase"] == "proposal" and c["round"] == round_["round"]]
        assert [c["attempt"] for c in proposals] == [0, 1, 2]
        assert all(c["reply"] == reply and c["parsed"] is None and c["error"] for c in proposals)
    reasks = [m["content"] for m in record["transcripts"][0] if m["content"].startswith("Your reply could not be used")]
    assert len(reasks) == 2 * 2 * 2  # two re-asks for each invalid move
    free_text = [c for c in record["calls"] if c["seat"] == 0 and c["phase"] in ("discussion", "thinking", "reflection")]
    assert free_text and all(c["error"] is None for c in free_text)  # any non-empty reply is a valid message


def test_empty_replies_are_invalid_even_for_free_text(make_cfg, sleeps):
    (record,) = run_experiment(make_cfg(*SCRIPTED, "+model.params.mock_response=''", "env.max_rounds=1")).records
    discussion = [c for c in record["calls"] if c["seat"] == 0 and c["phase"] == "discussion"]
    assert [c["attempt"] for c in discussion] == [0, 1, 2] and all(c["error"] == "the reply was empty" for c in discussion)
    assert all(c["retries"] == 1 for c in discussion)  # asked again once (a transport glitch?), then taken as meant
    assert record["rounds"][0]["discussion"][0]["valid"] is False


def test_single_word_votes_count_when_there_is_one_proposal(make_cfg):
    # The scripted focal model answers "YES" to everything: its proposals are invalid, so the only
    # proposal on the table is the opponent's, and a one-word vote is a valid ballot for it.
    (record,) = run_experiment(make_cfg(*SCRIPTED, "+model.params.mock_response=YES", "env.max_rounds=1")).records
    ballot = [v for v in record["rounds"][0]["votes"] if v["seat"] == 0][0]
    assert ballot["votes"] == ["accept"] and ballot["valid"]
