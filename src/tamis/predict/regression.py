"""Predict a larger model's loss from a small model's view of a record: the pure part.

Features, the seeded sample, the regressors and their cross-validation, over plain arrays (no
models, no files); ``tamis predict-loss`` (:mod:`tamis.engines.predict_loss`) runs the models around
it.

Features of a record, all from the small model and the record's prompt:

- ``ce``, ``ce_uncond``: the small model's scores. IFD is left out on purpose:
  log IFD = ce - ce_uncond is already a linear combination of the two, while the raw ratio is
  heavy-tailed (up to ~100 on Alpaca against at most 3 in a 200-record sample) and a linear fit
  extrapolated it to absurd losses (predicted 83.5 nats for a true 11.0; Pearson 0.695 on 1,799
  unseen Alpaca records with it, see docs/results.md);
- ``log_prompt_tokens``, ``log_response_tokens``: log(1 + count) of its token counts (lengths
  span orders of magnitude; the log keeps a few long records from dominating a linear fit);
- the prompt's 384-dimensional MiniLM sentence embedding (what kind of task it is), when given.

The target is the large model's ``ce`` (mean response NLL, nats) on a seeded random sample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORE_FEATURES = ("ce", "ce_uncond", "log_prompt_tokens", "log_response_tokens")
SCORE_COLUMNS = ("ce", "ce_uncond", "prompt_tokens", "response_tokens")  # what rows need
REGRESSORS = ("ridge", "gbm")
FOLDS = 5
# Ridge's penalty, on standardised features: from almost none (plain least squares when there
# are many more records than features) to so strong that the prediction is nearly the mean.
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 33))


def score_features(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """``(n, 4)`` float64 array of :data:`SCORE_FEATURES`, one row per score row.

    A missing value (None) becomes NaN; the caller decides what a non-finite row means.

    >>> score_features([{"ce": 2.0, "ce_uncond": 3.0, "prompt_tokens": 0,
    ...                  "response_tokens": math.e - 1}]).round(6).tolist()
    [[2.0, 3.0, 0.0, 1.0]]
    """
    out = np.full((len(rows), len(SCORE_FEATURES)), np.nan)
    for i, row in enumerate(rows):
        missing = [c for c in SCORE_COLUMNS if c not in row]
        if missing:
            raise ValueError(
                f"score row {i} lacks {', '.join(missing)}; score with ce, ce_uncond, tokens"
            )
        ce, ce_uncond, n_prompt, n_response = (row[c] for c in SCORE_COLUMNS)
        out[i] = [
            _num(ce),
            _num(ce_uncond),
            math.log1p(n_prompt) if n_prompt is not None else math.nan,
            math.log1p(n_response) if n_response is not None else math.nan,
        ]
    return out


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def feature_matrix(scores: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
    """The score features with the embedding columns appended (when given), as float64."""
    scores = np.asarray(scores, dtype=np.float64)
    if embeddings is None:
        return scores
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) != len(scores):
        raise ValueError(
            f"one embedding per record is needed: {len(scores)} records, embeddings of shape "
            f"{embeddings.shape}"
        )
    return np.hstack([scores, embeddings])


def draw_sample(candidates: Sequence[int], k: int, seed: int) -> list[int]:
    """``k`` distinct candidates drawn uniformly at random, sorted.

    Depends only on the *set* of candidates, ``k`` and ``seed`` (numpy's PCG64 generator), so the
    same data and seed always give the same sample.
    """
    pool = sorted(set(candidates))
    if not 0 <= k <= len(pool):
        raise ValueError(f"cannot draw {k} of {len(pool)} candidates")
    rng = np.random.default_rng(seed)
    return sorted(int(pool[i]) for i in rng.choice(len(pool), size=k, replace=False))


def make_regressor(name: str, seed: int = 0, n_scores: int | None = None):
    """An unfitted scikit-learn regressor: ``ridge``, ``gbm`` (HistGradientBoostingRegressor,
    seeded; trees need no scaling), or ``linear`` (ordinary least squares, for the one-feature
    baseline).

    ``ridge`` standardises every column, then, when ``n_scores`` says the columns after the first
    ``n_scores`` are an embedding of d columns, divides those by sqrt(d): the embedding as a whole
    then weighs as much as one score in the penalty, rather than d times as much, so one shared
    alpha cannot be forced to choose between fitting the scores and taming 384 embedding columns.
    Alpha is chosen by RidgeCV's efficient leave-one-out over :data:`RIDGE_ALPHAS`.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if name == "ridge":
        weigh = FunctionTransformer(weigh_embedding, kw_args={"n_scores": n_scores})
        return make_pipeline(StandardScaler(), weigh, RidgeCV(alphas=RIDGE_ALPHAS))
    if name == "gbm":
        return HistGradientBoostingRegressor(random_state=seed)
    if name == "linear":
        return LinearRegression()
    raise ValueError(f"unknown regressor '{name}'; choose one of: {', '.join(REGRESSORS)}")


def weigh_embedding(x: np.ndarray, n_scores: int | None = None) -> np.ndarray:
    """Divide the columns after the first ``n_scores`` by sqrt(their number) (a copy).

    >>> weigh_embedding(np.ones((1, 6)), n_scores=2).tolist()
    [[1.0, 1.0, 0.5, 0.5, 0.5, 0.5]]
    """
    x = np.array(x, dtype=np.float64)
    if n_scores is not None and x.shape[1] > n_scores:
        x[:, n_scores:] /= math.sqrt(x.shape[1] - n_scores)
    return x


def correlations(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman of ``predicted`` against ``true`` (NaN when either is constant).

    >>> correlations(np.array([1.0, 2, 3, 4]), np.array([1.0, 4, 9, 16]))["spearman"]
    1.0
    """
    from scipy import stats

    x = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(true, dtype=np.float64)
    if x.shape != y.shape or len(x) < 3:
        raise ValueError(
            f"two equal-length arrays of at least 3 are needed; got {x.shape}, {y.shape}"
        )
    with warnings.catch_warnings():  # a constant prediction has no correlation: NaN, no warning
        warnings.simplefilter("ignore")
        return {
            "pearson": float(stats.pearsonr(x, y).statistic),
            "spearman": float(stats.spearmanr(x, y).statistic),
        }


@dataclass(frozen=True)
class CVResult:
    """Held-out quality of one regressor: every sample record is predicted by the model fitted
    on the other folds; the metrics pool those out-of-fold predictions."""

    pearson: float
    spearman: float
    rmse: float
    r2: float  # 1 - SSE / SST: 0 is no better than predicting the mean, below 0 worse
    fold_spearman: tuple[float, ...]
    predicted: np.ndarray

    def summary(self) -> dict[str, Any]:
        out = {k: _finite_or_none(getattr(self, k)) for k in ("pearson", "spearman", "rmse", "r2")}
        out["fold_spearman"] = [_finite_or_none(v) for v in self.fold_spearman]
        return out


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    regressor: str = "ridge",
    folds: int = FOLDS,
    seed: int = 0,
    n_scores: int | None = None,
) -> CVResult:
    """Seeded, shuffled ``folds``-fold cross-validation of ``regressor`` predicting ``y`` from
    ``x`` (``n_scores``: see :func:`make_regressor`). Needs at least 2 records per fold."""
    from sklearn.model_selection import KFold

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(
            f"x must be (n, features) with one target per row; got {x.shape}, {y.shape}"
        )
    if folds < 2 or len(y) < 2 * folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {2 * folds} records")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("features and targets must be finite")
    predicted = np.empty_like(y)
    fold_rho = []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        with _one_thread():
            model = make_regressor(regressor, seed, n_scores).fit(x[train], y[train])
            predicted[test] = model.predict(x[test])
        fold_rho.append(
            correlations(predicted[test], y[test])["spearman"] if len(test) >= 3 else math.nan
        )
    sse = float(np.sum((predicted - y) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    corr = correlations(predicted, y)
    return CVResult(
        pearson=corr["pearson"],
        spearman=corr["spearman"],
        rmse=math.sqrt(sse / len(y)),
        r2=1.0 - sse / sst if sst > 0 else math.nan,
        fold_spearman=tuple(fold_rho),
        predicted=predicted,
    )


def fit_predict(
    x_train: np.ndarray,
    y: np.ndarray,
    x_all: np.ndarray,
    regressor: str = "ridge",
    seed: int = 0,
    n_scores: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit on the whole sample and predict every row of ``x_all``; also returns what was fitted
    (Ridge's chosen alpha)."""
    with _one_thread():
        model = make_regressor(regressor, seed, n_scores).fit(np.asarray(x_train), np.asarray(y))
        predicted = model.predict(np.asarray(x_all, dtype=np.float64))
    info: dict[str, Any] = {"regressor": regressor}
    if regressor == "ridge":
        info["alpha"] = float(model[-1].alpha_)
    return predicted, info


def _one_thread():
    # A sample is hundreds of records: threads gain nothing, and on a busy machine OpenMP's
    # spinning workers made HistGradientBoosting ten times slower (measured: 41 s against 4 s).
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def evaluate(
    scores: np.ndarray,
    embeddings: np.ndarray | None,
    y: np.ndarray,
    regressor: str = "ridge",
    folds: int = FOLDS,
    seed: int = 0,
) -> dict[str, Any]:
    """The held-out metrics ``tamis predict-loss`` reports, all on the same folds:

    - ``regressor``: ``regressor`` on every feature (scores and embedding);
    - ``regressor_scores_only``: the same without the embedding (what the embedding adds);
    - ``baseline_small_ce``: a straight line through the small model's ``ce`` alone;
    - ``small_ce_raw``: the small ``ce`` itself against the target, no fitting, no folds.
    """
    scores = np.asarray(scores, dtype=np.float64)
    full = feature_matrix(scores, embeddings)
    out = {
        "n": len(y),
        "folds": folds,
        "seed": seed,
        "regressor": cross_validate(full, y, regressor, folds, seed, scores.shape[1]).summary(),
    }
    if embeddings is not None:
        only = cross_validate(scores, y, regressor, folds, seed)
        out["regressor_scores_only"] = only.summary()
    ce = scores[:, [SCORE_FEATURES.index("ce")]]
    out["baseline_small_ce"] = cross_validate(ce, y, "linear", folds, seed).summary()
    out["small_ce_raw"] = {k: _finite_or_none(v) for k, v in correlations(ce[:, 0], y).items()}
    return out
