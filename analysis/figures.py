"""Figures (PNG and PDF): share vs capability, model x competition heatmap, ratings, seat effect.

matplotlib is imported lazily (and with the Agg backend) so loading the package stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.fits import LawFit


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    _pyplot().close(fig)
    return paths


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _label(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items())


def share_vs_capability(fits: list[tuple[dict, str, LawFit]], points: pd.DataFrame, keys: list[str],
                        cap_label: str, out: Path) -> list[Path]:
    """Focal share vs capability: points with 95% CIs, fitted fractional-logit curve and band."""
    plt = _pyplot()
    panel_keys = [k for k in keys if k != "competition"]
    share_fits = [(g, f) for g, o, f in fits if o == "share"]
    panels = sorted({tuple(g[k] for k in panel_keys) for g, _ in share_fits}, key=str) or [()]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    colors = plt.get_cmap("viridis")
    levels = sorted({g["competition"] for g, _ in share_fits})
    for ax, panel in zip(axes[0], panels):
        shown = False
        for group, fit in share_fits:
            if tuple(group[k] for k in panel_keys) != panel:
                continue
            level = levels.index(group["competition"])
            c = colors(level / max(len(levels) - 1, 1))
            sel = np.ones(len(points), dtype=bool)
            for k, v in group.items():
                sel &= (points[k] == v).to_numpy()
            p = points[sel].sort_values("capability")
            if p.empty:
                continue
            shown = True
            yerr = np.vstack([p["share"] - p["share_low"], p["share_high"] - p["share"]])
            span = np.ptp(points["capability"]) or 1.0
            dodge = (level - (len(levels) - 1) / 2) * 0.01 * span  # keep overlapping error bars apart
            ax.errorbar(p["capability"] + dodge, p["share"], yerr=np.nan_to_num(yerr), fmt="o", color=c,
                        capsize=3, label=f"competition {group['competition']:g}")
            if np.isfinite(fit.beta).all():
                grid = np.linspace(p["capability"].min(), p["capability"].max(), 50)
                mean, lo, hi = fit.curve(grid)
                ax.plot(grid, mean, color=c)
                ax.fill_between(grid, lo, hi, color=c, alpha=0.2)
            ax.axhline(p["nbs_share"].mean(), color=c, ls=":", lw=1)
        if not shown:
            _empty(ax)
            continue
        ax.set_xlabel(cap_label)
        ax.set_ylabel("focal share of total utility")
        ax.set_title(_label(dict(zip(panel_keys, panel))), fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("Focal share vs capability (dotted: Nash-bargaining share)")
    return _save(fig, out, "share_vs_capability")


def heatmap(games: pd.DataFrame, model_order: list[str], out: Path) -> list[Path]:
    """Mean focal share per focal model x competition level, one panel per opponent."""
    plt = _pyplot()
    done = games[games["status"] == "complete"]
    opponents = sorted(done["opponent"].unique()) or [None]
    fig, axes = plt.subplots(1, len(opponents), figsize=(1.2 + 1.1 * max(done["competition"].nunique(), 2)
                                                          * len(opponents), 1.5 + 0.5 * max(len(model_order), 2)),
                             squeeze=False)
    for ax, opp in zip(axes[0], opponents):
        d = done[done["opponent"] == opp]
        table = d.pivot_table(index="focal_model", columns="competition", values="focal_share", aggfunc="mean")
        if table.empty:
            _empty(ax)
            continue
        table = table.reindex([m for m in model_order if m in table.index] +
                              [m for m in table.index if m not in model_order])
        im = ax.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(table.shape[1]), [f"{c:g}" for c in table.columns])
        ax.set_yticks(range(table.shape[0]), table.index)
        ax.set_xlabel("competition")
        ax.set_title(f"vs {opp}", fontsize=9)
        fig.colorbar(im, ax=ax, label="mean focal share")
    return _save(fig, out, "heatmap")


def ratings(table: pd.DataFrame, out: Path) -> list[Path]:
    """Elo-scale ratings with 95% bootstrap intervals."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 1 + 0.4 * max(len(table), 2)))
    if table.empty:
        _empty(ax)
    else:
        t = table.sort_values("rating")
        y = np.arange(len(t))
        xerr = np.vstack([t["rating"] - t["rating_low"], t["rating_high"] - t["rating"]])
        ax.errorbar(t["rating"], y, xerr=np.nan_to_num(xerr), fmt="o", capsize=3)
        ax.set_yticks(y, t["model"])
        ax.set_xlabel(f"rating (Elo scale, {t['method'].iloc[0].replace('_', '-')})")
    return _save(fig, out, "ratings")


def seat_effect(table: pd.DataFrame, out: Path) -> list[Path]:
    """Seat advantage (focal share at a seat minus its mean over seats) with 95% intervals.

    The last seat of each group is left out: a group's advantages sum to zero.
    """
    plt = _pyplot()
    group_cols = [c for c in table.columns if c not in ("seat", "advantage", "low", "high", "n_sets")]
    if not table.empty:
        last = table.groupby(group_cols)["seat"].transform("max")
        table = table[table["seat"] < last].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6, 1 + 0.35 * max(len(table), 2)))
    if table.empty:
        _empty(ax, "no counterbalanced games")
    else:
        labels = [" | ".join(f"{r[c]}" for c in group_cols) + f" | seat {r['seat']}" for _, r in table.iterrows()]
        y = np.arange(len(table))
        xerr = np.vstack([table["advantage"] - table["low"], table["high"] - table["advantage"]])
        ax.errorbar(table["advantage"], y, xerr=np.nan_to_num(xerr), fmt="o", capsize=3)
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_xlabel("seat advantage in focal share")
        ax.set_title(" | ".join(group_cols), fontsize=8)
    return _save(fig, out, "seat_effect")
