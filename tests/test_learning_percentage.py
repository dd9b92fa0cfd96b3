"""Learning percentage: hand-computed values, and the published Small2Large values exactly."""

import csv
from pathlib import Path

import numpy as np
import pytest

from tamis.base.maths import learning_percentage, learning_percentage_approx

SMALL2LARGE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca52k" / "small2large_dev.csv"
)


def test_by_hand():
    assert learning_percentage(10.0, 4.0, 2.0) == pytest.approx(0.75)
    assert learning_percentage(10.0, 10.0, 2.0) == 0.0  # nothing learned in epoch 1: hardest
    assert learning_percentage(5.0, 3.0, 5.0) == 0.0  # no drop at all: defined as 0
    assert learning_percentage_approx(10.0, 4.0) == pytest.approx(0.6)


def test_arrays():
    got = learning_percentage(np.array([10.0, 5.0]), np.array([4.0, 3.0]), np.array([2.0, 5.0]))
    np.testing.assert_array_equal(got, [0.75, 0.0])


@pytest.mark.skipif(not SMALL2LARGE.is_file(), reason=f"{SMALL2LARGE} not present (shared data)")
@pytest.mark.parametrize("model", ["opt-350m", "opt-1.3b", "llama2-7b"])
def test_reproduces_the_published_lp_columns_exactly(model):
    with SMALL2LARGE.open() as f:
        rows = list(csv.DictReader(f))
    p0, p1, p3, lp1, lp1a = (
        np.array([float(r[f"{model}_{c}"]) for r in rows])
        for c in ("P0", "P1", "P3", "LP1", "LP1approx")
    )
    assert len(rows) == 52002
    np.testing.assert_array_equal(learning_percentage(p0, p1, p3), lp1)
    np.testing.assert_array_equal(learning_percentage_approx(p0, p1), lp1a)
    assert (p0 == p3).sum() >= 1  # the P0 == Pn case is exercised by real data too
