"""The roster is data: complete metadata in every model file, Elo scores equal to the LMArena snapshot,
generated files equal to the table, presets that reproduce the original study's designs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from bargain import roster

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bargain" / "data"
MODELS = ROOT / "conf" / "model"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TABLE = yaml.safe_load((DATA / "roster.yaml").read_text())
CHECKED = TABLE["checked_on"]


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


SNAPSHOT = {row["model"]: int(row["score"]) for row in _rows(DATA / f"lmarena_text_{TABLE['arena_snapshot']}.csv")}


def _model_file(name: str) -> dict:
    return yaml.safe_load((MODELS / f"{name}.yaml").read_text())


def test_generated_files_equal_the_table():
    assert roster.stale() == [], "run `python -m bargain.roster sync` after editing bargain/data/roster.yaml"


def test_snapshot_is_versioned_data_with_source_and_date():
    path = DATA / "lmarena_text_2026-03-31.csv"
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any("Source: https://arena.ai/leaderboard/text" in line for line in header)
    assert any("2026-03-31" in line for line in header)
    rows = _rows(path)
    assert len(rows) == 337 and [int(r["rank"]) for r in rows] == list(range(1, 338))
    assert SNAPSHOT["claude-opus-4-6-thinking"] == 1504 and SNAPSHOT["stablelm-tuned-alpha-7b"] == 952


@pytest.mark.parametrize("name", sorted(roster.entries()))
def test_every_model_file_has_complete_metadata(name):
    cfg = _model_file(name)
    meta, life = cfg["metadata"], cfg["lifecycle"]
    route = cfg["litellm_model"].split("/", 1)[0]
    assert cfg["name"] == name and cfg["api_key_env"] == TABLE["routes"][route]
    assert meta["provider"] and meta["organization"] in TABLE["organizations"] and meta["family"]
    assert DATE.match(meta["release_date"]) and meta["release_date"] <= CHECKED
    if meta["params_b"] is not None:  # public for open weights
        assert meta["params_b"] > 0 and (meta["active_params_b"] is None or 0 < meta["active_params_b"] < meta["params_b"])
    else:
        assert meta["active_params_b"] is None and cfg["hf_id"] is None
    assert cfg["context_window"] > 1000 and cfg["params"]["max_tokens"] < cfg["context_window"]
    assert cfg["price_input_per_mtok"] >= 0 and cfg["price_output_per_mtok"] >= 0
    assert set(cfg["reasoning_dials"]) <= {"effort", "budget_tokens"}
    # the score is the snapshot's, for the leaderboard entry the row names
    assert meta["arena_snapshot"] == TABLE["arena_snapshot"]
    if meta["arena_name"] is None:
        assert meta["arena_elo"] is None
    else:
        assert meta["arena_elo"] == SNAPSHOT[meta["arena_name"]]
        assert meta["release_date"] <= TABLE["arena_snapshot"]  # ranked, so released before the snapshot
    # lifecycle: status as of the check, a date for every retirement, a current replacement
    assert life["checked_on"] == CHECKED
    retires = life["retires_on"]
    assert life["status"] == ("active" if retires is None else "retired" if retires <= CHECKED else "deprecated")
    if retires is not None:
        assert DATE.match(retires)
        replacement = _model_file(life["replacement"])["lifecycle"]
        assert replacement["status"] != "retired", f"{name}: replacement {life['replacement']} is retired too"
    if route == "hosted_vllm":
        assert cfg["hf_id"] and cfg["server"]["attention_heads"] > 0 and cfg["price_input_per_mtok"] == 0


def test_roster_covers_every_family_the_field_uses():
    names = set(roster.entries())
    wanted = {
        "claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5",                      # Anthropic 4.x
        "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
        "o3", "o4-mini", "gpt-4o-mini",                                                  # OpenAI
        "gemini-3.1-pro", "gemini-3-flash", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
        "gemma-3-27b",                                                                   # Google
        "grok-4.20", "deepseek-v3.2", "deepseek-r1", "llama-3.3-70b", "llama-3.1-8b", "kimi-k2.5", "glm-5",
        "nova-pro", "command-a",
        *(f"qwen{s}" for s in ("0_5b", "1_5b", "3b", "7b", "7b-vllm", "14b", "32b", "72b", "72b-vllm")),
        *(f"qwen3-{s}" for s in ("0_6b", "1_7b", "4b", "8b", "14b", "32b", "30b-a3b", "235b-a22b")),
    }
    assert wanted <= names, wanted - names
    assert len({e["litellm_model"] for e in roster.entries().values()}) >= 90


def test_elo_roster_preset_is_the_original_30_minus_the_retired():
    slots = _rows(DATA / "elo_roster_2026-03-31.csv")
    assert len(slots) == 30 and len({s["model"] for s in slots}) == 30
    for slot in slots:  # the authors' Elo is the snapshot's, except where they aliased qwen3-max-preview
        assert SNAPSHOT[slot["arena_name"]] == int(slot["elo"])
    preset = yaml.safe_load((ROOT / "conf" / "sweep" / "elo_roster.yaml").read_text())
    params = preset["hydra"]["sweeper"]["params"]
    played = [m.strip() for m in params["model"].split(",")]
    retired = {s["model"] for s in slots if _model_file(s["model"])["lifecycle"]["status"] == "retired"}
    assert sorted(played) == sorted({s["model"] for s in slots} - retired)
    assert len(retired) == 6 and len(played) == 24
    assert params["model@opponent"] == "gpt-5-nano-high"
    assert [float(c) for c in str(params["env.competition"]).split(",")] == [0, 0.25, 0.5, 0.75, 0.9, 0.95, 1]
    assert preset["counterbalance"] and preset["env"]["discussion_turns"] == 2


def test_list_shows_every_model_by_organisation(capsys):
    assert roster.main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"checked on {CHECKED}" in out
    for name, entry in roster.entries().items():
        line = next(line for line in out.splitlines() if line.split() and line.split()[0] == name)
        assert entry["litellm_model"] in line and entry["lifecycle"]["status"] in line


def test_readme_lists_the_roster_with_its_dates():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Models"):readme.index("### Reasoning")]
    assert f"compiled on {CHECKED}" in section
    for name, entry in roster.entries().items():
        life = entry["lifecycle"]
        shown = f"`{name}` ({life['retires_on']})" if life["status"] == "deprecated" else f"`{name}`"
        assert shown in section, shown
        if life["status"] == "retired":
            line = next(line for line in section.splitlines() if f"`{name}`" in line)
            assert line.index(f"`{name}`") > line.index("retired:"), name
