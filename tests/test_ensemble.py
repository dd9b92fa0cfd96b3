"""Ensembles: the combination maths by hand, and a real two-model run."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import DEMO
from hypothesis import given
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.scorers.ensemble import combine, disagreement, model_slug, percentile_ranks
from tamis.select.selection import Selection


def test_percentile_ranks_by_hand():
    np.testing.assert_allclose(percentile_ranks(np.array([10.0, 30.0, 20.0])), [1 / 3, 1, 2 / 3])
    np.testing.assert_allclose(percentile_ranks(np.array([5.0, 5.0])), [0.75, 0.75])  # ties


def test_combine_by_hand():
    m = np.array([[1.0, 2.0, 3.0], [30.0, 10.0, 20.0]])
    np.testing.assert_allclose(
        combine(m, "rank-mean"), [(1 / 3 + 1) / 2, (2 / 3 + 1 / 3) / 2, (1 + 2 / 3) / 2]
    )
    np.testing.assert_allclose(combine(m, "min"), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(combine(m, "max"), [30.0, 10.0, 20.0])
    z = combine(m, "zscore-mean")
    np.testing.assert_allclose(
        z, (np.array([-1.2247, 0, 1.2247]) + np.array([1.2247, -1.2247, 0])) / 2, atol=1e-4
    )
    np.testing.assert_allclose(disagreement(m), [1 / 3, 1 / 6, 1 / 6])


def test_missing_values_give_nan_not_a_guess():
    m = np.array([[1.0, np.nan, 3.0], [2.0, 1.0, 0.5]])
    out = combine(m, "rank-mean")
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    assert np.isnan(disagreement(m)[1])


def test_unknown_method_lists_the_choices():
    with pytest.raises(TamisError, match="choose one of: rank-mean, zscore-mean, min, max"):
        combine(np.ones((2, 2)), "vote")


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_identical_models_agree_and_combine_to_themselves(values):
    m = np.vstack([values, values])
    np.testing.assert_allclose(disagreement(m), 0.0, atol=1e-12)
    np.testing.assert_allclose(combine(m, "rank-mean"), percentile_ranks(np.array(values)))
    np.testing.assert_allclose(combine(m, "min"), values)


def test_slug_and_direction_of_per_model_columns():
    assert model_slug("smollm2-135m") == "smollm2_135m"
    assert Selection(by="ifd__gemma3_270m").resolved_direction() == "highest"
    assert Selection(by="ppl__gemma3_270m").resolved_direction() == "lowest"


def test_two_model_ensemble_end_to_end(tmp_path, write_jsonl):
    rows = [json.loads(line) for line in DEMO.open(encoding="utf-8")]
    rows = [r for r in rows if 80 <= len(r["output"]) <= 200 and not r["input"]][:6]
    data = write_jsonl(rows)
    out = tmp_path / "ens"
    args = [
        "run",
        str(data),
        "-o",
        str(out),
        "--model",
        "smollm2-135m",
        "--model",
        "gemma3-270m",
        "--scorer",
        "ppl",
        "--template",
        "alpaca",
        "--keep",
        "3",
        "-q",
    ]
    assert main(args) == 0
    table = pq.read_table(out / "scores.parquet").to_pylist()
    for r in table:
        assert {"ppl", "ppl_disagreement", "ppl__smollm2_135m", "ppl__gemma3_270m"} <= r.keys()
        assert 0 < r["ppl"] <= 1 and 0 <= r["ppl_disagreement"] <= 0.5
    small = percentile_ranks(np.array([r["ppl__smollm2_135m"] for r in table]))
    large = percentile_ranks(np.array([r["ppl__gemma3_270m"] for r in table]))
    np.testing.assert_allclose([r["ppl"] for r in table], (small + large) / 2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["smollm2-135m", "gemma3-270m"]
    assert manifest["counts"]["selected"] == 3


def test_duplicate_ensemble_model_is_a_clear_error(tmp_path, write_jsonl, capsys):
    data = write_jsonl([{"instruction": "Say hi.", "output": "Hi!"}])
    code = main(
        [
            "score",
            str(data),
            "-o",
            str(tmp_path / "o"),
            "--model",
            "smollm2-135m",
            "--model",
            "smollm2-135m",
        ]
    )
    assert code == 2 and "--model given twice" in capsys.readouterr().err
