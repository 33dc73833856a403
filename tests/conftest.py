"""Shared fixtures: offline LiteLLM, and configs composed with Hydra's compose API into tmp stores."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from bargain.config import register  # noqa: E402
from bargain.roster import table  # noqa: E402

# Lifecycle checks see the day the roster was checked, so retirement dates that pass do not change results
# (also in the subprocesses tests start); a test that wants another day sets it.
os.environ.setdefault("BARGAIN_TODAY", table()["checked_on"])

CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def compose_cfg(store, *overrides: str):
    """The app's config composed with overrides, storing records in ``store``."""
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            return compose(config_name="config", overrides=[f"store={store}", *overrides])
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def make_cfg(tmp_path):
    """Compose the app's config with overrides, storing records under tmp_path."""
    return lambda *overrides: compose_cfg(tmp_path / "store", *overrides)


@pytest.fixture
def sleeps(monkeypatch):
    """Backoff waits, recorded instead of slept."""
    from bargain.backend import core

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(core, "_sleep", fake_sleep)
    return waits
