"""Loss prediction: the pure parts (features, sample, cross-validation) on synthetic arrays with
known answers, then ``tamis predict-loss`` once end to end with the real models."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.engines.predict_loss import PredictLossConfig
from tamis.predict import regression as loss_regression
from tamis.predict.regression import (
    SCORE_FEATURES,
    correlations,
    cross_validate,
    draw_sample,
    evaluate,
    feature_matrix,
    fit_predict,
    score_features,
)
from tamis.scorers import DIRECTIONS

# ---------------------------------------------------------------- pure parts


def test_docstring_examples_hold():
    assert doctest.testmod(loss_regression).failed == 0


def test_score_features_by_hand():
    rows = [
        {"ce": 1.5, "ce_uncond": 2.5, "ifd": 0.6, "prompt_tokens": 9, "response_tokens": 99},
        {"ce": None, "ce_uncond": 1.0, "ifd": 1.0, "prompt_tokens": 0, "response_tokens": 0},
    ]
    x = score_features(rows)
    assert x.shape == (2, len(SCORE_FEATURES))
    # ifd is not a feature (see the module docstring): the raw ratio is ignored
    assert x[0].tolist() == pytest.approx([1.5, 2.5, math.log(10), math.log(100)])
    assert math.isnan(x[1, 0]) and x[1, 2:].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="lacks ce_uncond"):
        score_features([{"ce": 1.0, "prompt_tokens": 1, "response_tokens": 1}])


def test_feature_matrix_appends_the_embedding():
    scores = np.arange(10.0).reshape(2, 5)
    emb = np.ones((2, 3), dtype=np.float32)
    x = feature_matrix(scores, emb)
    assert x.shape == (2, 8) and x.dtype == np.float64
    assert x[:, :5].tolist() == scores.tolist() and (x[:, 5:] == 1).all()
    assert feature_matrix(scores) is not None and feature_matrix(scores).shape == (2, 5)
    with pytest.raises(ValueError, match="one embedding per record"):
        feature_matrix(scores, np.ones((3, 3)))


def test_a_feature_linear_in_the_target_predicts_it_held_out():
    rng = np.random.default_rng(1)
    y = rng.normal(size=120)
    x = np.column_stack([3 * y - 2, rng.normal(size=(120, 4))])
    for regressor, floor in (("ridge", 0.999), ("gbm", 0.9)):
        cv = cross_validate(x, y, regressor, folds=5, seed=0)
        assert cv.spearman > floor and cv.pearson > floor, regressor
    ridge = cross_validate(x, y, "ridge")
    assert ridge.r2 > 0.99 and ridge.rmse < 0.1
    assert len(ridge.fold_spearman) == 5 and all(r > 0.99 for r in ridge.fold_spearman)


def test_pure_noise_predicts_nothing_held_out():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(600, 5)), rng.normal(size=600)
    for regressor in ("ridge", "gbm"):
        cv = cross_validate(x, y, regressor, seed=0)
        assert abs(cv.spearman) < 0.1, regressor
        assert cv.r2 < 0.01, regressor  # no better than the mean


def test_evaluate_shows_what_the_embedding_adds_over_the_small_ce():
    # The large model's loss = the small one's plus a task effect only the embedding sees.
    rng = np.random.default_rng(3)
    n, d = 200, 16
    scores = rng.normal(size=(n, len(SCORE_FEATURES)))
    emb = rng.normal(size=(n, d))
    y = scores[:, 0] + 2 * emb[:, 0] + 0.1 * rng.normal(size=n)
    m = evaluate(scores, emb, y, "ridge", folds=5, seed=0)
    assert set(m) == {
        "n",
        "folds",
        "seed",
        "regressor",
        "regressor_scores_only",
        "baseline_small_ce",
        "small_ce_raw",
    }
    assert m["regressor"]["spearman"] > 0.95
    assert m["regressor_scores_only"]["spearman"] < 0.6
    assert m["baseline_small_ce"]["spearman"] < 0.6
    raw = correlations(scores[:, 0], y)
    assert m["small_ce_raw"]["pearson"] == pytest.approx(raw["pearson"])


def test_the_embedding_cannot_swamp_the_scores_under_ridge():
    # 384 embedding columns of pure noise next to one informative score, on a sample of 60:
    # weighed as one block, the noise does not drown the score.
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(60, len(SCORE_FEATURES)))
    y = scores[:, 0] + 0.1 * rng.normal(size=60)
    noise = rng.normal(size=(60, 384))
    m = evaluate(scores, noise, y, "ridge", seed=0)
    assert m["regressor"]["spearman"] > 0.9


def test_fit_predict_predicts_every_row_and_reports_alpha():
    rng = np.random.default_rng(5)
    x_all = rng.normal(size=(50, 3))
    y = 2 * x_all[:20, 0]
    predicted, info = fit_predict(x_all[:20], y, x_all, "ridge", n_scores=3)
    assert predicted.shape == (50,) and np.isfinite(predicted).all()
    assert info["regressor"] == "ridge" and info["alpha"] > 0
    assert correlations(predicted, 2 * x_all[:, 0])["spearman"] > 0.99


def test_constant_predictions_have_no_correlation():
    c = correlations(np.ones(5), np.arange(5.0))
    assert math.isnan(c["pearson"]) and math.isnan(c["spearman"])


def test_cross_validation_needs_two_records_per_fold():
    with pytest.raises(ValueError, match="at least 10 records"):
        cross_validate(np.ones((9, 2)), np.arange(9.0), folds=5)
    with pytest.raises(ValueError, match="finite"):
        cross_validate(np.full((10, 1), np.nan), np.arange(10.0))


def test_sample_is_deterministic_given_the_seed():
    candidates = list(range(0, 300, 3))
    first = draw_sample(candidates, 20, seed=7)
    assert first == draw_sample(candidates, 20, seed=7)
    assert first == draw_sample(list(reversed(candidates)), 20, seed=7)  # order does not matter
    assert first == sorted(set(first)) and set(first) <= set(candidates) and len(first) == 20
    assert first != draw_sample(candidates, 20, seed=8)
    assert draw_sample(candidates, len(candidates), seed=0) == candidates
    with pytest.raises(ValueError, match="cannot draw 101 of 100"):
        draw_sample(candidates, 101, seed=0)


def test_bad_options_fail_before_loading_anything():
    with pytest.raises(TamisError, match=r"--sample 5: 5-fold .* at least 10"):
        PredictLossConfig(sample=5).check()
    with pytest.raises(TamisError, match="--regressor svm: unknown; choose one of: ridge, gbm"):
        PredictLossConfig(regressor="svm").check()
    with pytest.raises(TamisError, match="--batch-size 0"):
        PredictLossConfig(batch_size=0).check()


def test_too_few_records_for_cross_validation_is_a_clear_error(write_jsonl, tmp_path, capsys):
    data = write_jsonl([{"instruction": f"Say {i}.", "output": str(i)} for i in range(6)])
    code = main(["predict-loss", str(data), "-o", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "only 6 records both models can score: 5-fold cross-validation needs at least 10" in err


def test_large_ce_columns_are_known_lower_is_better():
    assert DIRECTIONS["large_ce_pred"] == "lower" and DIRECTIONS["large_ce"] == "lower"


# ---------------------------------------------------------------- end to end, real models

SMALL_COLUMNS = ["ce", "ppl", "ce_uncond", "ppl_uncond", "ifd", "prompt_tokens", "response_tokens"]


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """The 24 shortest demo records; the large model scores 12 of them."""
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = sorted(rows, key=lambda r: len(r["instruction"] + r["input"] + r["output"]))[:24]
    tmp = tmp_path_factory.mktemp("predict")
    data = tmp / "short.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp / "out"
    args = ["predict-loss", str(data), "-o", str(out), "--sample", "12", "--batch-size", "12"]
    code = main([*args, "-q"])
    return rows, out, code


@pytest.mark.model
def test_predict_loss_writes_scores_prediction_and_metrics(predicted):
    rows, out, code = predicted
    assert code == 0
    for name in ("scores.parquet", "manifest.json", "predict_loss.json", "cache/nll.sqlite"):
        assert (out / name).is_file(), name
    table = pq.read_table(out / "scores.parquet")
    base = ["index", "id", "status", "detail", "truncated"]
    assert table.column_names == [*base, *SMALL_COLUMNS, "large_ce_pred", "large_ce"]
    scores = table.to_pylist()
    assert len(scores) == 24 and all(r["status"] == "ok" for r in scores)
    # large_ce exactly on the seeded sample, a prediction for every scorable record
    sampled = [r["index"] for r in scores if r["large_ce"] is not None]
    assert sampled == draw_sample(range(24), 12, seed=0)
    assert all(0 < r["large_ce"] < 20 for r in scores if r["large_ce"] is not None)
    assert all(math.isfinite(r["large_ce_pred"]) for r in scores)
    # what makes the method work at all: the small model's loss ranks like the large one's
    on_sample = [r for r in scores if r["large_ce"] is not None]
    rho = correlations(
        np.array([r["ce"] for r in on_sample]), np.array([r["large_ce"] for r in on_sample])
    )
    assert rho["spearman"] > 0.3


@pytest.mark.model
def test_a_sample_larger_than_the_input_takes_it_all_and_says_so(predicted, tmp_path, capsys):
    rows, out, _ = predicted
    data = tmp_path / "twelve.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:12]), encoding="utf-8")
    cache = out / "cache" / "nll.sqlite"  # the fixture's: nothing is computed again
    args = ["predict-loss", str(data), "-o", str(tmp_path / "o"), "--sample", "200"]
    assert main([*args, "--cache", str(cache)]) == 0
    err = capsys.readouterr().err
    assert (
        "scored 12 records with smollm2-135m, 12 with gemma3-270m (asked for 200: all that both "
        "models can score)" in err
    )
    report = json.loads((tmp_path / "o" / "predict_loss.json").read_text())
    assert report["sample"] == {"size": 12, "asked": 200, "seed": 0, "drawn_from": 12}


@pytest.mark.model
def test_predict_loss_reports_metrics_compute_and_a_manifest_select_reads(predicted):
    rows, out, _ = predicted
    report = json.loads((out / "predict_loss.json").read_text())
    m = report["metrics"]
    assert m["n"] == 12 and m["folds"] == 5 and m["seed"] == 0
    for key in ("regressor", "regressor_scores_only", "baseline_small_ce"):
        assert set(m[key]) == {"pearson", "spearman", "rmse", "r2", "fold_spearman"}
        assert -1 <= m[key]["spearman"] <= 1
    assert report["templates"] == {"smollm2-135m": "alpaca", "gemma3-270m": "alpaca"}
    c = report["compute"]
    assert 0 < c["large_sample_tokens"] < c["large_all_tokens"]
    # a fresh cache: the large model computed exactly the sampled sequences
    assert c["large_pass"]["tokens"] == c["large_sample_tokens"]
    assert c["large_pass"]["measured"] == "this run" and c["large_all_forward_s_estimate"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["name"] == "smollm2-135m" and len(manifest["model"]["sha256"]) == 64
    assert manifest["large_model"]["name"] == "gemma3-270m"
    assert manifest["score"]["config"]["skip_bad"] is False
    assert manifest["predict_loss"]["metrics"] == m
    assert len(manifest["input"]["sha256"]) == 64 and manifest["input"]["records"] == 24

    assert main(["select", str(out), "--by", "large_ce_pred", "--keep", "5", "-q"]) == 0
    with (out / "selected.jsonl").open(encoding="utf-8") as f:
        kept = [json.loads(line) for line in f]
    scores = pq.read_table(out / "scores.parquet").to_pylist()
    lowest = sorted(scores, key=lambda r: (r["large_ce_pred"], r["id"]))[:5]
    assert kept == [rows[r["index"]] for r in sorted(lowest, key=lambda r: r["index"])]
    assert json.loads((out / "manifest.json").read_text())["selection"]["direction"] == "lowest"
