"""The model roster: a table of models with capability data, and the Hydra files generated from it.

``bargain/data/roster.yaml`` holds one row per ``model=<name>``: LiteLLM route, family, parameters,
release date, context window, prices, LMArena name (its score comes from the versioned snapshot
``bargain/data/lmarena_text_<date>.csv``), reasoning controls and lifecycle. ``conf/model/<name>.yaml``
is generated from each row, so Hydra keeps one small file per model and a user can still add a model
with a file of their own.

    python -m bargain.roster list     # the roster by organisation: status, Elo, price
    python -m bargain.roster sync     # rewrite the generated conf/model/ files from the table
    python -m bargain.roster check    # exit 1 if a generated file differs from the table

At run time :func:`identify` gives ``model=litellm`` its identity from the table (by LiteLLM string),
and keeps every record's name and metadata true to the model and reasoning setting actually played.
"""

from __future__ import annotations

import argparse
import csv
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

DATA = Path(__file__).parent / "data"
CONF_MODELS = Path(__file__).parent.parent / "conf" / "model"
GENERATED = "# Generated from bargain/data/roster.yaml by `python -m bargain.roster sync`: edit the table, not this file."
PROVIDER_LABEL = {"hosted_vllm": "self-hosted"}  # metadata.provider of a route prefix, when not the prefix itself


@cache
def table() -> dict[str, Any]:
    """The roster table as written."""
    return yaml.safe_load((DATA / "roster.yaml").read_text(encoding="utf-8"))


@cache
def arena_scores(snapshot: str) -> dict[str, int]:
    """LMArena scores by leaderboard name in the snapshot of date ``snapshot``."""
    lines = (DATA / f"lmarena_text_{snapshot}.csv").read_text(encoding="utf-8").splitlines()
    return {row["model"]: int(row["score"]) for row in csv.DictReader(line for line in lines if not line.startswith("#"))}


def key_variable(litellm_model: str) -> str | None:
    """The usual key variable of a LiteLLM route (``gemini/...`` -> GEMINI_API_KEY), if the roster knows the route."""
    return table()["routes"].get(litellm_model.split("/", 1)[0])


def _config(row: dict[str, Any], organization: str) -> dict[str, Any]:
    """The model config of one row, in the order the generated file lists it."""
    t = table()
    prefix = row["model"].split("/", 1)[0]
    params = {k: v for k, v in {**t["sampling"], **row.get("sampling", {})}.items() if v is not None}
    size = row.get("params")
    total, active = (size if isinstance(size, list) else [size, None])
    retires = row.get("retires")
    status = "active" if retires is None else "retired" if retires <= t["checked_on"] else "deprecated"
    config: dict[str, Any] = {
        "name": row["name"],
        "litellm_model": row["model"],
        "api_key_env": t["routes"][prefix],
        "hf_id": row.get("hf"),
        "params": params,
        "reasoning": {"effort": None, "budget_tokens": None, "max_tokens": None, **row.get("reasoning", {})},
        "reasoning_dials": row.get("dials", []),
        "context_window": row["context"],
        "price_input_per_mtok": row["price"][0],
        "price_output_per_mtok": row["price"][1],
        "metadata": {
            "provider": PROVIDER_LABEL.get(prefix, prefix),
            "organization": organization,
            "family": row["family"],
            "params_b": total,
            "active_params_b": active,
            "release_date": row["released"],
            "arena_elo": arena_scores(t["arena_snapshot"])[row["arena"]] if row.get("arena") else None,
            "arena_name": row.get("arena"),
            "arena_snapshot": t["arena_snapshot"],
        },
        "lifecycle": {"status": status, "retires_on": retires, "replacement": row.get("replacement"),
                      "checked_on": t["checked_on"]},
        "max_concurrency": 8,
    }
    if row.get("server"):
        config["server"] = {"attention_heads": row["heads"], "args": row.get("server_args", [])}
    return config


@cache
def entries() -> dict[str, dict[str, Any]]:
    """Every row's model config by name (plus ``_organization`` and ``_server`` for file generation)."""
    out = {}
    for organization, rows in table()["organizations"].items():
        for row in rows:
            if row["name"] in out:
                raise ValueError(f"roster.yaml lists {row['name']} twice")
            out[row["name"]] = {**_config(row, organization), "_organization": organization, "_server": row.get("server")}
    return out


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def render(name: str) -> str:
    """The text of ``conf/model/<name>.yaml`` for a roster row."""
    entry = entries()[name]
    route = entry["litellm_model"].split("/", 1)[0]
    how = "your own GPUs: the job starts `vllm serve` (conf/server/vllm.yaml)" if route == "hosted_vllm" else f"the {route} API"
    lines = [f"# {entry['_organization']} {name} through {how}.", GENERATED]
    if entry["_server"]:
        lines += ["defaults:", f"  - /server@server: {entry['_server']}", "  - _self_"]
    body = yaml.safe_dump(_public(entry), sort_keys=False, width=120, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def stale(conf_dir: Path = CONF_MODELS) -> list[str]:
    """Generated files that are missing, differ from the table, or belong to no row."""
    problems = [f"{conf_dir / f'{n}.yaml'}: missing or out of date" for n in entries()
                if not (conf_dir / f"{n}.yaml").exists() or (conf_dir / f"{n}.yaml").read_text(encoding="utf-8") != render(n)]
    problems += [f"{p}: generated but not in the roster" for p in sorted(conf_dir.glob("*.yaml"))
                 if p.stem not in entries() and GENERATED in p.read_text(encoding="utf-8")]
    return problems


def sync(conf_dir: Path = CONF_MODELS) -> list[Path]:
    """Write every row's file, remove generated files of rows that are gone; return what changed."""
    changed = []
    for name in entries():
        path = conf_dir / f"{name}.yaml"
        if not path.exists() or path.read_text(encoding="utf-8") != render(name):
            path.write_text(render(name), encoding="utf-8")
            changed.append(path)
    for path in sorted(conf_dir.glob("*.yaml")):
        if path.stem not in entries() and GENERATED in path.read_text(encoding="utf-8"):
            path.unlink()
            changed.append(path)
    return changed


def _dial_settings(reasoning: Any) -> tuple[Any, Any]:
    """The part of a reasoning setting that changes which model is playing (not the room it gets)."""
    return reasoning["effort"], reasoning["budget_tokens"] or None


def _variant(litellm_model: str, reasoning: Any) -> dict[str, Any] | None:
    """The roster row for this route at this reasoning setting, if there is one."""
    wanted = _dial_settings(reasoning)
    matches = [e for e in entries().values()
               if e["litellm_model"] == litellm_model and _dial_settings(e["reasoning"]) == wanted]
    return matches[0] if matches else None


def _unset(value: Any) -> bool:
    return value is None or value == [] or value == {}


def identify(key: str, model: Any) -> str | None:
    """Give a lineup model its true identity in place; return a one-line problem, or None.

    - ``model=litellm`` (no name): name, key variable, metadata, prices, context window and
      lifecycle come from the roster row of ``litellm_model`` (values given on the command line win);
      a model outside the roster is named after its model id.
    - A roster model whose ``litellm_model`` was overridden is refused: its name and metadata would
      describe another model.
    - A roster model played at a reasoning setting other than its row's takes the name and metadata
      of the row for that setting, or is renamed ``<name>-effort-<e>`` / ``-thinking-<budget>`` with no
      Elo (the leaderboard score was measured at another setting).
    """
    group = "model" if key == "model" else f"model@{key}"
    if OmegaConf.is_missing(model, "litellm_model"):
        return f"{group}={model.name if not OmegaConf.is_missing(model, 'name') else 'litellm'} needs {key}.litellm_model=<provider>/<model>"
    litellm_model = model.litellm_model
    generic = OmegaConf.is_missing(model, "name")
    if not generic and model.name not in entries():
        return None  # the user's own file: its identity is what the file says
    if not generic and entries()[model.name]["litellm_model"] != litellm_model:
        return (f"{key}.litellm_model={litellm_model} is not {model.name}'s model ({entries()[model.name]['litellm_model']}): "
                f"the record would carry {model.name}'s name and metadata; use {group}=litellm {key}.litellm_model={litellm_model}")
    variant = _variant(litellm_model, model.reasoning)
    base = _variant(litellm_model, {"effort": None, "budget_tokens": None})
    row = variant or base or (entries()[model.name] if not generic else None)
    if generic:
        _fill(model, row, litellm_model)
    if variant is not None and variant["name"] != model.name:
        model.name = variant["name"]
        for field in ("metadata", "lifecycle"):
            for name, value in variant[field].items():
                model[field][name] = value
    elif variant is None and _dial_settings(model.reasoning) != (_dial_settings(row["reasoning"]) if row else (None, None)):
        effort, budget = _dial_settings(model.reasoning)
        stem = base["name"] if base else litellm_model.rsplit("/", 1)[-1]
        model.name = stem + (f"-effort-{effort}" if effort else "") + (f"-thinking-{budget}" if budget else "")
        if row is not None:  # the row's score was measured at its own setting
            model.metadata.arena_elo = None
            model.metadata.arena_name = None
    return None


def _fill(model: Any, row: dict[str, Any] | None, litellm_model: str) -> None:
    """Complete a ``model=litellm`` config: command-line values stay, the roster (or the model id) fills the rest."""
    if row is None:
        model.name = litellm_model.rsplit("/", 1)[-1]
        if model.api_key_env is None and not model.api_base:
            model.api_key_env = key_variable(litellm_model)
        return
    model.name = row["name"]
    for field in ("api_key_env", "hf_id", "reasoning_dials", "context_window", "price_input_per_mtok",
                  "price_output_per_mtok"):
        if _unset(model[field]):
            model[field] = row[field]
    for field, value in row["lifecycle"].items():
        model.lifecycle[field] = value
    for field, value in row["metadata"].items():
        if _unset(model.metadata.get(field)):
            model.metadata[field] = value


def listing() -> str:
    """The roster by organisation: name, route, status, Elo, release date, price."""
    out = [f"roster checked on {table()['checked_on']}; Elo from the LMArena snapshot of {table()['arena_snapshot']}"]
    for organization in table()["organizations"]:
        out.append(f"\n{organization}")
        for name, e in entries().items():
            if e["_organization"] != organization:
                continue
            life = e["lifecycle"]
            status = life["status"] + (f" {life['retires_on']}" if life["retires_on"] else "")
            elo = e["metadata"]["arena_elo"] or "-"
            out.append(f"  {name:32} {e['litellm_model']:48} {status:21} Elo {elo!s:5} "
                       f"${e['price_input_per_mtok']:g}/${e['price_output_per_mtok']:g}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bargain.roster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "sync", "check"])
    args = parser.parse_args(argv)
    if args.command == "list":
        print(listing())
        return 0
    if args.command == "sync":
        for path in sync():
            print(f"wrote {path}")
        return 0
    problems = stale()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
