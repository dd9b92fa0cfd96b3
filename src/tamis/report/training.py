"""The ``report.html`` of a ``tamis train`` folder (settings, the training and held-out loss
curves, every step, the records not trained on) and of a ``tamis eval`` folder (settings,
metrics, every record with its answer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tamis.base.version import __version__
from tamis.report.data import read_json, read_jsonl
from tamis.report.html import Column, Table, figure, key_values
from tamis.report.html import render_table as table_html

ROWS = 20_000  # most rows of a table: the JSON Lines files hold every one


def train_page(path: Path) -> tuple[str, str]:
    """The page title and body of a ``tamis train`` folder."""
    from tamis.report.plots import loss_curves

    m = read_json(path / "manifest.json")
    t = m.get("train", {})
    held = t.get("held_out") or {}
    cfg = t.get("config", {})
    facts: list[tuple[str, Any]] = [
        ("model", m.get("model", {}).get("name")),
        ("method", cfg.get("train", {}).get("method")),
        ("input", m.get("input", {}).get("path")),
        ("records trained", t.get("records_trained")),
        ("records skipped", json.dumps(t.get("skipped_by_reason", {}))),
        ("optimizer steps", t.get("steps")),
        ("tokens trained", t.get("tokens")),
        (f"loss, first {t.get('loss_window')} step(s) (mean)", t.get("first_loss")),
        (f"loss, last {t.get('loss_window')} step(s) (mean)", t.get("final_loss")),
    ]
    if held:
        best = held.get("best") or {}
        facts += [
            ("held-out input", held.get("input", {}).get("path")),
            ("held-out records", held.get("records")),
            ("held-out loss before training", held.get("first_loss")),
            ("held-out loss at the end", held.get("final_loss")),
            (f"best held-out loss (step {best.get('step')})", best.get("loss")),
        ]
    facts += [
        ("saved as", t.get("saved_as", "float32")),
        ("model folder", _model_folder(m.get("output"), path / "model")),
        ("time (s)", round(t.get("wall_s") or 0.0, 1)),
        ("settings", json.dumps(cfg, ensure_ascii=False, default=str)),
        ("tamis", m.get("tamis_version", __version__)),
    ]
    parts = [f'<section id="summary"><h2>Training</h2>{key_values(facts)}</section>']
    log = read_jsonl(path / "train_log.jsonl")
    evals = read_jsonl(path / "eval_log.jsonl")
    curves = {"training (each step's batch)": [[(r["step"], r["loss"]) for r in log]]}
    if evals:
        curves["held-out"] = [[(r["step"], r["loss"]) for r in evals]]
    svg = loss_curves(curves, ylabel="loss per response token (nats)")
    if svg is not None:
        caption = "loss against optimizer step" + (": training and held-out" if evals else "")
        parts.append(
            f'<section id="curves"><h2>Loss</h2>{figure(svg, caption, "curves")}</section>'
        )
    if evals:
        cols = [Column("step", "number"), Column("epoch", "number"), Column("loss", "number")]
        rows = [[r.get("step"), r.get("epoch"), r.get("loss")] for r in evals]
        table = Table("held-out-table", cols, rows, caption="held-out loss (eval_log.jsonl)")
        parts.append(f'<section id="held-out"><h2>Held-out loss</h2>{table_html(table)}</section>')
    keys = ("step", "epoch", "loss", "learning_rate", "grad_norm", "tokens", "tokens_per_s")
    table = Table(
        "steps-table",
        [Column(k.replace("_", " "), "number") for k in keys],
        [[r.get(k) for k in keys] for r in log[:ROWS]],
        caption=_shown(len(log), "steps", "train_log.jsonl"),
    )
    parts.append(f'<section id="steps"><h2>Every step</h2>{table_html(table)}</section>')
    skipped = read_jsonl(path / "skipped.jsonl")
    if skipped:
        cols = [Column("input index", "number"), Column("id"), Column("status"), Column("detail")]
        rows = [[r.get("index"), r.get("id"), r.get("status"), r.get("detail")] for r in skipped]
        table = Table("skipped-table", cols, rows[:ROWS], caption="records not trained on")
        parts.append(f'<section id="skipped"><h2>Not trained on</h2>{table_html(table)}</section>')
    name = m.get("model", {}).get("name", "")
    data = Path(str(m.get("input", {}).get("path", ""))).name
    return f"tamis train: {name} on {data}", "\n".join(parts)


def eval_page(path: Path) -> tuple[str, str]:
    """The page title and body of a ``tamis eval`` folder."""
    r = read_json(path / "eval.json")
    names = ("loss", "perplexity", "record_ce_mean", "records", "response_tokens", "rouge_l")
    names += ("exact_match", "exact_match_records", "junk_flagged", "preference")
    names += ("preferred_share",)
    metrics = [(k.replace("_", " "), r[k]) for k in names if k in r]
    facts = [
        ("model", r.get("model", {}).get("name")),
        ("template", r.get("model", {}).get("template")),
        ("input", r.get("input", {}).get("path")),
        *metrics,
        ("not scored", json.dumps(r.get("not_scored", {}))),
        ("settings", json.dumps(r.get("settings", {}), ensure_ascii=False, default=str)),
        ("time (s)", round(r.get("wall_s") or 0.0, 1)),
        ("tamis", r.get("tamis_version", __version__)),
    ]
    parts = [f'<section id="summary"><h2>Evaluation</h2>{key_values(facts)}</section>']
    records = read_jsonl(path / "eval_records.jsonl")
    if records:
        names = ("ce", "rouge_l", "exact_match", "junk_flag", "preference")
        keys = [k for k in names if any(k in row for row in records)]
        cols = [Column("id"), *(Column(k.replace("_", " "), "number") for k in keys)]
        texts = [k for k in ("answer", "reference") if any(k in row for row in records)]
        cols += [Column(k, "long") for k in texts]
        rows = [
            [row.get("id"), *(row.get(k) for k in keys), *(row.get(k) for k in texts)]
            for row in records[:ROWS]
        ]
        caption = _shown(len(records), "records", "eval_records.jsonl")
        table = Table("records-table", cols, rows, caption=caption)
        parts.append(f'<section id="records"><h2>Every record</h2>{table_html(table)}</section>')
    name = r.get("model", {}).get("name", "")
    return f"tamis eval: {name}", "\n".join(parts)


def _shown(n: int, what: str, source: str) -> str:
    if n > ROWS:
        return f"the first {ROWS:,} of {n:,} {what}; {source} holds every one"
    return f"all {n:,} {what} ({source})"


def _model_folder(output: Any, folder: Path) -> Any:
    """The trained model's folder, or that it is gone (``tamis experiment`` deletes an evaluated
    run's model unless ``keep_models: true``)."""
    if isinstance(output, str) and output and not folder.exists():
        return f"{output} (deleted since; an experiment keeps it only with keep_models: true)"
    return output
