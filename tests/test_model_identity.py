"""Any LiteLLM model from the command line, retired models, reasoning settings: a record always carries the
identity of the model and reasoning setting actually played, and bad values are one line naming the key."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bargain.config import ConfigError, validate
from bargain.runner import identity
from bargain.store import experiment_id


def checked(make_cfg, *overrides):
    cfg = make_cfg(*overrides)
    validate(cfg)
    return cfg


def error(make_cfg, *overrides) -> str:
    with pytest.raises(ConfigError) as info:
        validate(make_cfg(*overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_litellm_model_in_the_roster_gets_its_rows_identity(make_cfg):
    generic = checked(make_cfg, "model=litellm", "model.litellm_model=gemini/gemini-2.5-flash").model
    named = checked(make_cfg, "model=gemini-2.5-flash").model
    assert generic.name == "gemini-2.5-flash" and generic.api_key_env == "GEMINI_API_KEY"
    assert generic.metadata.arena_elo == 1411 and generic.metadata.family == "gemini-2.5"
    generic, named = OmegaConf.to_container(generic), OmegaConf.to_container(named)
    for key in ("metadata", "lifecycle", "context_window", "price_input_per_mtok", "price_output_per_mtok",
                "reasoning_dials", "api_key_env"):
        assert generic[key] == named[key], key


def test_litellm_model_outside_the_roster_carries_only_what_the_command_line_says(make_cfg):
    model = checked(make_cfg, "model=litellm", "model.litellm_model=openrouter/mistralai/mistral-large-2411",
                    "model.metadata.arena_elo=1305", "model.metadata.family=mistral-large",
                    "model.metadata.release_date=2024-11-18", "model.price_input_per_mtok=2").model
    assert model.name == "mistral-large-2411" and model.api_key_env == "OPENROUTER_API_KEY"
    meta = OmegaConf.to_container(model.metadata)
    assert {k: v for k, v in meta.items() if v is not None} == {
        "arena_elo": 1305, "family": "mistral-large", "release_date": "2024-11-18"}
    assert model.lifecycle.status == "active" and model.price_input_per_mtok == 2
    # a self-hosted OpenAI-compatible server needs no provider key
    local = checked(make_cfg, "model=litellm", "model.litellm_model=openai/my-model",
                    "model.api_base=http://127.0.0.1:9/v1").model
    assert local.name == "my-model" and local.api_key_env is None


def test_overriding_a_roster_models_route_is_refused(make_cfg):
    message = error(make_cfg, "model=gpt-4o-2024-08-06", "model.litellm_model=openai/gpt-5")
    assert message == ("model.litellm_model=openai/gpt-5 is not gpt-4o-2024-08-06's model (openai/gpt-4o-2024-08-06): "
                       "the record would carry gpt-4o-2024-08-06's name and metadata; "
                       "use model=litellm model.litellm_model=openai/gpt-5")
    assert "use model@opponent=litellm opponent.litellm_model=openai/o3" in error(
        make_cfg, "model@opponent=claude-haiku-4-5", "opponent.litellm_model=openai/o3")
    assert error(make_cfg, "model=litellm") == "model=litellm needs model.litellm_model=<provider>/<model>"


def test_retired_models_refuse_to_start_naming_date_and_replacement(make_cfg, caplog):
    assert error(make_cfg, "model=claude-3-7-sonnet") == (
        "model=claude-3-7-sonnet (anthropic/claude-3-7-sonnet-20250219) was retired on 2026-02-19; "
        "use claude-sonnet-4-6, or set model.allow_retired=true if your provider still serves it")
    assert "opponent.allow_retired=true" in error(make_cfg, "model@opponent=gpt-4o")
    checked(make_cfg, "model=claude-3-7-sonnet", "model.allow_retired=true")
    # a retirement date that passes retires the model without a change to the data
    assert "was retired on 2000-01-01" in error(make_cfg, "model=gpt-5.4", "model.lifecycle.retires_on=2000-01-01")
    with caplog.at_level(logging.WARNING):
        checked(make_cfg, "model=gpt-5.4", "model.lifecycle.retires_on=2999-01-01")
    assert "retires on 2999-01-01" in caplog.text


def test_the_roster_lives_on_the_calendar(make_cfg, monkeypatch):
    checked(make_cfg, "model=gpt-5-nano-high")  # the tests' day is the roster's checked_on: deprecated, still served
    monkeypatch.setenv("BARGAIN_TODAY", "2026-12-11")
    assert error(make_cfg, "model=gpt-5-nano-high").startswith(
        "model=gpt-5-nano-high (openai/gpt-5-nano-2025-08-07) was retired on 2026-12-11; use gpt-5.4-nano-high")


def test_a_reasoning_setting_is_part_of_the_models_identity(make_cfg):
    high = checked(make_cfg, "model=gpt-5.4", "model.reasoning.effort=high").model
    assert high.name == "gpt-5.4-high" and high.metadata.arena_elo == 1484  # the leaderboard's own variant
    low = checked(make_cfg, "model=gpt-5.4", "model.reasoning.effort=low").model
    assert low.name == "gpt-5.4-effort-low" and low.metadata.arena_elo is None  # no score was measured for it
    thinking = checked(make_cfg, "model=claude-sonnet-4-6", "model.reasoning.budget_tokens=4096",
                       "model.params.temperature=1").model
    assert thinking.name == "claude-sonnet-4-6-thinking-4096" and thinking.metadata.arena_elo is None
    adaptive = checked(make_cfg, "model=litellm", "model.litellm_model=anthropic/claude-opus-4-6",
                       "model.reasoning.effort=high").model
    assert adaptive.name == "claude-opus-4-6-thinking" and adaptive.metadata.arena_elo == 1504
    unlisted = checked(make_cfg, "model=litellm", "model.litellm_model=openai/o9", "model.reasoning.effort=minimal",
                       "model.metadata.arena_elo=1500").model
    assert unlisted.name == "o9-effort-minimal" and unlisted.metadata.arena_elo == 1500  # the user's own number


@pytest.mark.parametrize(("overrides", "expected"), [
    (["model=gpt-5.4", "model.reasoning.effort=extreme"],
     "model.reasoning.effort=extreme must be one of none, minimal, low, medium, high, xhigh or null"),
    (["model=qwen14b", "model.reasoning.effort=high"], "accepts no reasoning setting (model.reasoning_dials=[])"),
    (["model=gpt-5.4", "model.reasoning.budget_tokens=2048"], "accepts reasoning.effort (model.reasoning_dials=['effort'])"),
    (["model=claude-sonnet-4-6", "model.reasoning.budget_tokens=500", "model.params.temperature=1"],
     "model.reasoning.budget_tokens=500 must be >= 1024 for Anthropic extended thinking"),
    (["model=claude-sonnet-4-6", "model.reasoning.budget_tokens=2048"], "set model.params.temperature=1"),
    (["model=gpt-5.4", "model.reasoning.max_tokens=-1"], "model.reasoning.max_tokens=-1 must be >= 0 or null"),
    (["env.max_tokens.vote=0"], "env.max_tokens.vote=0 must be >= 1 or null"),
    (["model=litellm", "model.litellm_model=openai/x", "model.metadata.arena_elo=high"],
     "model.metadata.arena_elo=high must be a positive number or null"),
    (["model=litellm", "model.litellm_model=openai/x", "model.metadata.release_date=2024/11/18"],
     "model.metadata.release_date=2024/11/18 must be a date YYYY-MM-DD or null"),
    (["model=gpt-5.4", "model.context_window=0"], "model.context_window=0 must be > 0 tokens or null"),
    (["model=smollm2", "model.timeout_s=0"], "model.timeout_s=0.0 must be > 0 (or null)"),
])
def test_bad_reasoning_caps_and_facts_name_the_key(make_cfg, overrides, expected):
    assert expected in error(make_cfg, *overrides)


def _id(make_cfg, *overrides) -> str:
    cfg = make_cfg(*overrides)
    validate(cfg)
    return experiment_id(identity(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))


def test_experiments_stored_before_the_new_settings_keep_their_ids(make_cfg):
    # ids computed on the code before reasoning, phase caps and context overflow existed
    assert _id(make_cfg) == "491d897e309a02a4"
    assert _id(make_cfg, "sweep=smoke", "model=sim-weak", "env.competition=0.25") == "71af8da2cf948f5d"
    assert _id(make_cfg, "model=qwen72b", "model@opponent=claude-3-7-sonnet", "opponent.allow_retired=true") \
        == "5fadf1493e70a319"
    assert _id(make_cfg, "model=smollm2", "model.structured_output=null") == "24f0534d9e47ebea"  # before it was on
    assert _id(make_cfg, "model=smollm2") != "24f0534d9e47ebea"  # structured output changes how it plays
    changed = [_id(make_cfg, "env.max_tokens.vote=64"), _id(make_cfg, "env.context_overflow=compact"),
               _id(make_cfg, "model=gpt-5.4", "model.reasoning.effort=low"), _id(make_cfg, "model=gpt-5.4")]
    assert len({*changed, "491d897e309a02a4"}) == 5


def test_a_model_added_with_the_readmes_small_file(make_cfg, tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme[readme.index("**Add a model**"):].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "extra" / "model").mkdir(parents=True)
    (tmp_path / "extra" / "model" / "mistral-large-2411.yaml").write_text(textwrap.dedent(block))
    model = checked(make_cfg, f"hydra.searchpath=[file://{tmp_path / 'extra'}]", "model=mistral-large-2411").model
    assert model.name == "mistral-large-2411" and model.metadata.arena_elo == 1305 and model.context_window == 131072
    assert model.lifecycle.status == "active" and model.reasoning_dials is None  # unknown: not checked
