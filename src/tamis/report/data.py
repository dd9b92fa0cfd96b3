"""Read a tamis output folder back for ``report.html``: one :class:`Item` per input record with its
scores, what became of it (kept, dropped with its reason, corrected) and its text.

Outcomes come from the folder's own files (``scores.parquet``, ``rejected.jsonl``,
``corrections.jsonl``), so they are what the job wrote; prompts and responses are re-read from
the input file named in the manifest when it is still there and unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamis.base import files
from tamis.base.errors import TamisError
from tamis.data.outputs import OUTPUT_FORMATS, read_rejected, read_scores
from tamis.scorers import direction_of

FOLDER_HELP = "give the -o folder of tamis run, select, score, clear, train, eval or experiment"


@dataclass
class Item:
    """One input record as the report shows it. ``outcome``: kept, dropped, corrected (clear), or
    scored (a folder without a selection)."""

    index: int
    id: str | None
    status: str
    outcome: str
    reason: str
    scores: dict[str, Any]
    prompt: str = ""
    response: str = ""
    category: str | None = None
    junk: str = ""  # the junk score's strongest signal in words (junk_detail), when scored


@dataclass
class Curation:
    """A ``run``, ``score`` or ``clear`` folder, read back."""

    kind: str
    path: Path
    manifest: dict[str, Any]
    columns: list[str]
    items: list[Item]
    selection: dict[str, Any] | None
    texts_note: str = ""  # why prompts and responses are missing, if they are
    corrections: list[dict[str, Any]] = field(default_factory=list)


def folder_kind(path: Path) -> str:
    """``experiment``, ``eval``, ``train``, ``clear``, ``run`` (scored and selected) or
    ``score``; a clear error for anything else."""
    if not path.is_dir():
        raise TamisError(f"{path}: no such folder; {FOLDER_HELP}")
    if (path / "results.json").is_file():
        return "experiment"
    if (path / "eval.json").is_file():
        return "eval"
    if (path / "train_log.jsonl").is_file() and (path / "manifest.json").is_file():
        return "train"
    if not ((path / "manifest.json").is_file() and (path / "scores.parquet").is_file()):
        raise TamisError(
            f"{path}: not a tamis output folder (no manifest.json with scores.parquet, nor "
            f"results.json); {FOLDER_HELP}"
        )
    manifest = read_json(path / "manifest.json")
    if "clear" in manifest:
        return "clear"
    chosen = any((path / f"rejected.{ext}").is_file() for ext in OUTPUT_FORMATS)
    return "run" if "selection" in manifest and chosen else "score"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TamisError(
            f"{path}: cannot read it as JSON ({e}); re-run the job that wrote it"
        ) from None


def read_jsonl(path: Path) -> list[Any]:
    """A job's JSON Lines output; none when the job did not write it."""
    return files.read_jsonl(path, "re-run the job") if path.is_file() else []


def load_curation(path: Path, kind: str) -> Curation:
    """Read a ``run``, ``score`` or ``clear`` folder (see :func:`folder_kind`)."""
    manifest = read_json(path / "manifest.json")
    rows, columns = read_scores(path / "scores.parquet")
    rejected = read_rejected(path) if kind != "score" else None
    outcomes = _outcomes(rows, rejected, path)
    corrections = read_jsonl(path / "corrections.jsonl") if kind == "clear" else []
    applied = {c["id"] for c in corrections if c.get("applied")}
    texts, note = _texts(manifest)
    items = []
    for row, (outcome, reason) in zip(rows, outcomes, strict=True):
        if outcome == "kept" and row["id"] in applied:
            outcome = "corrected"
        prompt, response, category = texts.get(row["index"], ("", "", None))
        scores = {c: row[c] for c in columns}
        items.append(
            Item(row["index"], row["id"], row["status"], outcome, reason, scores, prompt,
                 response, category, row.get("junk_detail") or "")
        )  # fmt: skip
    return Curation(kind, path, manifest, columns, items, selection_of(manifest), note, corrections)


def _outcomes(rows: list[dict], rejected: list[dict] | None, path: Path) -> list[tuple[str, str]]:
    """``(outcome, reason)`` per scores row, matching ``rejected.jsonl`` to the rows.

    Both files are in input order, so each rejected line is the next row with its id. A row that
    was not scored (status not ``ok``) is always rejected, with its status as reason; an ``ok``
    row never takes a line whose reason is such a status, so a kept record is not confused with a
    later duplicate of it (same id, ``duplicate_id``)."""
    if rejected is None:
        return [("scored", "")] * len(rows)
    statuses = {r["status"] for r in rows} - {"ok"}
    out, k = [], 0
    for row in rows:
        item = rejected[k] if k < len(rejected) else None
        match = item is not None and item.get("id") == row["id"]
        if match and row["status"] != "ok":
            match = item.get("reason") == row["status"]
        elif match:
            match = item.get("reason") not in statuses
        out.append(("dropped", item["reason"]) if match else ("kept", ""))
        k += match
    if k != len(rejected):
        raise TamisError(
            f"{path}: rejected.jsonl does not match scores.parquet ({len(rejected) - k} lines "
            "left over); re-run the job that wrote the folder"
        )
    return out


def _texts(manifest: dict) -> tuple[dict[int, tuple[str, str, str | None]], str]:
    """``{input index: (prompt, response, category)}`` from the input file, and a note when it
    is gone or changed (the report then shows scores without text)."""
    from tamis.data.readers import read_again

    try:
        data = read_again(manifest.get("input", {}), skip_bad=True)
    except TamisError as e:
        return {}, f"the input could not be read again ({e}); its text is not shown"
    return _texts_of(data), ""


def _texts_of(data) -> dict[int, tuple[str, str, str | None]]:
    """``{input index: (prompt, response, category)}`` of a read dataset, bad records too."""
    texts: dict[int, tuple[str, str, str | None]] = {}
    for r in data.records:
        prompt = (
            r.prompt[0].content
            if len(r.prompt) == 1
            else "\n\n".join(f"[{m.role}] {m.content}" for m in r.prompt)
        )
        texts[r.index] = (prompt, r.response, _category(r.raw))
    for b in data.bad:
        raw = b.raw if isinstance(b.raw, str) else json.dumps(b.raw, ensure_ascii=False)
        texts[b.index] = ("", raw or "", _category(b.raw))
    return texts


def _category(raw: Any) -> str | None:
    value = raw.get("category") if isinstance(raw, dict) else None
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
        return str(value)
    return None


def selection_of(manifest: dict) -> dict[str, Any] | None:
    """The selection settings in one shape for run and clear folders: ``by``, ``direction``,
    ``keep``, ``min``, ``max``, ``filters``, ``drop_ifd_above``, ``per_cluster``."""
    if "clear" in manifest:
        cfg = manifest["clear"]["config"]
        return {"by": "confidence", "direction": "highest", "keep": cfg.get("keep"),
                "min": cfg.get("threshold"), "max": None, "filters": [],
                "drop_ifd_above": None, "per_cluster": False}  # fmt: skip
    sel = manifest.get("selection")
    if sel is None:
        return None
    by = sel.get("by", "ppl")
    direction = sel.get("direction") or (
        "lowest" if (direction_of(by) or "lower") == "lower" else "highest"
    )
    return {**sel, "by": by, "direction": direction, "filters": sel.get("filters") or []}


def cuts(cur: Curation) -> dict[str, list[tuple[float, str]]]:
    """Where the selection cut each score: ``{column: [(value, label)]}``. The ranking cut is the
    last kept value of ``by`` (drawn only when the budget dropped records, and not for
    per-cluster budgets, whose cut differs per cluster); thresholds and filters as given."""
    sel = cur.selection
    if sel is None:
        return {}
    by, out = sel["by"], {}
    lines = out.setdefault(by, [])
    ranked = any(i.reason in ("ranked_out", "low_confidence") for i in cur.items)
    # corrected records (clear) fell below the cut before their correction: not counted
    kept = [i.scores.get(by) for i in cur.items if i.outcome == "kept"]
    kept = [v for v in kept if v is not None and v == v]
    if ranked and kept and not sel.get("per_cluster"):
        worst = max(kept) if sel["direction"] == "lowest" else min(kept)
        lines.append((worst, f"cut: keep the {sel['direction']} {len(kept)} ({worst:.4g})"))
    for key in ("min", "max"):
        if sel.get(key) is not None:
            lines.append((float(sel[key]), f"{key} {sel[key]:g}"))
    for f in sel["filters"]:
        out.setdefault(f["column"], []).append((float(f["value"]), f"filter {_filter_text(f)}"))
    if sel.get("drop_ifd_above") is not None:
        limit = float(sel["drop_ifd_above"])
        out.setdefault("ifd", []).append((limit, f"drop ifd above {limit:g}"))
    return {c: v for c, v in out.items() if v}


def _filter_text(f: dict) -> str:
    return f"{f['column']}{f['op']}{float(f['value']):g}"


@dataclass
class Experiment:
    """A ``tamis experiment`` folder: ``results.json`` and each run's training-loss curve."""

    path: Path
    results: dict[str, Any]
    curves: dict[str, list[list[tuple[int, float]]]]


def load_experiment(path: Path) -> Experiment:
    """Read ``results.json`` and ``arms/ARM/seedS/train/train_log.jsonl`` of every run."""
    results = read_json(path / "results.json")
    if not isinstance(results, dict) or "arms" not in results:
        raise TamisError(f"{path / 'results.json'}: no 'arms' in it; re-run tamis experiment")
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for run in results.get("runs", []):
        trained = str(run.get("same_as") or run["arm"])  # an arm that chose another's records
        log = path / "arms" / trained / f"seed{run['seed']}" / "train" / "train_log.jsonl"
        steps = [(r["step"], r["loss"]) for r in read_jsonl(log) if r.get("loss") is not None]
        curves.setdefault(str(run["arm"]), []).append(steps)
    return Experiment(path, results, curves)
