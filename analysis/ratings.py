"""Model ratings from game outcomes: Plackett-Luce on each game's ranking by discounted utility.

For two agents this is Bradley-Terry (P(i beats j) = sigmoid(theta_i - theta_j)). Ties (equal utility,
including every no-deal game) are split evenly: a tie group G chosen from the remaining set R adds
mean_{i in G} theta_i - log sum_{j in R} exp(theta_j), which for two agents is half a win each.
A small ridge keeps ratings finite when a model never loses. Ratings are reported on the Elo scale
(400 / ln 10 per logit, mean 1500) with percentile intervals from a bootstrap over preference draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats import cluster_codes, cluster_mean_ci, cluster_weights, percentile_ci

ELO_PER_LOGIT = 400 / np.log(10)
RIDGE = 1e-2


def ranking_stages(agents: pd.DataFrame, models: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per choice stage: chosen-group weights G (S, K), remaining-set counts R (S, K), draw labels (S,).

    A game ranks its agents by utility; stage L picks the agents of its L-th best utility from those not
    picked yet, while at least two remain. Stages are ordered by game, then L.
    """
    a = agents.sort_values(["experiment_id", "game_index", "seat"])
    game = (a["experiment_id"] + "/" + a["game_index"].astype(str)).to_numpy()
    if a.empty:
        return np.zeros((0, len(models))), np.zeros((0, len(models))), np.zeros(0, dtype=object)
    gid = np.cumsum(np.r_[True, game[1:] != game[:-1]]) - 1
    n_games = int(gid[-1]) + 1
    level = (pd.Series(a["discounted_utility"].round(9).to_numpy()).groupby(gid)
             .rank(method="dense", ascending=False).to_numpy(dtype=int))  # 1: the game's best utility
    model_ids = a["model"].map({m: k for k, m in enumerate(models)}).to_numpy(dtype=int)
    draw = a["draw_id"].to_numpy()
    top = int(level.max())
    stage = np.full((n_games, top + 1), -1)  # stage id of (game, L), -1 where fewer than two remain
    remaining = [np.bincount(gid[level >= L], minlength=n_games) for L in range(top + 1)]
    games_, levels_ = np.nonzero(np.column_stack(remaining)[:, 1:] >= 2)
    stage[games_, levels_ + 1] = np.arange(len(games_))  # np.nonzero walks game by game, L by L
    G, R = np.zeros((len(games_), len(models))), np.zeros((len(games_), len(models)))
    for L in range(1, top + 1):
        rows = np.flatnonzero((level >= L) & (stage[gid, L] >= 0))
        np.add.at(R, (stage[gid[rows], L], model_ids[rows]), 1)
    chosen = np.flatnonzero(stage[gid, level] >= 0)
    np.add.at(G, (stage[gid[chosen], level[chosen]], model_ids[chosen]), 1)
    G /= G.sum(axis=1, keepdims=True)
    first = np.r_[0, np.flatnonzero(gid[1:] != gid[:-1]) + 1]
    return G, R, draw[first][games_]


def fit_ratings(G: np.ndarray, R: np.ndarray, W: np.ndarray, iters: int = 100) -> np.ndarray:
    """Ridge-penalised maximum-likelihood strengths for every weight row of ``W`` (B, S) -> (B, K).

    The penalised log-likelihood is strictly concave, so Newton's method converges in a few steps;
    replicates are solved together in chunks that keep the (B, S, K) arrays small.
    """
    K = G.shape[1]
    chunk = max(1, int(4e6 // max(G.size, 1)))
    out = []
    for start in range(0, W.shape[0], chunk):
        w = W[start:start + chunk]
        theta = np.zeros((w.shape[0], K))
        for _ in range(iters):
            e = np.exp(theta - theta.max(axis=1, keepdims=True))
            P = R[None] * e[:, None, :]
            P /= P.sum(axis=2, keepdims=True)  # P[b, s, k]: chance stage s's pick is model k
            wp = np.einsum("bs,bsk->bk", w, P)
            grad = w @ G - wp - RIDGE * theta
            hess = (w[:, :, None] * P).transpose(0, 2, 1) @ P - wp[:, :, None] * np.eye(K) - RIDGE * np.eye(K)
            step = np.linalg.solve(hess, -grad[..., None])[..., 0]
            theta += step
            if np.abs(step).max() < 1e-8:
                break
        out.append(theta - theta.mean(axis=1, keepdims=True))
    return np.concatenate(out)


def ratings_table(agents: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Elo-scale rating per model with a 95% bootstrap interval, on all complete games and on valid ones.

    ``rating*`` use every complete game; ``rating_valid*`` only games where every move was valid
    (strategy); ``valid_rate*`` is the share of a model's complete games that were valid, with a
    bootstrap interval over preference draws (competence).
    """
    done = agents[agents["status"] == "complete"]
    columns = ["model", "method", "rating", "rating_low", "rating_high", "rating_valid", "rating_valid_low",
               "rating_valid_high", "valid_rate", "valid_rate_low", "valid_rate_high", "n_games", "n_valid_games",
               "mean_share"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    models = sorted(done["model"].unique())
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"model": models, "method": "bradley_terry" if done["n_agents"].max() == 2 else "plackett_luce"})
    for suffix, games in (("", done), ("_valid", done[done["valid_game"]])):
        theta, lo, hi = _elo(games, models, n_boot, rng)
        table[f"rating{suffix}"], table[f"rating{suffix}_low"], table[f"rating{suffix}_high"] = theta, lo, hi
    rates = [cluster_mean_ci(d["valid_game"].astype(float), d["draw_id"], n_boot, rng) for _, d in done.groupby("model")]
    table["valid_rate"], table["valid_rate_low"], table["valid_rate_high"] = np.array(rates).T
    by_model = done.groupby("model")
    table["n_games"] = by_model.size().loc[models].to_numpy()
    table["n_valid_games"] = by_model["valid_game"].sum().loc[models].to_numpy()
    table["mean_share"] = by_model["share"].mean().loc[models].to_numpy()
    return table.reindex(columns=columns).sort_values("rating", ascending=False, ignore_index=True)


def _elo(games: pd.DataFrame, models: list[str], n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Elo-scale ratings of ``models`` with their bootstrap interval (NaN for models without games here)."""
    out = np.full((3, len(models)), np.nan)
    here = [m for m in models if m in set(games["model"])]
    if not here:
        return tuple(out)
    G, R, draws = ranking_stages(games, here)
    # Identical stages of one draw pooled with their count: the likelihood is a sum over stages, so the
    # fits work on (draw x distinct ranking) rows, not on every game.
    keys, counts = _unique_rows(np.column_stack([cluster_codes(draws), G, R]))
    codes, G, R = keys[:, 0].astype(int), keys[:, 1:1 + len(here)], keys[:, 1 + len(here):]
    theta = fit_ratings(G, R, counts[None].astype(float))[0]
    boot = fit_ratings(G, R, cluster_weights(codes, n_boot, rng) * counts)
    lo, hi = percentile_ci(boot)
    out[:, [models.index(m) for m in here]] = 1500 + ELO_PER_LOGIT * np.vstack([theta, lo, hi])
    return tuple(out)


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows in lexicographic order and their counts: ``np.unique(axis=0, return_counts=True)``
    by one lexsort (numpy's compares rows as opaque records, many times slower)."""
    if not len(rows):
        return rows, np.zeros(0, dtype=int)
    rows = rows[np.lexsort(rows.T[::-1])]
    first = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]).any(axis=1)])
    return rows[first], np.diff(np.r_[first, len(rows)])
