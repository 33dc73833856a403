"""Seeded prompt perturbations: the same game told differently (``perturb.*``).

- ``names=k``: the k-th seeded permutation of the item, issue or project names (value k goes with
  another name; the game underneath is the same draw);
- ``scale=s``: every value (and co-funding's costs and budgets) is shown multiplied by s; moves
  given in those units are converted back, so records stay in the game's own units;
- ``unit``: values called ``points`` or ``dollars``;
- ``paraphrase=k``: the rules (system prompts) in the k-th rewording of ``prompts/perturbed/<k>/``;
  ``perturbed/0/`` is the original wording with the scale and unit filled in (a test checks it renders
  exactly the original at scale 1 in points).

Without any perturbation the original templates are used, so experiments stored before perturbations
existed keep their identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PARAPHRASES = 2  # paraphrases available besides the original wording (prompts/perturbed/1, 2)
DEFAULTS = {"names": 0, "scale": 1.0, "unit": "points", "paraphrase": 0}


@dataclass(frozen=True)
class Wording:
    """How a game's prompts show values: a factor, the unit's name, and the rules' template folder."""

    scale: float = 1.0
    unit: str = "points"
    rules: str = ""  # template prefix of the rule prompts: "" (the originals) or "perturbed/<k>/"

    def amount(self, value: float) -> str:
        """A value as shown: scaled, without a needless decimal point."""
        return f"{value * self.scale:g}"


def active(perturb: dict[str, Any] | None) -> bool:
    """Whether any perturbation differs from the original prompts."""
    return bool(perturb) and any(perturb.get(k, v) != v for k, v in DEFAULTS.items())


def wording(perturb: dict[str, Any] | None) -> Wording:
    if not active(perturb):
        return Wording()
    return Wording(float(perturb["scale"]), str(perturb["unit"]), f"perturbed/{int(perturb['paraphrase'])}/")


def permuted(names: list[str], k: int) -> list[str]:
    """The k-th seeded permutation of ``names`` (k = 0: unchanged)."""
    if k == 0:
        return list(names)
    order = np.random.default_rng([k, len(names)]).permutation(len(names))
    return [names[i] for i in order]


def label(perturb: dict[str, Any] | None) -> str:
    """A short name of a perturbation for tables and filters: ``none`` or e.g. ``names=1 scale=10 unit=dollars``."""
    if not active(perturb):
        return "none"
    return " ".join(f"{k}={perturb[k]:g}" if isinstance(perturb[k], (int, float)) else f"{k}={perturb[k]}"
                    for k, v in DEFAULTS.items() if perturb.get(k, v) != v)


def prompts_hash(perturb: dict[str, Any], game_prompts: str | None) -> str:
    """Hash of the paraphrase's rule templates this game uses (part of the identity when perturbed)."""
    from bargain.prompts import templates_hash

    folder = f"perturbed/{int(perturb['paraphrase'])}"
    return templates_hash(f"{folder}/{game_prompts}" if game_prompts else folder)
