"""Figures (PNG and PDF): share vs capability, model x level heatmap, ratings, seat effect.

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


def level_cols(keys: list[str]) -> list[str]:
    """The columns that make a level on a figure's axis: the item game's competition, else (other games,
    or a store mixing games) every grouping key but the opponent."""
    return ["competition"] if "competition" in keys and "game" not in keys else [k for k in keys if k != "opponent"]


def _level_label(cols: list[str], values: tuple) -> str:
    def fmt(v) -> str:
        return "n/a" if pd.isna(v) else f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v)

    if cols == ["competition"]:
        return fmt(values[0])
    return "\n".join(f"{k}={fmt(v)}" for k, v in zip(cols, values) if not pd.isna(v)) or "all"


def _ordered_labels(cols: list[str], rows: list[tuple]) -> list[str]:
    """Distinct level labels, sorted column by column with missing values last."""
    def key(row: tuple) -> list:
        return [(pd.isna(v), str(type(v)), v if not pd.isna(v) else 0) for v in row]

    return list(dict.fromkeys(_level_label(cols, row) for row in sorted(rows, key=key)))


def _matches(column: pd.Series, value) -> np.ndarray:
    """column == value, where a missing value matches a missing value."""
    return ((column == value) | (column.isna() & pd.isna(value))).to_numpy()


def share_vs_capability(fits: list[tuple[dict, str, LawFit]], points: pd.DataFrame, keys: list[str],
                        cap_label: str, out: Path) -> list[Path]:
    """Focal share vs capability: points with 95% CIs, fitted fractional-logit curve and band.

    One panel per opponent and condition; within a panel one colour per competition level (item game).
    """
    plt = _pyplot()
    shade = ["competition"] if "competition" in keys else []
    panel_keys = [k for k in keys if k not in shade]
    share_fits = [(g, f) for g, o, f in fits if o == "share"]
    panels = list(dict.fromkeys(_level_label(panel_keys, tuple(g[k] for k in panel_keys)) for g, _ in share_fits))
    panels = sorted(panels) or [""]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    colors = plt.get_cmap("viridis")
    levels = _ordered_labels(shade, [tuple(g[k] for k in shade) for g, _ in share_fits])
    for ax, panel in zip(axes[0], panels):
        shown = False
        for group, fit in share_fits:
            if _level_label(panel_keys, tuple(group[k] for k in panel_keys)) != panel:
                continue
            level = levels.index(_level_label(shade, tuple(group[k] for k in shade)))
            c = colors(level / max(len(levels) - 1, 1))
            sel = np.ones(len(points), dtype=bool)
            for k, v in group.items():
                sel &= _matches(points[k], v)
            p = points[sel].sort_values("capability")
            if p.empty:
                continue
            shown = True
            yerr = np.vstack([p["share"] - p["share_low"], p["share_high"] - p["share"]])
            span = np.ptp(points["capability"]) or 1.0
            dodge = (level - (len(levels) - 1) / 2) * 0.01 * span  # keep overlapping error bars apart
            label = f"competition {levels[level]}" if shade and levels[level] != "n/a" else "focal model"
            ax.errorbar(p["capability"] + dodge, p["share"], yerr=np.nan_to_num(yerr), fmt="o", color=c,
                        capsize=3, label=label)
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
        ax.set_title(panel, fontsize=8)
        ax.legend(fontsize=8)
    title_lines = max(p.count("\n") + 1 for p in panels)  # multi-line panel titles push the headline up
    fig.suptitle("Focal share vs capability (dotted: Nash-bargaining share)", y=1.0 + 0.04 * max(title_lines - 1, 0))
    return _save(fig, out, "share_vs_capability")


def heatmap(games: pd.DataFrame, model_order: list[str], keys: list[str], out: Path) -> list[Path]:
    """Mean focal share per focal model x level (see :func:`level_cols`), one panel per opponent."""
    plt = _pyplot()
    done = games[games["status"] == "complete"]
    cols = level_cols(keys)
    rows = [tuple(r) for r in done[cols].itertuples(index=False)]
    order = _ordered_labels(cols, rows)
    done = done.assign(level=pd.Categorical([_level_label(cols, r) for r in rows], categories=order, ordered=True))
    opponents = sorted(done["opponent"].unique()) or [None]
    fig, axes = plt.subplots(1, len(opponents), figsize=(1.2 + 1.1 * max(len(order), 2)
                                                          * len(opponents), 1.5 + 0.5 * max(len(model_order), 2)),
                             squeeze=False)
    for ax, opp in zip(axes[0], opponents):
        d = done[done["opponent"] == opp]
        table = d.pivot_table(index="focal_model", columns="level", values="focal_share", aggfunc="mean",
                              observed=True)
        if table.empty:
            _empty(ax)
            continue
        table = table.reindex([m for m in model_order if m in table.index] +
                              [m for m in table.index if m not in model_order])
        im = ax.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(table.shape[1]), list(table.columns), fontsize=None if cols == ["competition"] else 7)
        ax.set_yticks(range(table.shape[0]), table.index)
        ax.set_xlabel("competition" if cols == ["competition"] else "condition")
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
