"""Structured output (``model.structured_output``): each move's JSON schema, sent as ``response_format``
over real HTTP in the form the server reads, only for the moves that are JSON, and part of the identity."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest
from test_http_server import OpenAICompatible, server  # noqa: F401 - the fixture

from bargain.agents.parsing import (
    ENUMERATED_ALLOCATIONS,
    ParseError,
    parse_funding_plan,
    parse_proposal,
    parse_treaty,
    parse_votes,
    plan_schema,
    proposal_schema,
    treaty_schema,
    votes_schema,
)
from bargain.runner import run_experiment

AGENTS, ITEMS = ["Agent_1", "Agent_2"], ["Apple", "Jewel", "Stone"]


def valid(schema: dict, reply: dict) -> bool:
    try:
        jsonschema.validate(reply, schema)
    except jsonschema.ValidationError:
        return False
    return True


def test_each_schema_admits_the_moves_the_parser_reads_and_refuses_malformed_ones():
    allocation = {"allocation": {"Agent_1": ["Apple", "Stone"], "Agent_2": ["Jewel"]}}
    schema = proposal_schema(AGENTS, ITEMS)
    assert valid(schema, allocation) and parse_proposal(json.dumps(allocation), AGENTS, ITEMS) == (0, 1, 0)
    assert not valid(schema, {"allocation": {"Agent_1": ["Pear"], "Agent_2": []}})  # an item not in the game
    assert not valid(schema, {"allocation": {"Agent_1": ITEMS}})  # a seat left out
    assert not valid(schema, {"Agent_1": ITEMS, "Agent_2": []})  # not under "allocation"
    # a small game lists its allocations: the schema admits exactly the replies the parser reads
    shapes = [{"allocation": {"Agent_1": list(mine), "Agent_2": list(theirs)}}
              for mine in itertools.chain.from_iterable(itertools.combinations(ITEMS, k) for k in range(4))
              for theirs in itertools.chain.from_iterable(itertools.combinations(ITEMS, k) for k in range(4))]
    for reply in shapes:  # 64 pairs of item lists in game order: 8 allocations and 56 with items left out or twice
        try:
            parse_proposal(json.dumps(reply), AGENTS, ITEMS)
            parses = True
        except ParseError:
            parses = False
        assert valid(schema, reply) == parses, reply
    assert len(schema["properties"]["allocation"]["enum"]) == 2**3

    votes = {"votes": {"1": "accept", "2": "reject"}}
    assert valid(votes_schema(2), votes) and parse_votes(json.dumps(votes), 2) == [True, False]
    assert not valid(votes_schema(2), {"votes": {"1": "accept"}})  # a proposal without a vote
    assert not valid(votes_schema(2), {"votes": {"1": "accept", "2": "maybe"}})

    treaty = {"treaty": {"Tariff rate": 35, "Quota": 100}}
    assert valid(treaty_schema(["Tariff rate", "Quota"]), treaty)
    assert parse_treaty(json.dumps(treaty), ["Tariff rate", "Quota"]) == (35, 100)
    assert not valid(treaty_schema(["Tariff rate", "Quota"]), {"treaty": {"Tariff rate": 135, "Quota": 0}})

    plan = {"plan": {"Agent_1": {"Park": 10.5, "Road": 0}, "Agent_2": {"Park": 2, "Road": 3}}}
    assert valid(plan_schema(AGENTS, ["Park", "Road"]), plan)
    assert parse_funding_plan(json.dumps(plan), AGENTS, ["Park", "Road"], [20, 20]) == ((10.5, 0.0), (2.0, 3.0))
    assert not valid(plan_schema(AGENTS, ["Park", "Road"]), {"plan": {"Agent_1": {"Park": -1, "Road": 0},
                                                                       "Agent_2": {"Park": 0, "Road": 0}}})
    # a game too large to list (3 agents, 6 items: 729 allocations) gets item lists; what that schema cannot
    # say, the parser still checks: an item given twice passes the schema, not the parser
    agents, items = ["A", "B", "C"], [f"I{k}" for k in range(6)]
    large = proposal_schema(agents, items)
    assert 3**6 > ENUMERATED_ALLOCATIONS and "enum" not in large["properties"]["allocation"]
    twice = {"allocation": {"A": ["I0", "I1", "I2"], "B": ["I2", "I3"], "C": ["I4", "I5"]}}
    assert valid(large, twice) and not valid(large, {"allocation": {"A": ["I9"], "B": [], "C": []}})
    with pytest.raises(ParseError):
        parse_proposal(json.dumps(twice), agents, items)


def _http_game(make_cfg, port: int, *overrides: str):
    return run_experiment(make_cfg(
        "n_games=1", "counterbalance=false", "env.max_rounds=2", "model.name=http-model",
        "model.litellm_model=openai/test-model", f"model.api_base=http://127.0.0.1:{port}/v1",
        "model.price_input_per_mtok=0", "model.price_output_per_mtok=0", *overrides))


@pytest.mark.parametrize(("form", "wrap"), [
    ("json_schema", lambda schema: {"type": "json_schema", "json_schema": {"name": "move", "schema": schema}}),
    ("json_object", lambda schema: {"type": "json_object", "schema": schema}),
])
def test_proposals_and_votes_carry_their_schema_over_http_and_free_text_does_not(make_cfg, server, form, wrap):  # noqa: F811
    summary = _http_game(make_cfg, server.server_address[1], f"model.structured_output={form}")
    record = summary.records[0]
    assert record["status"] == "complete", record["error"]
    items, agents = record["game"]["items"], record["agents"]
    names = [a["name"] for a in agents]
    seat = record["focal_seat"]
    calls = [c for c in record["calls"] if c["seat"] == seat]
    sent = [s["body"] for s in OpenAICompatible.seen]
    assert len(sent) == len(calls)  # the server saw exactly the focal seat's calls, in order
    votes = {len(r["proposals"]) for r in record["rounds"]}
    for call, body in zip(calls, sent):
        if call["phase"] == "proposal":
            expected = wrap(proposal_schema(names, items))
        elif call["phase"] == "vote":
            n = len([p for p in record["rounds"][call["round"] - 1]["proposals"] if p["valid"]])
            expected = wrap(votes_schema(n))
        else:  # discussion, thinking, reflection: free text, nothing constrained
            expected = None
        assert body.get("response_format") == expected, call["phase"]
        assert call["params"].get("response_format") == expected  # the record says what was sent
    assert {c["phase"] for c in calls} >= {"discussion", "proposal", "vote"} and votes
    plain = _http_game(make_cfg, server.server_address[1])
    assert plain.experiment_id != summary.experiment_id  # a different protocol: a different experiment


def test_a_bad_structured_output_value_names_the_key(make_cfg):
    from bargain.config import ConfigError, validate

    with pytest.raises(ConfigError, match=r"model.structured_output=xml must be one of json_schema, json_object or null"):
        validate(make_cfg("model.structured_output=xml"))
