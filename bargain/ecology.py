"""Mixed ecologies: the seats beside the focal model drawn from a roster (``ecology.roster``, ``ecology.lineup``).

An invasion needs nothing here (``model=<focal> model@opponent=<resident> env.n_agents=n`` puts one focal
model among n - 1 copies of the resident); a mixed ecology fills every other seat with a seeded draw (with
replacement) from the roster's ``conf/model`` configs, so ``ecology.lineup=0,1,2,...`` sweeps lineups. The
draw becomes ordinary ``opponents.ecology_<j>`` and ``opponent`` entries before validation, so the
experiment identity, the records and the analysis see a lineup like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import OmegaConf, open_dict

PREFIX = "ecology_"


def draw(roster: list[str], n_agents: int, lineup: int) -> list[str]:
    """The models of seats 2..n (by roster name) in lineup ``lineup``: a seeded draw with replacement."""
    picks = np.random.default_rng([lineup, n_agents]).integers(len(roster), size=n_agents - 1)
    return [roster[i] for i in picks]


def expand(cfg: Any) -> None:
    """Fill the seats beside the focal model from ``ecology.roster`` (nothing to do without one)."""
    from bargain.config import ConfigError, ModelConfig
    from bargain.roster import CONF_MODELS

    eco = cfg.get("ecology")
    if not eco or not eco.roster:
        return
    if eco.lineup < 0:
        raise ConfigError(f"ecology.lineup={eco.lineup} must be >= 0")
    if others := [k for k in cfg.opponents if not k.startswith(PREFIX)]:
        raise ConfigError(f"ecology.roster draws every seat beside the model; leave opponents empty (got opponents.{others[0]})")
    models = {}
    for name in dict.fromkeys(eco.roster):
        path = CONF_MODELS / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"ecology.roster: {name!r} is not a model config (conf/model/{name}.yaml)")
        models[name] = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path))
    *others, last = draw(list(eco.roster), cfg.env.n_agents, eco.lineup)
    with open_dict(cfg.opponents):
        for key in list(cfg.opponents):
            del cfg.opponents[key]
        for j, name in enumerate(others, start=1):
            cfg.opponents[f"{PREFIX}{j}"] = models[name]
    cfg.opponent = models[last]
