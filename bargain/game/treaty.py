"""The diplomatic-treaty game: K issues, each settled at one integer percentage from 0 to 100.

Every agent i has an ideal setting ``positions[i, k]`` (an integer percentage) and importance
``weights[i, k]`` (non-negative integers summing to 100). A treaty ``terms`` sets every issue; it is
worth ``U_i = sum_k weights[i, k] * (1 - |positions[i, k] - terms[k]| / 100)`` points to agent i,
so 100 at its ideal and 0 with no treaty. Two parameters shape the game:

- rho, the preference correlation: positions come from a Gaussian copula, ``p = Phi(z)`` with z
  equicorrelated at ``rho_z = 2 sin(pi rho / 6)``, so that the Pearson correlation of two agents'
  positions is rho in the population (Uniform(0, 1) marginals, then rounded to whole percentages).
  n equicorrelated agents need ``rho_z >= -1 / (n - 1)`` (:func:`min_rho`).
- theta, the interest overlap: the target cosine between every pair of weight vectors, drawn by the
  item game's integer generator (:func:`bargain.game.preferences.draw_vectors`: weights are integer
  vectors summing to 100, like item valuations).

Measured (``bench/game_preferences.py``, 10,000 draws of 5 issues per level): the pooled Pearson
correlation of the positions was within 0.0011 of rho at every level tried (n = 2: -1, -0.8, -0.5,
0, 0.5, 0.9, 1; n = 3: min_rho(3), 0, 0.5, 0.9, 1; standard errors up to 0.0045), where the clipped
normal the specification warns about (sd 50 points) was off by up to 0.04; theta was within 0.0009
(n = 2) and 0.0018 (n = 3) on every draw.

Reference solutions, over the continuous agreement space [0, 100]^K (utilities are concave and
piecewise linear, so every one is a linear or convex program):

- maximum welfare: issue by issue the weighted median of the positions; the optimal settings of an
  issue form an interval and, following the set-valued convention, the reported terms are its
  midpoint (where every agent's utility equals its mean over the optimal set, as utilities are
  linear between positions);
- the Nash bargaining solution (disagreement point 0): the unique utility vector maximising
  sum_i log U_i, by cutting planes on the log (each step one linear program);
- Pareto optimality of a treaty: a linear program looks for terms that nobody likes less and that
  have a larger sum of utilities.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bargain.game.preferences import TOTAL, draw_vectors, freeze, pairwise_cosines

PARAMETERS = ("n_issues", "rho", "theta")
_TOL = 1e-7
_NUMBER = re.compile(r"\s*([+-]?[0-9]+(?:\.[0-9]*)?)\s*%?\s*")


class InvalidTerms(ValueError):
    """A proposed treaty is malformed; the message says exactly what is wrong (for a re-ask)."""


@dataclass(frozen=True, eq=False)
class TreatyPreferences:
    """The private ideals and weights of one game (arrays are read-only copies).

    Attributes:
        positions: (n, K) integer ideal settings in 0..100.
        weights: (n, K) non-negative integers, each row summing to 100.
        rho: target correlation of the positions.
        theta: target pairwise cosine of the weights.
    """

    positions: np.ndarray
    weights: np.ndarray
    rho: float
    theta: float
    kind = "treaty"

    def __post_init__(self) -> None:
        freeze(self, "positions", "weights")
        if self.positions.shape != self.weights.shape:
            raise ValueError(f"positions {self.positions.shape} and weights {self.weights.shape} differ in shape")

    @property
    def n_agents(self) -> int:
        return self.positions.shape[0]

    @property
    def n_issues(self) -> int:
        return self.positions.shape[1]

    def cosines(self) -> dict[str, float]:
        """Pairwise cosine of the weight vectors, keyed "i-j" for i < j."""
        return pairwise_cosines(self.weights)

    def correlations(self) -> dict[str, float | None]:
        """Pairwise Pearson correlation of the position vectors (None if one is constant)."""
        p = self.positions.astype(float)
        out: dict[str, float | None] = {}
        for i, j in itertools.combinations(range(self.n_agents), 2):
            a, b = p[i] - p[i].mean(), p[j] - p[j].mean()
            scale = math.sqrt(float(a @ a) * float(b @ b))
            out[f"{i}-{j}"] = float(a @ b / scale) if scale > 0 else None
        return out


def latent_correlation(rho: float) -> float:
    """The copula's normal correlation whose uniform transforms have Pearson correlation rho."""
    return 2.0 * math.sin(math.pi * rho / 6.0)


def min_rho(n_agents: int) -> float:
    """The lowest rho that n equicorrelated agents can share (latent correlation -1 / (n - 1))."""
    return 6.0 / math.pi * math.asin(-0.5 / (n_agents - 1))


def generate_treaty(rng: np.random.Generator, n_agents: int, n_issues: int, rho: float, theta: float) -> TreatyPreferences:
    """Draw one game's ideals and weights (deterministic given ``rng``).

    Raises:
        ValueError: naming the config key, for out-of-range or infeasible settings.
    """
    if n_agents < 2:
        raise ValueError(f"env.n_agents={n_agents} must be >= 2")
    if n_issues < 1:
        raise ValueError(f"game.n_issues={n_issues} must be >= 1")
    if not min_rho(n_agents) - 1e-12 <= rho <= 1.0:
        raise ValueError(f"game.rho={rho} must be in [{min_rho(n_agents):.4f}, 1] for env.n_agents={n_agents}")
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"game.theta={theta} must be in [0, 1]")
    if n_agents > n_issues and theta < 1.0:
        raise ValueError(f"game.theta={theta} < 1 needs game.n_issues >= env.n_agents (one dimension per agent)")
    r = latent_correlation(rho)
    corr = np.full((n_agents, n_agents), r) + (1.0 - r) * np.eye(n_agents)
    eigenvalues, vectors = np.linalg.eigh(corr)  # a symmetric square root also works when corr is singular
    root = vectors * np.sqrt(np.clip(eigenvalues, 0.0, None)) @ vectors.T
    z = root @ rng.standard_normal((n_agents, n_issues))
    uniform = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))  # the standard normal CDF
    positions = np.rint(100.0 * uniform).astype(np.int64)
    weights = draw_vectors(rng, n_agents, n_issues, theta)
    return TreatyPreferences(positions, weights, float(rho), float(theta))


def utilities(prefs: TreatyPreferences, terms: Sequence[float]) -> np.ndarray:
    """Points of every agent, shape (n,), for one setting per issue in [0, 100]."""
    terms = np.asarray(terms, dtype=float)
    if terms.shape != (prefs.n_issues,) or not np.isfinite(terms).all() or (terms < 0).any() or (terms > 100).any():
        raise ValueError(f"terms must give one setting in [0, 100] for each of the {prefs.n_issues} issues, got {terms.tolist()}")
    return (prefs.weights * (100.0 - np.abs(prefs.positions - terms))).sum(axis=1) / TOTAL


def parse_terms(obj: Any, issue_names: Sequence[str]) -> tuple[int, ...]:
    """Turn {issue name: setting} (or a list of K settings in issue order) into a treaty.

    Issue names match case-insensitively; settings are whole percentages 0..100, given as numbers
    or strings such as "35" or "35%".

    Raises:
        InvalidTerms: listing every problem found, e.g. "issue 'Tariff rate' has no setting".
    """
    if isinstance(obj, (list, tuple)):
        if len(obj) != len(issue_names):
            raise InvalidTerms(f"a list of settings needs exactly {len(issue_names)} entries (one per issue), got {len(obj)}")
        obj = dict(zip(issue_names, obj))
    if not isinstance(obj, Mapping):
        raise InvalidTerms(f"the treaty must map issue names to settings, got {type(obj).__name__}")
    index = {name.strip().casefold(): k for k, name in enumerate(issue_names)}
    settings: list[int | None] = [None] * len(issue_names)
    given: set[int] = set()
    problems: list[str] = []
    for key, value in obj.items():
        k = index.get(str(key).strip().casefold())
        if k is None:
            problems.append(f"unknown issue {key!r} (issues are {', '.join(issue_names)})")
            continue
        if k in given:
            problems.append(f"issue {issue_names[k]!r} is set twice")
            continue
        given.add(k)
        settings[k], problem = _setting(value)
        if problem:
            problems.append(f"issue {issue_names[k]!r}: {problem}")
    problems += [f"issue {name!r} has no setting" for k, name in enumerate(issue_names) if k not in given]
    if problems:
        raise InvalidTerms("; ".join(problems))
    return tuple(settings)


def _setting(value: Any) -> tuple[int, str | None]:
    """(setting, None) for a whole percentage in 0..100, else (-1, what is wrong)."""
    if isinstance(value, str):
        match = _NUMBER.fullmatch(value)
        value = float(match.group(1)) if match else value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return -1, f"{value!r} is not a number (give a whole percentage from 0 to 100)"
    if not math.isfinite(value) or value != int(value):
        return -1, f"{value!r} is not a whole percentage (give an integer from 0 to 100)"
    if not 0 <= value <= 100:
        return -1, f"{int(value)} is outside 0..100"
    return int(value), None


# -- reference solutions ------------------------------------------------------------------------

def max_welfare(prefs: TreatyPreferences) -> tuple[np.ndarray, float]:
    """Welfare-maximising terms (the midpoint of each issue's optimal interval) and the maximum welfare."""
    terms = np.empty(prefs.n_issues)
    for k in range(prefs.n_issues):
        p, w = prefs.positions[:, k].astype(float), prefs.weights[:, k].astype(float)
        # Welfare on one issue is concave and piecewise linear with kinks at the positions, so its
        # maximum is reached at positions, and the optimal set is the interval they span.
        welfare = np.array([(w * (100.0 - np.abs(p - a))).sum() for a in p])
        best = p[welfare >= welfare.max() - 1e-9]
        terms[k] = (best.min() + best.max()) / 2
    return terms, float(utilities(prefs, terms).sum())


def _polytope(prefs: TreatyPreferences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, A, b): the treaties as a polytope A x <= b with utilities U = 100 + G x, linear in x.

    x = [terms (K), d (n * K)] where d[i, k] >= |positions[i, k] - terms[k]| stands for the distance
    (U_i = 100 - sum_k weights[i, k] d[i, k] / 100), terms in [0, 100] and d <= 100.
    """
    n, K = prefs.n_agents, prefs.n_issues
    size = K + n * K
    to_terms = np.tile(np.eye(K, size), (n, 1))  # row (i, k) picks terms[k]
    to_d = np.eye(n * K, size, K)  # row (i, k) picks d[i, k]
    p = prefs.positions.ravel().astype(float)
    A = np.vstack([to_terms - to_d, -to_terms - to_d, np.eye(size), -np.eye(K, size)])
    b = np.concatenate([p, -p, np.full(size, 100.0), np.zeros(K)])
    G = np.zeros((n, size))
    for i in range(n):
        G[i, K + i * K: K + (i + 1) * K] = -prefs.weights[i] / TOTAL
    return G, A, b


def nash_bargaining(prefs: TreatyPreferences) -> tuple[np.ndarray, np.ndarray]:
    """Terms and utilities of the Nash bargaining solution (disagreement point 0).

    The utility vector is unique (a strictly concave objective on a convex set); the terms need not
    be. Solved by a log-barrier Newton method from terms at 50 (which give everyone >= 49 points).
    """
    n, K = prefs.n_agents, prefs.n_issues
    G, A, b = _polytope(prefs)
    x = np.concatenate([np.full(K, 50.0), np.abs(prefs.positions - 50.0).ravel() + 1.0])
    x = _max_log_sum(100.0, G, A, b, x)
    return x[:K], 100.0 + G @ x


def _max_log_sum(c: float, G: np.ndarray, A: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Maximise sum_i log(c + G_i x) subject to A x <= b, from a strictly feasible x.

    A barrier method: Newton steps on -sum log(c + G x) - mu sum log(b - A x), mu shrinking tenfold
    until the duality gap bound mu * len(b) is below 1e-11.
    """

    def objective(y: np.ndarray, mu: float) -> float:
        return -np.log(c + G @ y).sum() - mu * np.log(b - A @ y).sum()

    mu = 1.0
    while mu * len(b) >= 1e-11:
        for _ in range(100):
            u, s = c + G @ x, b - A @ x
            grad = -G.T @ (1 / u) + mu * A.T @ (1 / s)
            hessian = (G.T / u**2) @ G + mu * (A.T / s**2) @ A
            step = np.linalg.solve(hessian, -grad)
            decrement = -grad @ step
            if decrement <= 2e-14:
                break
            du, ds = G @ step, -(A @ step)  # keep u and s positive: at most 99% of the way to a boundary
            limits = [0.99 * -v[dv < 0] / dv[dv < 0] for v, dv in ((u, du), (s, ds))]
            t = min([1.0, *(float(limit.min()) for limit in limits if limit.size)])
            start = objective(x, mu)
            while objective(x + t * step, mu) > start - 0.25 * t * decrement and t > 1e-12:
                t /= 2
            x = x + t * step
        mu /= 10
    return x


def is_pareto_optimal(prefs: TreatyPreferences, terms: Sequence[float]) -> bool:
    """Whether no terms give every agent at least as much and the agents more in total (a linear program)."""
    from scipy.optimize import linprog  # slow to import: only the analysis needs it

    u = utilities(prefs, terms)
    G, A, b = _polytope(prefs)
    # U(x) >= u  <=>  -G x <= 100 - u
    result = linprog(-G.sum(axis=0), A_ub=np.vstack([A, -G]), b_ub=np.concatenate([b, 100.0 - u]),
                     bounds=(None, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"treaty Pareto program failed: {result.message}")
    return bool(100.0 * len(u) + G.sum(axis=0) @ result.x <= u.sum() + _TOL)


def most_acceptable(prefs: TreatyPreferences, seat: int, floor: float) -> np.ndarray:
    """Terms maximising the least utility of the other agents while ``seat`` keeps ``floor`` points (a linear program).

    Among those, the terms best for ``seat``. A negotiator's offer under its estimate of the others.
    """
    from scipy.optimize import linprog  # slow to import: only the offline negotiators and the analysis need it

    G, A, b = _polytope(prefs)
    size, others = A.shape[1], [i for i in range(prefs.n_agents) if i != seat]
    # Variables [x, s]: s <= U_j(x) for every other j, U_seat(x) >= floor; maximise s, then U_seat.
    rows = [np.append(-G[j], 1.0) for j in others] + [np.append(-G[seat], 0.0)]
    bounds = [100.0] * len(others) + [100.0 - min(floor, 100.0)]
    objective = np.append(-1e-6 * G[seat], -1.0)
    result = linprog(objective, A_ub=np.vstack([np.hstack([A, np.zeros((len(b), 1))]), rows]),
                     b_ub=np.concatenate([b, bounds]), bounds=(None, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"treaty offer program failed: {result.message}")
    return result.x[: prefs.n_issues]
