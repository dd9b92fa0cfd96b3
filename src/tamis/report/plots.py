"""The plots of ``report.html``, drawn by matplotlib as inline SVG.

Text is drawn as paths (``svg.fonttype: path``), so no string from the data becomes SVG text or
markup; matplotlib escapes the comments it writes beside them. Element ids come from ``gid``
(made safe by :func:`~tamis.report.html.html_id`): ``cut-COLUMN-N`` marks a selection cut, which
the browser test looks for.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from tamis.report.html import html_id
from tamis.transfer.report import log_axis

COLOURS = {"kept": "#2da44e", "dropped": "#cf222e", "corrected": "#8250df", "scored": "#57606a"}
# Beyond this many points a scatter's markers are drawn as one embedded image, not one SVG
# element each, so a 50,000-record report stays a few megabytes.
RASTER_POINTS = 3000
SVG_RC = {"svg.fonttype": "path", "svg.hashsalt": "tamis-report", "font.size": 9}


def _figure(width: float = 6.0, height: float = 3.3):
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasSVG(fig)  # explicit canvas: no pyplot global state, no display
    # Fixed margins in inches, not constrained layout: it measures every label and takes about
    # twice as long, and a report is drawn at the end of every run.
    fig.subplots_adjust(
        left=0.62 / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.12 / height
    )
    return fig


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE


def _label(text: str) -> str:
    # "$" would start matplotlib's maths parser; a column name is plain text.
    return text.replace("$", r"\$")


def _finite(values: Sequence[float | None]) -> np.ndarray:
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    return array[np.isfinite(array)]


def histogram(
    column: str,
    groups: Mapping[str, Sequence[float | None]],
    cuts: Sequence[tuple[float, str]] = (),
    label: str | None = None,
    categorical: bool = False,
) -> str | None:
    """Stacked histogram of ``column`` per outcome (kept, dropped, ...), each selection cut
    ``(value, label)`` a dashed vertical line; None when the column has no finite value.
    ``label`` names the axis (default: the column); ``categorical`` values (cluster ids) get one
    bar each, at their integer ticks."""
    import matplotlib

    data = {name: _finite(v) for name, v in groups.items()}
    data = {name: v for name, v in data.items() if len(v)}
    if not data:
        return None
    every = np.concatenate(list(data.values()))
    log = not categorical and log_axis(every)
    lo, hi = float(every.min()), float(every.max())
    if categorical:
        bins = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.0)
    else:
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.geomspace(lo, hi, 41) if log else np.linspace(lo, hi, 41)
    with matplotlib.rc_context(SVG_RC):
        fig = _figure()
        ax = fig.add_subplot()
        ax.hist(
            list(data.values()), bins=bins, stacked=True, label=[_label(n) for n in data],
            color=[COLOURS.get(n, "#888888") for n in data], alpha=0.85,
        )  # fmt: skip
        for k, (value, text) in enumerate(cuts):
            if log and value <= 0:
                continue
            ax.axvline(
                value, color="#111111", linestyle="--", linewidth=1.3, label=_label(text),
                gid=html_id("cut", column, str(k)),
            )  # fmt: skip
        if log:
            ax.set_xscale("log")
        if categorical:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        name = _label(label or column)
        ax.set(xlabel=name + (" (log scale)" if log else ""), ylabel="records")
        ax.legend(fontsize=8)
        return _svg(fig)


def scatter(
    x: str, y: str, groups: Mapping[str, tuple[Sequence[float | None], Sequence[float | None]]]
) -> str | None:
    """``y`` against ``x``, one colour per outcome; None when no record has both values."""
    import matplotlib

    points = {}
    for name, (xs, ys) in groups.items():
        pairs = np.array([(a, b) for a, b in zip(xs, ys, strict=True) if _ok(a) and _ok(b)])
        if len(pairs):
            points[name] = pairs
    if not points:
        return None
    every = np.concatenate(list(points.values()))
    raster = len(every) > RASTER_POINTS
    with matplotlib.rc_context(SVG_RC):
        fig = _figure(6.0, 4.2)
        ax = fig.add_subplot()
        for name, p in points.items():
            ax.scatter(
                p[:, 0], p[:, 1], s=9 if not raster else 2, alpha=0.65, linewidths=0,
                color=COLOURS.get(name, "#888888"), label=_label(f"{name} ({len(p)})"),
                rasterized=raster, gid=html_id("points", name),
            )  # fmt: skip
        if log_axis(every[:, 0]):
            ax.set_xscale("log")
        if log_axis(every[:, 1]):
            ax.set_yscale("log")
        ax.set(xlabel=_label(x), ylabel=_label(y))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        return _svg(fig)


def _ok(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))


def loss_curves(
    curves: Mapping[str, Sequence[Sequence[tuple[int, float]]]], ylabel: str = "training loss"
) -> str | None:
    """Loss against optimizer step, one colour per arm (or series), one line per seed."""
    import matplotlib

    if not any(c for runs in curves.values() for c in runs):
        return None
    with matplotlib.rc_context(SVG_RC):
        fig = _figure(7.0, 4.0)
        ax = fig.add_subplot()
        for k, (arm, runs) in enumerate(curves.items()):
            for j, curve in enumerate(c for c in runs if c):
                steps, losses = zip(*curve, strict=True)
                ax.plot(
                    steps, losses, color=f"C{k}", alpha=0.75, label=_label(arm) if j == 0 else None,
                    gid=html_id("curve", arm, str(j)),
                )  # fmt: skip
        ax.set(xlabel="optimizer step", ylabel=ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        return _svg(fig)
