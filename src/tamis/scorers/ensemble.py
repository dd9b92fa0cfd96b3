"""Ensembles of small models: combine one score from several models into one column.

Every model scores every record; for each score column ``c`` the output has one column per model
(``c__<model>``), the combined ``c`` (so ``--by c`` selects on the ensemble) and
``c_disagreement``, the spread of the models' percentile ranks.

Methods (``--combine``), all keeping the score's direction (lower ppl stays better):

- ``rank-mean`` (default): mean over models of the record's percentile rank in ``(0, 1]``
  (average ranks for ties, divided by n). Robust to models whose scores are on different scales
  (perplexities under different tokenizers are not comparable).
- ``zscore-mean``: mean over models of ``(x - mean) / std`` (population std; 0 when std is 0).
- ``min`` / ``max``: the smallest / largest raw value over models (meaningful when the models'
  scores share a scale).

``disagreement`` = population standard deviation over models of the percentile ranks: 0 when
the models order the record the same way, up to 0.5 when two models put it at opposite ends.
A record missing from any model (not scored, NaN) gets NaN combined values.
"""

from __future__ import annotations

import re

import numpy as np

from tamis.base.errors import TamisError
from tamis.scorers.score import SUMMED_STATS, ScoreResult

METHODS = ("rank-mean", "zscore-mean", "min", "max")


def model_slug(name: str) -> str:
    """A column-safe form of a model name: ``smollm2-135m`` -> ``smollm2_135m``."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "model"


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Average rank / n for finite values, NaN elsewhere. ``[10, 30, 20] -> [1/3, 1, 2/3]``."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        out[finite] = rankdata(values[finite]) / finite.sum()
    return out


def zscores(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    out = np.full(values.shape, np.nan)
    if finite.any():
        mean, std = values[finite].mean(), values[finite].std()
        out[finite] = 0.0 if std == 0 else (values[finite] - mean) / std
    return out


def combine(matrix: np.ndarray, method: str) -> np.ndarray:
    """Combine a (models x records) matrix into one value per record by ``method``.

    Records with a non-finite value in any model get NaN.
    """
    if method not in METHODS:
        raise TamisError(f"unknown --combine '{method}'; choose one of: {', '.join(METHODS)}")
    matrix = np.asarray(matrix, dtype=np.float64)
    complete = np.isfinite(matrix).all(axis=0)
    if method == "rank-mean":
        out = np.vstack([percentile_ranks(np.where(complete, row, np.nan)) for row in matrix]).mean(
            0
        )
    elif method == "zscore-mean":
        out = np.vstack([zscores(np.where(complete, row, np.nan)) for row in matrix]).mean(0)
    elif method == "min":
        out = matrix.min(axis=0)
    else:
        out = matrix.max(axis=0)
    return np.where(complete, out, np.nan)


def disagreement(matrix: np.ndarray) -> np.ndarray:
    """Population std over models of each record's percentile rank; NaN where any is missing."""
    matrix = np.asarray(matrix, dtype=np.float64)
    complete = np.isfinite(matrix).all(axis=0)
    ranks = np.vstack([percentile_ranks(np.where(complete, row, np.nan)) for row in matrix])
    return np.where(complete, ranks.std(axis=0), np.nan)


def merge_results(
    named: list[tuple[str, ScoreResult]], columns: list[str], method: str
) -> ScoreResult:
    """One :class:`ScoreResult` from several models' results on the same records.

    ``columns`` are the model score columns to combine; any other column of the first result
    (text heuristics, clusters) is kept as it is. A record not scored by some model takes that
    model's status (``detail`` names the model) and NaN combined values.
    """
    first = named[0][1]
    rows = [dict(r) for r in first.rows]
    for name, result in named[1:]:
        for row, other in zip(rows, result.rows, strict=True):
            if row["status"] == "ok" and other["status"] != "ok":
                row["status"], row["detail"] = other["status"], f"{name}: {other['detail']}"
    out_columns = []
    for c in columns:
        matrix = np.array([[_num(r[c]) for r in result.rows] for _, result in named])
        per_model = {f"{c}__{model_slug(name)}": matrix[i] for i, (name, _) in enumerate(named)}
        merged = {
            c: combine(matrix, method),
            f"{c}_disagreement": disagreement(matrix),
            **per_model,
        }
        for key, values in merged.items():
            for row, value in zip(rows, values, strict=True):
                row[key] = None if not np.isfinite(value) else float(value)
        out_columns.extend(merged)
    out_columns += [c for c in first.columns if c not in columns]
    return ScoreResult(rows, out_columns, first.template, _stats(named))


def _stats(named: list[tuple[str, ScoreResult]]) -> dict:
    totals = {k: sum(r.stats.get(k, 0) for _, r in named) for k in (*SUMMED_STATS, "wall_s")}
    totals["tokens_per_s"] = totals["tokens"] / totals["forward_s"] if totals["forward_s"] else None
    totals["models"] = {name: {**r.stats, "template": r.template} for name, r in named}
    return totals


def _num(value) -> float:
    return np.nan if value is None else float(value)
