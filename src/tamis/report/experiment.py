"""The experiment part of ``report.html``: the settings, the results table, every run, the
training-loss curves per arm and the pool's scores with each top arm's cut."""

from __future__ import annotations

import json
from typing import Any

from tamis.base.maths import finite
from tamis.base.version import __version__
from tamis.report.data import Experiment
from tamis.report.html import Column, Table, figure, html_id, key_values
from tamis.report.html import render_table as table_html

METRICS = ("loss", "perplexity", "rouge_l", "exact_match", "train_tokens", "train_wall_s")


def experiment_page(exp: Experiment) -> tuple[str, str]:
    """The page title and body of a ``tamis experiment`` folder."""
    from tamis.report.plots import loss_curves

    res = exp.results
    cfg = res.get("config", {})
    facts = [("folder", str(exp.path))] + [(k, _plain(v)) for k, v in cfg.items()]
    facts += [("time (s)", round(res.get("wall_s", 0.0), 1)), ("tamis", __version__)]
    parts = [f'<section id="summary"><h2>Settings</h2>{key_values(facts)}</section>']
    parts.append(
        f'<section id="results"><h2>Results</h2>{table_html(_results_table(res))}'
        f"<h3>Every run</h3>{table_html(_runs_table(res))}</section>"
    )
    svg = loss_curves(exp.curves)
    if svg is not None:
        parts.append(
            '<section id="curves"><h2>Training loss</h2>'
            f"{figure(svg, 'training loss per optimizer step, one colour per arm', 'curves')}"
            "</section>"
        )
    parts.append(_pool_section(exp))
    return f"tamis experiment: {exp.path.name}", "\n".join(p for p in parts if p)


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, type(None))):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _results_table(res: dict) -> Table:
    arms = res["arms"]
    metrics = [m for m in (*METRICS, "noisy_records") if any(m in a for a in arms.values())]
    columns = [Column("arm"), Column("seeds", "number"), Column("records", "number")]
    for m in metrics:
        columns += [Column(f"{m} mean", "number"), Column(f"{m} sd", "number")]
    rows = []
    for arm, s in arms.items():
        row = [arm, s.get("seeds"), s.get("records")]
        for m in metrics:
            row += [s[m]["mean"], s[m]["std"]] if m in s else [None, None]
        rows.append(row)
    return Table("results-table", columns, rows, caption="mean and standard deviation over seeds")


def _runs_table(res: dict) -> Table:
    keys = ("records", *METRICS, "noisy_records")
    columns = [Column("arm"), Column("seed", "number")] + [Column(k, "number") for k in keys]
    rows = [[r.get("arm"), r.get("seed"), *(r.get(k) for k in keys)] for r in res.get("runs", [])]
    return Table("runs-table", columns, rows)


def _pool_section(exp: Experiment) -> str:
    """Histograms of the pool's scores (``scores/``), each with its top arm's budget cut."""
    from tamis.data.outputs import read_scores
    from tamis.report.plots import histogram
    from tamis.select.selection import Selection, select

    cfg = exp.results.get("config", {})
    path = exp.path / "scores" / "scores.parquet"
    if not path.is_file():
        return ""
    rows, columns = read_scores(path)
    n = len(rows)
    budget = cfg.get("budget", 0)
    budget = budget if isinstance(budget, int) else int(budget * n)
    figures = []
    for col in [c for c in cfg.get("scorers", []) if c in columns]:
        sel = Selection(by=col, keep=budget)
        kept = {d.index for d in select(rows, sel) if d.kept}
        groups = {
            "kept": [r[col] for r in rows if r["index"] in kept],
            "dropped": [r[col] for r in rows if r["index"] not in kept],
        }
        values = [v for v in groups["kept"] if finite(v)]
        if not values:
            continue
        worst = max(values) if sel.resolved_direction() == "lowest" else min(values)
        cut = f"cut: top {len(values)} ({worst:.4g})"
        svg = histogram(col, groups, [(worst, cut)])
        if svg is not None:
            caption = f"{col} of the scored pool ({cut}); kept: the top-{col} arm's records"
            figures.append(figure(svg, caption, html_id("hist", col)))
    if not figures:
        return ""
    return (
        '<section id="histograms"><h2>Pool scores</h2>'
        f'<div class="plots">{"".join(figures)}</div></section>'
    )
