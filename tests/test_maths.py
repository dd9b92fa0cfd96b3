"""The pure maths, on hand-computed numbers and properties."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.base.maths import cross_entropy, ifd, perplexity
from tamis.scorers import SCORERS, Scorer, TokenNLL, get_scorers


def test_cross_entropy_is_the_mean_nll():
    assert cross_entropy(np.array([1.0, 2.0, 6.0])) == pytest.approx(3.0)


def test_cross_entropy_honours_the_mask():
    nll = np.array([10.0, 1.0, 3.0])
    assert cross_entropy(nll, np.array([0, 1, 1])) == pytest.approx(2.0)


def test_cross_entropy_of_nothing_is_nan():
    assert math.isnan(cross_entropy(np.array([])))
    assert math.isnan(cross_entropy(np.array([1.0]), np.array([0])))


def test_perplexity_by_hand():
    # tokens with p = 1/2 and p = 1/8: mean NLL = (ln 2 + ln 8) / 2 = 2 ln 2, so PPL = 4
    nll = np.array([math.log(2), math.log(8)])
    assert perplexity(nll) == pytest.approx(4.0)


def test_ifd_by_hand():
    assert ifd(4.0, 8.0) == pytest.approx(0.5)
    assert ifd(9.0, 3.0) == pytest.approx(3.0)


@given(st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=50))
def test_perplexity_is_at_least_one(values):
    assert perplexity(np.array(values)) >= 1.0


@given(st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=50), st.randoms())
def test_scores_do_not_depend_on_token_order(values, rnd):
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert perplexity(np.array(shuffled)) == pytest.approx(perplexity(np.array(values)), rel=1e-12)


def test_every_scorer_on_hand_computed_nlls():
    cond = np.array([math.log(2), math.log(2)], dtype=np.float32)  # PPL 2
    uncond = np.array([math.log(4), math.log(4)], dtype=np.float32)  # PPL 4
    t = TokenNLL(cond, uncond, n_prompt=7, n_response=2)
    got = {}
    for scorer in SCORERS.values():
        if isinstance(scorer, Scorer):  # text scorers (heuristics) take records, not NLLs
            got.update(scorer.compute(t))
    assert got["ce"] == pytest.approx(math.log(2), rel=1e-6)
    assert got["ppl"] == pytest.approx(2.0, rel=1e-6)
    assert got["ce_uncond"] == pytest.approx(math.log(4), rel=1e-6)
    assert got["ppl_uncond"] == pytest.approx(4.0, rel=1e-6)
    assert got["ifd"] == pytest.approx(0.5, rel=1e-6)
    assert got["prompt_tokens"] == 7 and got["response_tokens"] == 2


def test_scorer_directions_and_docstrings():
    for name, scorer in SCORERS.items():
        # "none": not a quality score (cluster ids), and the docstring must say so
        assert scorer.better in ("lower", "higher", "none"), name
        compute = scorer.compute if isinstance(scorer, Scorer) else scorer.compute_all
        module = __import__(compute.__module__, fromlist=["x"])
        word = "better" if scorer.better != "none" else "not a quality score"
        assert word in module.__doc__.lower(), f"{name}: docstring must say which way is better"


def test_unknown_scorer_lists_the_choices():
    with pytest.raises(TamisError, match="unknown scorer 'ppx'; choose one of: ce, ppl"):
        get_scorers(["ppx"])


def test_finite_takes_real_numbers_only():
    # one rule for the junk score, the report and loss prediction: NaN, infinities, None, text
    # and bools (a True in a score column is not the number 1) are not scores
    import numpy as np

    from tamis.base.maths import finite

    assert all(finite(v) for v in (0, -3, 2.5, np.float32(1.5), np.float64(-2.0), np.int64(4)))
    bad = (float("nan"), float("inf"), -float("inf"), np.nan, None, True, False, "1", [1])
    assert not any(finite(v) for v in bad)
