"""``tamis report DIR``: one self-contained HTML page (``DIR/report.html``) about a curation.

For a ``run`` (or ``score``, ``select``) and a ``clear`` folder: a summary (input, model,
configuration, records in, kept, dropped per reason, time taken), a histogram of every score with
the selection cut marked and kept and dropped records shaded apart, a scatter plot of the
selection score against each other score, sortable and searchable tables of the top and bottom
records by every score with their prompt, response and drop reason, every dropped record
(:mod:`tamis.report.drops`), a breakdown by the records' ``category`` field when they have one,
and for ``clear`` every correction tried, original beside replacement. For a ``train`` or
``eval`` folder, see :mod:`tamis.report.training`. For an ``experiment`` folder: the settings,
the results table, every run and the training-loss curves per arm.

The page needs no network: plots are inline SVG (matplotlib), the script is inline and allowed
by its hash in the page's Content-Security-Policy, and every string from the data is escaped
(:mod:`tamis.report.html`). ``tamis run``, ``select``, ``clear``, ``train``, ``eval`` and
``experiment`` write it last, through :func:`write_report_after_job`, so a failing report never
costs their outputs.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import atomic_open
from tamis.base.maths import finite
from tamis.data.remote import is_url, shown, url_name
from tamis.report.data import (
    Curation,
    cuts,
    folder_kind,
    load_curation,
    load_experiment,
)
from tamis.report.drops import dropped_section, junk_section, unscored_section
from tamis.report.html import Column, Table, chooser, esc, figure, html_id, key_values, page
from tamis.report.html import render_table as table_html
from tamis.scorers import direction_of
from tamis.select.methods import DEFAULT_BY, RECIPE

REPORT_NAME = "report.html"
EXAMPLES = 10  # records at each end of every score's table
SCATTER_PAIRS = 6  # most scatter plots offered in the chooser


def write_report(
    folder: str | Path,
    out: str | Path | None = None,
    scatter: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the report of a tamis output folder to ``out`` (default ``folder/report.html``),
    atomically; returns its path. ``scatter``: ``(x, y)`` score pairs to plot (default: the
    selection score against each other score). Raises :class:`TamisError` for a folder tamis
    did not write or a score it does not hold."""
    folder = Path(folder)
    kind = folder_kind(folder)
    if kind in ("experiment", "train", "eval") and scatter:
        raise TamisError(f"{folder}: --scatter is for run, score and clear folders")
    if kind == "experiment":
        from tamis.report.experiment import experiment_page

        title, body = experiment_page(load_experiment(folder))
    elif kind in ("train", "eval"):
        from tamis.report.training import eval_page, train_page

        title, body = (train_page if kind == "train" else eval_page)(folder)
    else:
        title, body = curation_page(load_curation(folder, kind), scatter)
    path = Path(out) if out is not None else folder / REPORT_NAME
    with atomic_open(path) as f:
        f.write(page(title, body))
    return path


def write_report_after_job(folder: str | Path, quiet: bool = False) -> Path | None:
    """The jobs' last step: write the report, and on any failure warn and carry on, since the
    job's own outputs are already complete and ``tamis report DIR`` can retry."""
    try:
        path = write_report(folder)
    except Exception as e:  # noqa: BLE001 - a report must never fail the job that wrote the data
        print(
            f"tamis: warning: {folder}: report.html not written ({type(e).__name__}: {e}); "
            f"the other outputs are complete; retry with 'tamis report {folder}'",
            file=sys.stderr,
        )
        return None
    if not quiet:
        print(f"report -> {path}", file=sys.stderr)
    return path


# --- run, score and clear folders --------------------------------------------------------------


def curation_page(cur: Curation, scatter: Sequence[tuple[str, str]] = ()) -> tuple[str, str]:
    """The page title and body of a run, score or clear folder."""
    for pair in scatter:
        for col in pair:
            if col not in cur.columns:
                raise TamisError(
                    f"--scatter {','.join(pair)}: no score '{col}' in {cur.path}; choose from: "
                    f"{', '.join(cur.columns)}"
                )
    path = cur.manifest.get("input", {}).get("path", "")
    # A URL's object name, its ?query left out; a local file's name.
    name = url_name(path) if is_url(path) else Path(path).name
    title = f"tamis {cur.kind}: {name}"
    parts = [summary_section(cur), histograms_section(cur), scatter_section(cur, scatter)]
    parts += [junk_section(cur), examples_section(cur), dropped_section(cur), unscored_section(cur)]
    parts.append(categories_section(cur))
    parts.append(corrections_section(cur))
    return title, "\n".join(p for p in parts if p)


def summary_section(cur: Curation) -> str:
    """Input, model, configuration, counts per outcome and reason, time taken."""
    m = cur.manifest
    inp = m.get("input", {})
    models = m.get("models") or [m.get("model", {})]
    facts: list[tuple[str, Any]] = [
        ("folder", str(cur.path)),
        ("job", cur.kind),
        ("input", shown(inp["path"]) if is_url(inp.get("path")) else inp.get("path")),
        ("format", inp.get("format")),
        ("model", " + ".join(str(x.get("name")) for x in models)),
        ("template", _templates(m, models)),
        ("scores", ", ".join(cur.columns)),
    ]
    sel = cur.selection or {}
    keys = ("by", "direction", "keep", "min", "max", "drop_ifd_above", "drop_junk_above")
    for key in (*keys, "per_cluster"):
        if sel.get(key) not in (None, False):
            facts.append((f"selection: {key}", sel[key]))
    if sel.get("filters"):
        facts.append(("selection: filters", ", ".join(_filter(f) for f in sel["filters"])))
    if _default_recipe(sel):
        facts.append(("recipe", RECIPE))
    if cur.kind == "clear":
        facts += [(f"clear: {k}", v) for k, v in m["clear"]["config"].get("clear", {}).items()]
    counts = Counter(i.outcome for i in cur.items)
    facts.append(("records in", len(cur.items)))
    facts += [(outcome, counts[outcome]) for outcome in ("kept", "corrected", "dropped", "scored")
              if counts[outcome]]  # fmt: skip
    facts += _timings(m) + [("tamis", m.get("tamis_version", "?"))]
    reasons = Counter(i.reason for i in cur.items if i.outcome == "dropped")
    drops = Table(
        "dropped-by-reason",
        [Column("reason"), Column("records", "number")],
        [(r, n) for r, n in sorted(reasons.items())],
        search=False,
    )
    note = f'<p class="note">Note: {esc(cur.texts_note)}.</p>' if cur.texts_note else ""
    body = key_values(facts) + note
    if reasons:
        body += "<h3>Dropped, per reason</h3>" + table_html(drops)
    return f'<section id="summary"><h2>Summary</h2>{body}</section>'


def _templates(m: dict, models: list[dict]) -> str | None:
    """Each model's template (an ensemble's models may differ), and the system prompt a chat
    template added by itself."""
    if not any("template" in x for x in models):  # a manifest from before models had theirs
        return (m.get("score") or m.get("clear") or {}).get("config", {}).get("template")
    parts = []
    for x in models:
        words = str(x.get("template"))
        if len(models) > 1:
            words = f"{x.get('name')}: {words}"
        if x.get("system_prompt"):
            words += f" (with the system prompt its chat template adds: {x['system_prompt']!r})"
        parts.append(words)
    return "; ".join(parts)


def _default_recipe(sel: dict) -> bool:
    """Whether a selection is the default recipe (junk filter, then a random sample)."""
    return (
        sel.get("by") == DEFAULT_BY
        and sel.get("method", "top") == "top"
        and sel.get("drop_junk_above") is not None
        and not sel.get("per_cluster")
        and not sel.get("filters")
    )


def _filter(f: dict) -> str:
    return f"{f['column']}{f['op']}{float(f['value']):g}"


def _timings(m: dict) -> list[tuple[str, Any]]:
    out = []
    if "score" in m:
        out.append(("time: scoring (s)", m["score"].get("job_wall_s", m["score"].get("wall_s"))))
    if "selection" in m:
        out.append(("time: selection (s)", m["selection"].get("wall_s")))
    if "clear" in m:
        out.append(("time: clear (s)", m["clear"].get("wall_s")))
    return [(k, round(v, 2) if isinstance(v, float) else v) for k, v in out]


def _groups(cur: Curation, column: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for outcome in ("kept", "corrected", "dropped", "scored"):
        values = [i.scores.get(column) for i in cur.items if i.outcome == outcome]
        if values:
            groups[outcome] = values
    return groups


def histograms_section(cur: Curation) -> str:
    """One histogram per score column, the selection's cut lines drawn on theirs."""
    from tamis.report.plots import histogram

    lines = cuts(cur)
    figures = []
    for col in cur.columns:
        label = column_label(cur, col)
        categorical = col in CATEGORICAL
        svg = histogram(col, _groups(cur, col), lines.get(col, ()), label, categorical)
        if svg is not None:
            cut = "; ".join(text for _, text in lines.get(col, ()))
            caption = label + (f" ({cut})" if cut else "") + (" (ids)" if categorical else "")
            figures.append(figure(svg, caption, html_id("hist", col)))
    if not figures:
        return ""
    note = (
        "No selection in this folder: every record is shown as scored."
        if cur.selection is None
        else "Kept, corrected and dropped records stacked; dashed lines: where the selection cut."
    )
    return (
        f'<section id="histograms"><h2>Scores</h2><p class="note">{note}</p>'
        f'<div class="plots">{"".join(figures)}</div></section>'
    )


CATEGORICAL = ("cluster",)  # ids, not quantities: one bar per value
COMBINED = {
    "rank-mean": "mean percentile rank over {n} models",
    "zscore-mean": "mean z-score over {n} models",
    "min": "smallest of {n} models",
    "max": "largest of {n} models",
}


def column_label(cur: Curation, col: str) -> str:
    """``col``, and for an ensemble's combined column what its values are (``ppl (mean percentile
    rank over 2 models)``): a rank is not a perplexity."""
    config = (cur.manifest.get("score") or {}).get("config", {})
    models = config.get("ensemble") or ()
    if len(models) < 2 or not any(c.startswith(f"{col}__") for c in cur.columns):
        return col
    combined = COMBINED.get(config.get("combine", "rank-mean"), "combined over {n} models")
    return f"{col} ({combined.format(n=len(models))})"


def scatter_section(cur: Curation, pairs: Sequence[tuple[str, str]] = ()) -> str:
    """Scatter plots of score pairs ``(x, y)``, one shown at a time; by default the selection
    score (y) against each other score, ``ifd`` first."""
    from tamis.report.plots import scatter

    if not pairs:
        by = (cur.selection or {}).get("by") or (cur.columns[0] if cur.columns else None)
        others = sorted((c for c in cur.columns if c != by), key=lambda c: c != "ifd")
        pairs = [(c, by) for c in others[:SCATTER_PAIRS]] if by in cur.columns else []
    figures = []
    for x, y in pairs:
        groups = {
            outcome: ([i.scores.get(x) for i in cur.items if i.outcome == outcome],
                      [i.scores.get(y) for i in cur.items if i.outcome == outcome])
            for outcome in _groups(cur, y)
        }  # fmt: skip
        svg = scatter(x, y, groups)
        if svg is not None:
            figures.append((html_id("scatter", x, y), f"{y} against {x}", svg, f"{y} against {x}"))
    if not figures:
        return ""
    return (
        '<section id="scatter"><h2>Scatter</h2>'
        f"{chooser('scatter-plots', 'plot:', figures)}</section>"
    )


def examples_section(cur: Curation) -> str:
    """For every score, a table of the records at its better and its worse end."""
    by = (cur.selection or {}).get("by")
    order = sorted(cur.columns, key=lambda c: c != by)
    blocks = []
    for col in order:
        table = _examples_table(cur, col, by)
        if table is None:
            continue
        opened = " open" if col == order[0] else ""
        blocks.append(
            f"<details{opened}><summary>{esc(col)}: top and bottom {EXAMPLES}</summary>"
            f"{table_html(table)}</details>"
        )
    if not blocks:
        return ""
    return (
        '<section id="examples"><h2>Examples</h2><p class="note">Click a column title to sort; '
        f"type in a search box to filter.</p>{''.join(blocks)}</section>"
    )


def _examples_table(cur: Curation, col: str, by: str | None) -> Table | None:
    scored = [i for i in cur.items if finite(i.scores.get(col))]
    if not scored:
        return None
    better_low = (direction_of(col) or "higher") == "lower"
    ranked = sorted(scored, key=lambda i: (i.scores[col], str(i.id)), reverse=not better_low)
    top = ranked[:EXAMPLES]
    bottom = ranked[max(EXAMPLES, len(ranked) - EXAMPLES) :][::-1]
    extra = [by] if by and by != col and by in cur.columns else []
    columns = [Column("end"), Column("rank", "number"), Column("id"), Column(col, "number")]
    columns += [Column(c, "number") for c in extra]
    columns += [Column("outcome", "outcome"), Column("reason"), Column("prompt", "long")]
    columns += [Column("response", "long")]
    rows = []
    for end, items in (("best", top), ("worst", bottom)):
        for rank, i in enumerate(items, 1):
            values = [i.scores.get(c) for c in extra]
            rows.append([end, rank, i.id, i.scores[col], *values, i.outcome, i.reason,
                         i.prompt, i.response])  # fmt: skip
    return Table(html_id("examples", col), columns, rows)


def categories_section(cur: Curation) -> str:
    """Records, kept and dropped per value of the records' ``category`` field, when they have
    one."""
    if not any(i.category for i in cur.items):
        return ""
    by = (cur.selection or {}).get("by")
    groups: dict[str, list] = {}
    for i in cur.items:
        groups.setdefault(i.category or "(none)", []).append(i)
    columns = [Column("category"), Column("records", "number"), Column("kept", "number")]
    columns += [Column("dropped", "number"), Column("kept share", "number")]
    if by:
        columns.append(Column(f"median {by}", "number"))
    rows = []
    for name, items in sorted(groups.items()):
        kept = sum(i.outcome in ("kept", "corrected") for i in items)
        dropped = sum(i.outcome == "dropped" for i in items)
        row = [name, len(items), kept, dropped, kept / len(items)]
        if by:
            values = [i.scores.get(by) for i in items if finite(i.scores.get(by))]
            row.append(statistics.median(values) if values else None)
        rows.append(row)
    table = Table("categories-table", columns, rows)
    return f'<section id="categories"><h2>By category</h2>{table_html(table)}</section>'


def corrections_section(cur: Curation) -> str:
    """``clear``: every correction tried, the original response beside the replacement."""
    if cur.kind != "clear":
        return ""
    prompts = {i.id: i.prompt for i in cur.items}
    # original and replacement first, side by side, so both show without scrolling sideways
    columns = [Column("id"), Column("applied"), Column("original", "long")]
    columns += [Column("replacement", "long"), Column("reason")]
    columns += [Column(c, "number") for c in ("confidence", "candidate_confidence", "preference")]
    columns += [Column("prompt", "long")]
    rows = [
        [c.get("id"), "yes" if c.get("applied") else "no", c.get("original"),
         c.get("replacement"), c.get("reason"), c.get("confidence"),
         c.get("candidate_confidence"), c.get("preference"), prompts.get(c.get("id"), "")]
        for c in sorted(cur.corrections, key=lambda c: (not c.get("applied"),
                                                        -(c.get("preference") or 0)))
    ]  # fmt: skip
    counts = cur.manifest.get("counts", {})
    caption = (
        f"{counts.get('corrected', 0)} of {len(rows)} corrections tried were applied "
        f"({', '.join(f'{k} {v}' for k, v in counts.get('corrections_by_reason', {}).items())})"
    )
    table = Table("corrections-table", columns, rows, caption=caption)
    return f'<section id="corrections"><h2>Corrections</h2>{table_html(table)}</section>'


# --- command line ------------------------------------------------------------------------------
