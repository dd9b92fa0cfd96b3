"""What ``tamis transfer`` shows: the stdout table, the low-agreement warning, ``transfer.json``
and the scatter plot (matplotlib, loaded only when a plot is written)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from tamis.base.version import __version__

if TYPE_CHECKING:
    from tamis.base.agreement import Agreement, Joined
    from tamis.transfer.hardness import ScoreColumn

# A score is drawn on a log axis when it is positive and its largest value is more than this
# many times its smallest: perplexities run from 1 to 10^6, which a linear axis squeezes flat.
LOG_SPAN = 100.0


def _p(value: float) -> str:
    if math.isnan(value):
        return "p undefined"
    # 0.0 is an underflow: the true p-value is below the smallest double, not zero.
    return "p < 1e-300" if value == 0 else f"p = {value:.2g}"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _side(name: str, col: ScoreColumn) -> str:
    used = col.rows - sum(col.dropped.values())
    text = f"{name}  {col.path} [{col.column}]: {col.rows} rows, {used} used"
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(col.dropped.items()) if v)
    return text + (f" (dropped: {reasons})" if reasons else "")


def format_table(a: ScoreColumn, b: ScoreColumn, result: Agreement, source: str) -> str:
    """The short summary printed on stdout."""
    end = "lowest" if result.direction == "lower" else "highest"
    lines = [
        _side("A", a),
        _side("B", b),
        f"joined {result.n} records on id; top = the {end} values ({source})",
        "",
        f"spearman  {result.spearman.statistic:7.4f}  {_p(result.spearman.pvalue)}",
        f"kendall   {result.kendall.statistic:7.4f}  {_p(result.kendall.pvalue)}  (tau-b)",
        "",
        "   top     size   shared  jaccard   chance  x chance",
    ]
    for t in result.top:
        lines.append(
            f"{t.percent:5g}%  {t.size:7d}  {t.shared:7d}  {t.jaccard:7.4f}  {t.chance:7.4f}  "
            f"{t.jaccard / t.chance:8.2f}"
        )
    return "\n".join(lines)


def warning(result: Agreement, warn_below: float) -> str | None:
    """The stderr warning when the rank correlation is too weak to trust the transfer."""
    rho = result.spearman.statistic
    if math.isnan(rho):
        return (
            "warning: agreement is undefined (a score is constant over the joined records): "
            "the small model's selection may not transfer to the larger model"
        )
    if rho < warn_below:
        return (
            f"warning: agreement is low (Spearman {rho:.2f} < {warn_below:.2f}): the small "
            "model's selection may not transfer to the larger model"
        )
    return None


def report(
    a: ScoreColumn, b: ScoreColumn, result: Agreement, source: str, warn_below: float
) -> dict[str, Any]:
    """Everything in ``transfer.json``; NaN (undefined) numbers are written as null."""
    return {
        "command": "transfer",
        "tamis_version": __version__,
        "inputs": {"a": a.describe(), "b": b.describe()},
        "joined": result.n,
        "direction": result.direction,
        "direction_source": source,
        "spearman": {
            "rho": _number(result.spearman.statistic),
            "pvalue": _number(result.spearman.pvalue),
        },
        "kendall": {
            "tau_b": _number(result.kendall.statistic),
            "pvalue": _number(result.kendall.pvalue),
        },
        "top": [
            {
                "percent": t.percent,
                "size": t.size,
                "shared": t.shared,
                "jaccard": t.jaccard,
                "chance": t.chance,
                "times_chance": t.jaccard / t.chance,
            }
            for t in result.top
        ],
        "warn_below": warn_below,
        "low_agreement": warning(result, warn_below) is not None,
    }


def log_axis(values: np.ndarray) -> bool:
    """True when ``values`` are all positive and span more than ``LOG_SPAN``."""
    return bool(len(values)) and values.min() > 0 and values.max() / values.min() > LOG_SPAN


def plot(f: IO[bytes], a: ScoreColumn, b: ScoreColumn, joined: Joined, result: Agreement) -> None:
    """Scatter plot of the joined scores as PNG into the binary file ``f``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly: no display, no pyplot global state
    ax = fig.add_subplot()
    size = 4.0 if result.n <= 5000 else 1.0
    alpha = 0.6 if result.n <= 5000 else 0.25
    ax.scatter(joined.a, joined.b, s=size, alpha=alpha, linewidths=0, rasterized=True)
    if log_axis(joined.a):
        ax.set_xscale("log")
    if log_axis(joined.b):
        ax.set_yscale("log")
    # the file's folder and name: enough to tell the inputs apart, short enough to fit
    ax.set_xlabel(f"A: {Path(*a.file.parts[-2:])} [{a.column}]")
    ax.set_ylabel(f"B: {Path(*b.file.parts[-2:])} [{b.column}]")
    rho = result.spearman.statistic
    shown = "undefined" if math.isnan(rho) else f"{rho:.3f}"
    ax.set_title(f"n = {result.n}, Spearman {shown}")
    ax.grid(True, alpha=0.3)
    fig.savefig(f, format="png", dpi=110)
