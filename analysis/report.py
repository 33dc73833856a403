"""Run the whole analysis on a store and write every table and figure into one folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analysis import axes, branching, figures, fits, ratings, tables
from analysis.behaviour.tables import SUMMARY_TABLES as BEHAVIOUR_SUMMARIES
from analysis.behaviour.tables import behaviour_frames, behaviour_tables
from analysis.competence import competence_table
from analysis.load import NoRecords, capability, capability_label, condition_cols, conditions_table, load_tables
from analysis.rows import BEHAVIOUR
from analysis.sensitivity import sensitivity_table

log = logging.getLogger(__name__)

CAPABILITY_PREFERENCE = ("params_b", "arena_elo", "release_date", "skill")
AXES_TABLES = ("name_effect", "ecology", "perturbation_variance", "perturbation_slope", "access")  # empty unless in use
# Summary tables also get a Markdown version; the two tidy tables are too long for that.
SUMMARIES = ("headline", "scaling", "scaling_points", "competence", "sensitivity", "ratings", "seat_effect",
             "competition", "validity", "conditions",
             *AXES_TABLES)
HEADLINE_COLS = ("n_obs", "n_clusters", "mean", "slope", "slope_ci_low", "slope_ci_high", "slope_p",
                 "slope_boot_low", "slope_boot_high", "preferred", "reference", "crossover",
                 "crossover_in_range", "backtest_error", "backtest_covered")


@dataclass
class Result:
    """Everything the analysis produced."""

    out: Path
    capability: str | None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # damaged records left out (and quarantined)


def choose_capability(agents: pd.DataFrame, requested: str) -> str | None:
    """The capability column to use; ``auto`` takes the first of CAPABILITY_PREFERENCE with values."""
    focal = agents[agents["is_focal"]]
    if requested != "auto":
        if capability(focal, requested).isna().all():
            log.warning("no focal model has capability %r; the scaling fits will be empty", requested)
        return requested
    for name in CAPABILITY_PREFERENCE:
        if capability(focal, name).notna().any():
            log.info("capability axis: %s", name)
            return name
    log.warning("no focal model has any of %s; the scaling fits will be empty", ", ".join(CAPABILITY_PREFERENCE))
    return None


def analyze(store: str | Path, out: str | Path, capability_name: str = "auto", n_boot: int = 1000,
            seed: int = 0, judgements: str | Path | None = None) -> Result:
    """Load ``store``, compute every table, write tables (Parquet, CSV, Markdown) and figures to ``out``.

    Behaviour tables come from the games' public messages, and from judge labels in ``judgements``
    (default ``<store>/judgements``) when there are any.
    """
    skipped: list[str] = []
    loaded = load_tables(store, ("games", "agents", *BEHAVIOUR), skipped)  # one pass over the index
    games, agents = loaded["games"], loaded["agents"]
    if games.empty:
        raise NoRecords(f"no game records found below {store}" + (f" (only {len(skipped)} damaged ones)" if skipped else ""))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cap = choose_capability(agents, capability_name)
    keys = group_keys(games)
    cap_values = capability(agents, cap) if cap else pd.Series(np.nan, index=agents.index)
    focal = fits.focal_rows(agents, cap_values)
    law_fits = fits.scaling_fits(focal, keys, n_boot=n_boot, seed=seed)
    result = Result(out, cap, skipped=skipped)
    scaling = fits.scaling_table(law_fits)
    if not scaling.empty:
        scaling.insert(0, "capability", cap)
    points = fits.scaling_points(focal, keys, n_boot=n_boot, seed=seed)
    rated = ratings.ratings_table(agents, n_boot=min(n_boot, 200), seed=seed)
    result.tables = {
        "games": games, "agents": agents,
        "headline": headline(scaling, keys),
        "scaling": scaling, "scaling_points": points,
        "scaling_curves": fits.scaling_curves(law_fits, points, keys),
        "competence": competence_table(scaling, focal, keys, n_boot=n_boot, seed=seed),
        "sensitivity": sensitivity_table(agents, rated, keys, n_boot=n_boot, seed=seed),
        "ratings": rated,
        "seat_effect": tables.seat_effects(agents, keys,
                                           n_boot=n_boot, seed=seed),
        "competition": tables.by_competition(games, keys, n_boot=n_boot, seed=seed),
        "validity": tables.validity(agents),
        "conditions": conditions_table(games),
        "name_effect": axes.name_effects(agents, n_boot=n_boot, seed=seed),
        "ecology": axes.ecology(agents, n_boot=n_boot, seed=seed),
        "perturbation_variance": axes.perturbation_variance(games, keys),
        "perturbation_slope": axes.perturbation_slopes(scaling, keys, games),
        "access": axes.access(games, n_boot=n_boot, seed=seed),
        **behaviour_tables(store, agents, focal, keys, judgements, n_boot=n_boot, seed=seed,
                           recorded=behaviour_frames(loaded)),
        **branching.report_tables(store, n_boot=n_boot, seed=seed),
    }
    for name, df in result.tables.items():
        write_table(df, out, name, markdown=name in SUMMARIES or name in BEHAVIOUR_SUMMARIES)
    order = (points.sort_values("capability")["model"].drop_duplicates().tolist() if not points.empty else [])
    label = capability_label(cap) if cap else "capability"
    result.figures = [
        *figures.share_vs_capability(law_fits, points, keys, label, out),
        *figures.heatmap(games, order, keys, out),
        *figures.ratings(result.tables["ratings"], out),
        *figures.seat_effect(result.tables["seat_effect"], out),
    ]
    (out / "report.md").write_text(report_markdown(result, store))
    return result


def group_keys(games: pd.DataFrame) -> list[str]:
    """What the fits and tables group by: the opponent, the conditions that vary and, wherever item
    games are, their competition level (other games' parameters are among the conditions)."""
    return ["opponent", *condition_cols(games), *(["competition"] if games["competition"].notna().any() else [])]


def headline(scaling: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The focal-share law per group: slope with both intervals, AIC choice, crossover, backtest."""
    if scaling.empty:
        return pd.DataFrame(columns=[*keys, *HEADLINE_COLS])
    share = scaling[scaling["outcome"] == "share"]
    return share.reindex(columns=[*keys, *HEADLINE_COLS]).reset_index(drop=True)  # fit columns are absent when a group has one capability level


def write_table(df: pd.DataFrame, out: Path, name: str, markdown: bool) -> None:
    """Write ``name`` as Parquet and CSV (and Markdown for summaries), both from one Arrow table: Arrow's
    CSV writer is many times faster than pandas' on the big tidy tables (a table holding values it
    cannot write as CSV, such as lists, is written by pandas)."""
    table = pa.Table.from_pandas(_arrow_safe(df), preserve_index=False)
    pq.write_table(table, out / f"{name}.parquet")
    try:
        pacsv.write_csv(table, out / f"{name}.csv", pacsv.WriteOptions(quoting_style="needed"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        df.to_csv(out / f"{name}.csv", index=False)
    if markdown:
        (out / f"{name}.md").write_text(to_markdown(df) + "\n")


def _arrow_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing types (e.g. a competition level next to 'all') become strings for Parquet."""
    df = df.copy()
    for col in [c for c in df.columns if pd.api.types.is_object_dtype(df[c])]:
        kinds = {type(v) for v in df[col] if v is not None and not (isinstance(v, float) and np.isnan(v))}
        if len(kinds) > 1:
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return df


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}g}" if abs(v) >= 1e4 else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def report_markdown(result: Result, store: str | Path) -> str:
    """One Markdown file with every summary table and figure, for reading or pasting into a paper."""
    parts = [f"# Analysis of `{store}`", "",
             f"Capability axis: `{result.capability}`. Intervals are 95%. `slope_ci_*`: Wald t(G-1) with the "
             "cluster-jackknife (CV3) standard error, clustered by preference draw; `*_boot_*` and the other "
             "intervals: percentile bootstrap resampling preference draws. Share laws are fractional logits "
             "(slope on the logit scale), exploitation-index laws least squares; `preferred` compares the "
             "linear law with a plateau law by (Q)AIC.", ""]
    for name in SUMMARIES:
        if name in AXES_TABLES and result.tables[name].empty:
            continue  # an axis the store does not vary
        parts += [f"## {name}", "", to_markdown(result.tables[name]), ""]
    behaviour = [name for name in BEHAVIOUR_SUMMARIES if name in result.tables]
    if behaviour:
        parts += ["# Behaviour", "", "Per agent-game rates (share of an agent's public messages showing a "
                  "behaviour); `source` = `record` (checked against the stored game) or the judge id. Scaling "
                  "and exploitation laws are the share laws' fits with the same intervals.", ""]
    for name in behaviour:
        parts += [f"## {name}", "", to_markdown(result.tables[name]), ""]
    parts += [f"![{p.stem}]({p.name})" for p in result.figures if p.suffix == ".png"]
    return "\n".join(parts) + "\n"
