"""Reply parsing: a corpus of malformed and well-formed replies, never a crash."""

import json

import pytest

from bargain.agents.parsing import ParseError, json_objects, parse_proposal, parse_text, parse_votes

AGENTS = ["Agent_1", "Agent_2"]
ITEMS = ["Apple", "Jewel", "Stone", "Quill", "Pencil"]


@pytest.mark.parametrize(
    "reply, owners",
    [
        ('{"allocation": {"Agent_1": ["Apple", "Stone"], "Agent_2": ["Jewel", "Quill", "Pencil"]}}', (0, 1, 0, 1, 1)),
        ('I think this is fair.\n```json\n{"allocation": {"Agent_1": [0, 2], "Agent_2": [1, 3, 4]}}\n```', (0, 1, 0, 1, 1)),
        ('Bare mapping {"agent_1": ["apple"], "AGENT_2": ["jewel", "stone", "quill", "pencil"]} ok?', (0, 1, 1, 1, 1)),
        ('{"Agent_1": ["0", "1"], "Agent_2": ["2", "3", "4"]}', (0, 0, 1, 1, 1)),
        ('Draft {"allocation": {"Agent_1": ["Apple"]}} then final {"allocation": {"Agent_1": [], "Agent_2": [0,1,2,3,4]}}', (1, 1, 1, 1, 1)),
    ],
)
def test_valid_proposals(reply, owners):
    assert parse_proposal(reply, AGENTS, ITEMS) == owners


@pytest.mark.parametrize(
    "reply, fragment",
    [
        ("", "no JSON object"),
        ("I would like the Apple and the Jewel, please.", "no JSON object"),
        ('{"proposal": "Apple to me"}', "does not map agents"),
        ('{"allocation": {"Agent_1": ["Apple", "Stone"], "Agent_2": ["Jewel", "Quill"', "no JSON object"),  # truncated
        ('{"allocation": {"Agent_1": ["Apple"], "Agent_2": ["Jewel", "Stone", "Quill"]}}', "Pencil"),  # missing item
        ('{"allocation": {"Agent_1": ["Apple", "Jewel"], "Agent_2": ["Jewel", "Stone", "Quill", "Pencil"]}}', "Jewel"),
        ('{"allocation": {"Agent_1": [0, 1], "Agent_3": [2, 3, 4]}}', "Agent_3"),
        ('{"allocation": {"Agent_1": [0, 1], "Agent_2": [2, 3, 7]}}', "7"),
    ],
)
def test_invalid_proposals_raise_parse_error_naming_the_problem(reply, fragment):
    with pytest.raises(ParseError, match=fragment):
        parse_proposal(reply, AGENTS, ITEMS)


@pytest.mark.parametrize(
    "reply, n, votes",
    [
        ('{"votes": {"1": "accept", "2": "reject"}}', 2, [True, False]),
        ('```json\n{"votes": {"1": "Accept", "2": "REJECT"}}\n```', 2, [True, False]),
        ('My votes: {"votes": ["yes", "no"]}', 2, [True, False]),
        ('{"votes": {"Proposal 1": "accept", "proposal 2": "accept"}}', 2, [True, True]),
        ("Accept", 1, [True]),
        ("YES", 1, [True]),
        ("reject.", 1, [False]),
    ],
)
def test_valid_votes(reply, n, votes):
    assert parse_votes(reply, n) == votes


@pytest.mark.parametrize(
    "reply, n",
    [("", 2), ("Accept", 2), ("I am not sure yet.", 1), ('{"votes": {"1": "accept"}}', 2), ('{"votes": {"1": "maybe", "2": "no"}}', 2), ('{"votes": {"1": "acc', 1)],
)
def test_invalid_votes(reply, n):
    with pytest.raises(ParseError):
        parse_votes(reply, n)


@pytest.mark.parametrize("reply", ["", "I am not sure yet.", '{"votes": {"1": "maybe"}}', '{"votes": {"1": "accept"}}'])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_vote_reask_shows_valid_json(reply, n):
    """The re-ask message's example is valid JSON that parses as a complete set of votes."""
    if n == 1 and reply == '{"votes": {"1": "accept"}}':
        return  # a valid reply
    with pytest.raises(ParseError) as info:
        parse_votes(reply, n)
    examples = json_objects(str(info.value))
    assert examples, str(info.value)
    assert len(parse_votes(json.dumps(examples[0]), n)) == n


def test_free_text():
    assert parse_text("  hello ") == "hello"
    with pytest.raises(ParseError, match="empty"):
        parse_text("   \n")
