"""The notebook API: score and curate data you already hold, and get your own table back.

:func:`score` returns the data with score columns added; :func:`curate` also selects and
returns the kept rows and the dropped ones with their reasons. Both take a list of dicts, a
``pandas.DataFrame``, a ``datasets.Dataset``, a ``pyarrow.Table`` or a path or URL (read as
``tamis score`` reads it), and give back the same kind of object (a list of dicts for a path).
They run exactly what ``tamis run`` runs (:func:`tamis.engines.jobs.score_records` and
:func:`tamis.select.selection.select`), so the scores and decisions are the same as the
command's on the same records and options::

    import tamis

    scored = tamis.score(df)                   # df with ppl, ifd, junk, ... columns
    kept = tamis.curate(df, keep=0.5).selected # the junk filter, then a random half

Added columns: every score column of ``scores.parquet``, ``junk_signal`` and ``junk_detail``
with the junk score, ``dup_exact_of`` and ``dup_near_of`` (the id a duplicate repeats) with the
duplicate scores, and ``tamis_status`` (``ok``, or why a record was not scored: a bad record
with ``skip_bad=True``, ``too_long``...). The score cache is a temporary file unless ``cache``
names one (reuse it to score again without recomputing).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from tamis.base.errors import TamisError
from tamis.data.memory import kind, rows_of
from tamis.data.readers import Dataset, read_dataset
from tamis.engines.jobs import ScoreConfig, check_score_config, record_vectors, score_records
from tamis.model.loading import DEFAULT_MODEL
from tamis.scorers import DEFAULT_SCORERS
from tamis.select.methods import DEFAULT_BY
from tamis.select.options import parse_keep
from tamis.select.selection import Decision, Selection, select

META = ("junk_signal", "junk_detail", "dup_exact_of", "dup_near_of")
STATUS = "tamis_status"


@dataclass
class Curation:
    """What :func:`curate` returns: the kept rows, the dropped rows (with ``reason`` and
    ``detail`` columns), every row with its scores, and the decisions in input order."""

    selected: Any
    rejected: Any
    scores: Any
    decisions: list[Decision]


def score(
    data: Any,
    scorers: str | list[str] | tuple[str, ...] = DEFAULT_SCORERS,
    model: str = DEFAULT_MODEL,
    *,
    cache: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> Any:
    """``data`` with score columns added (see the module's doc). ``options`` are the fields of
    :class:`~tamis.engines.jobs.ScoreConfig` (``template``, ``max_tokens``, ``batch_size``,
    ``device``, ``precision``, ``skip_bad``, ``format``, ``ensemble``...)."""
    return _scored(data, scorers, model, cache, progress, options).table


def curate(
    data: Any,
    keep: int | float | str | None = None,
    by: str = DEFAULT_BY,
    *,
    selection: Selection | None = None,
    scorers: str | list[str] | tuple[str, ...] = DEFAULT_SCORERS,
    model: str = DEFAULT_MODEL,
    cache: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> Curation:
    """Score ``data``, then select as ``tamis run`` does: the junk filter, then ``keep`` records
    (a count, a fraction, or text such as ``"20%"``) by ``by`` (by default a seeded random
    sample: :data:`~tamis.select.methods.RECIPE`). ``selection`` (a
    :class:`~tamis.select.selection.Selection`) replaces ``keep`` and ``by`` for every other
    option (``method``, ``keep_tokens``, ``filters``...)."""
    if selection is None:
        selection = Selection(by=by, keep=parse_keep(str(keep)) if keep is not None else None)
    s = _scored(data, scorers, model, cache, progress, options)
    vectors = record_vectors(s.dataset, s.rows) if selection.method == "diverse" else None
    decisions = select(s.rows, selection, vectors)
    kept = sorted(s.position[d.index] for d in decisions if d.kept)
    dropped = sorted((s.position[d.index], d) for d in decisions if not d.kept)
    rejected = _take(s.table, [p for p, _ in dropped])
    extra = {
        "reason": [d.reason for _, d in dropped],
        "detail": [d.detail for _, d in dropped],
    }
    selected = _take(s.original, kept)  # the user's own columns: what trains
    return Curation(selected, _add(rejected, extra), s.table, decisions)


class _Scored(NamedTuple):
    table: Any  # the user's data with the score columns
    original: Any  # the user's data (a path's records as a list of dicts)
    dataset: Dataset
    rows: list[dict]  # the score rows, by record index
    position: dict[int, int]  # record index -> row position in the input


def _scored(data, scorers, model, cache, progress, options) -> _Scored:
    names = tuple(s.strip() for s in ([scorers] if isinstance(scorers, str) else scorers))
    known = {f.name for f in fields(ScoreConfig)} - {"model", "scorers", "cache"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TamisError(
            f"unknown option(s) {', '.join(unknown)}; choose from: {', '.join(sorted(known))}"
        )
    cfg = ScoreConfig(model=model, scorers=names, cache=str(cache) if cache else None, **options)
    check_score_config(cfg)
    dataset = read_dataset(data, cfg.format, cfg.skip_bad, fields=cfg.fields)
    with tempfile.TemporaryDirectory(prefix="tamis-") as tmp:
        result, _ = score_records(dataset, cfg, Path(tmp), progress)
    rows = sorted(result.rows, key=lambda r: r["index"])
    position = _positions(dataset)
    if sorted(position[r["index"]] for r in rows) != list(range(dataset.n_input)):
        raise RuntimeError("internal error: scores lost records; please report this")
    columns = [*result.columns, *(c for c in META if any(c in row for row in rows))]
    by_position = {position[r["index"]]: r for r in rows}
    ordered = [by_position[p] for p in range(dataset.n_input)]
    added = {c: [r.get(c) for r in ordered] for c in columns}
    added[STATUS] = [r["status"] for r in ordered]
    original = _original(data, dataset)
    return _Scored(_add(original, added), original, dataset, rows, position)


def _positions(dataset: Dataset) -> dict[int, int]:
    """Record index -> position among the input's rows (a file's blank lines are not rows)."""
    indexes = sorted([r.index for r in dataset.records] + [b.index for b in dataset.bad])
    return {index: p for p, index in enumerate(indexes)}


def _original(data: Any, dataset: Dataset) -> Any:
    """The user's object, or for a path or URL its records as a list of dicts, in order."""
    if kind(data) is not None:
        return data
    raws = {r.index: r.raw for r in dataset.records} | {b.index: b.raw for b in dataset.bad}
    return [raws[i] for i in sorted(raws)]


def _add(table: Any, columns: dict[str, list]) -> Any:
    """``table`` with ``columns`` added (same kind of object; a list of dicts is copied)."""
    found = kind(table)
    rows = rows_of(table) if found == "list" else None
    if found == "pandas":
        have = set(table.columns)
    elif rows is None:  # datasets or arrow
        have = set(table.column_names)
    else:
        have = {c for r in rows if isinstance(r, dict) for c in r}
    clash = sorted(c for c in columns if c in have)
    if clash:
        raise TamisError(
            f"the data already has column(s) {', '.join(clash)}, which tamis would add; rename "
            "them, or drop the scores of an earlier run first"
        )
    if found == "pandas":
        return table.assign(**columns)
    if found == "datasets":
        for name, values in columns.items():
            table = table.add_column(name, values)
        return table
    if found == "arrow":
        import pyarrow as pa

        for name, values in columns.items():
            table = table.append_column(name, pa.array(values))
        return table
    return [
        {**r, **{c: v[i] for c, v in columns.items()}} if isinstance(r, dict) else r
        for i, r in enumerate(rows)
    ]


def _take(table: Any, positions: list[int]) -> Any:
    """The rows of ``table`` at ``positions``, the same kind of object."""
    found = kind(table)
    if found == "pandas":
        return table.iloc[positions]
    if found == "datasets":
        if not positions:  # datasets 5 cannot add a column to an empty select of added columns
            from datasets import Dataset as HFDataset

            return HFDataset(table.data.table.slice(0, 0), info=table.info)
        return table.select(positions)
    if found == "arrow":
        return table.take(positions)
    return [table[p] for p in positions]
