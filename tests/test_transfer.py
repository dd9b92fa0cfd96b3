"""Hardness transfer: agreement maths on hand-computed numbers and properties, then
``tamis transfer`` end to end on files written here and on the published Small2Large values."""

from __future__ import annotations

import doctest
import hashlib
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from tamis.base import agreement as agreement_module
from tamis.base.agreement import (
    agreement,
    chance_jaccard,
    join_on_id,
    kendall,
    ranking,
    spearman,
    top_overlap,
    top_size,
)
from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.data.outputs import write_scores
from tamis.transfer.hardness import parse_top, resolve_direction
from tamis.transfer.report import log_axis

SMALL2LARGE = ROOT.parent / "shared" / "data" / "alpaca52k" / "small2large_dev.csv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# ---------------------------------------------------------------- maths, by hand


def test_docstring_examples_hold():
    assert doctest.testmod(agreement_module).failed == 0


def test_identical_rankings_agree_fully():
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0, 3.5, 8.0, 7.0]
    ids = [f"r{i}" for i in range(10)]
    result = agreement(values, values, ids, (10, 20, 50, 100), "higher")
    assert result.spearman.statistic == pytest.approx(1.0)
    assert result.kendall.statistic == pytest.approx(1.0)
    assert [t.jaccard for t in result.top] == [1.0, 1.0, 1.0, 1.0]
    assert [t.size for t in result.top] == [1, 2, 5, 10]


def test_reversed_rankings_disagree_fully():
    a = list(range(10))
    b = [-x for x in a]
    ids = [str(i) for i in a]
    result = agreement(a, b, ids, (10, 20, 40, 50, 60), "higher")
    assert result.spearman.statistic == pytest.approx(-1.0)
    assert result.kendall.statistic == pytest.approx(-1.0)
    # top 60%: A keeps 4..9, B keeps 0..5; they share {4, 5}: 2 / (6 + 6 - 2)
    assert [t.jaccard for t in result.top] == [0.0, 0.0, 0.0, 0.0, 0.2]
    assert result.top[-1].shared == 2


def test_five_records_by_hand():
    a = [1, 2, 3, 4, 5]
    b = [2, 1, 4, 3, 5]
    ids = ["a", "b", "c", "d", "e"]
    # rank differences -1, 1, -1, 1, 0: rho = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8
    rho = spearman(a, b)
    assert rho.statistic == pytest.approx(0.8)
    # t = 0.8 * sqrt(3 / (1 - 0.64)) = 2.309 on 3 degrees of freedom: two-sided p = 0.104
    assert rho.pvalue == pytest.approx(0.104, abs=1e-3)
    # 2 discordant pairs (a,b) and (c,d) of 10: tau = (8 - 2) / 10; exact p: permutations
    # of 5 with at most 2 inversions are 1 + 4 + 9 = 14 of 120, two-sided 28 / 120
    tau = kendall(a, b)
    assert tau.statistic == pytest.approx(0.6)
    assert tau.pvalue == pytest.approx(28 / 120)
    # top 40% = 2 records. higher: A {e, d}, B {e, c}: 1 shared of 3; chance 0.4 / 1.6
    (top,) = top_overlap(a, b, ids, [40], "higher")
    assert (top.size, top.shared, top.jaccard, top.chance) == (2, 1, pytest.approx(1 / 3), 0.25)
    # lower: A {a, b}, B {b, a}: the same set
    (top,) = top_overlap(a, b, ids, [40], "lower")
    assert top.jaccard == 1.0


def test_identical_five_have_the_smallest_exact_kendall_p():
    # only the identity and its reverse reach |tau| = 1: 2 of 5! = 120 orderings
    assert kendall([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).pvalue == pytest.approx(2 / 120)


def test_ties_are_broken_by_id_whatever_the_input_order():
    ids = ["d", "b", "a", "c", "e"]
    values = [1.0, 1.0, 1.0, 1.0, 0.0]
    order = ranking(values, ids, "higher")
    assert [ids[i] for i in order] == ["a", "b", "c", "d", "e"]
    order = ranking(values, ids, "lower")
    assert [ids[i] for i in order] == ["e", "a", "b", "c", "d"]
    perm = [4, 2, 0, 3, 1]
    again = ranking([values[i] for i in perm], [ids[i] for i in perm], "higher")
    assert [ids[perm[i]] for i in again] == ["a", "b", "c", "d", "e"]


def test_top_size_and_chance():
    assert top_size(52002, 5) == 2600
    assert top_size(10, 5) == 1  # at least one record
    assert top_size(200, 2.5) == 5
    assert top_size(3, 100) == 3
    assert chance_jaccard(0.1) == pytest.approx(0.1 / 1.9)
    assert chance_jaccard(1.0) == 1.0


def test_join_on_id_counts_unmatched_rows():
    j = join_on_id(["1", "2", "3", "4"], [1, 2, 3, 4], ["4", "9", "2"], [40, 90, 20])
    assert j.ids == ["2", "4"]
    assert j.a.tolist() == [2.0, 4.0] and j.b.tolist() == [20.0, 40.0]
    assert (j.unmatched_a, j.unmatched_b) == (2, 1)


def test_constant_score_gives_undefined_correlation():
    result = agreement([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], list("abcd"))
    assert math.isnan(result.spearman.statistic) and math.isnan(result.kendall.statistic)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: spearman([1, 2], [1, 2]), "at least 3"),
        (lambda: spearman([1, 2, 3], [1, 2]), "same records"),
        (lambda: kendall([1, 2, math.nan], [1, 2, 3]), "finite"),
        (lambda: ranking([1, 2], ["a", "b"], "up"), "choose one of: lower, higher"),
        (lambda: top_size(10, 0), "outside (0, 100]"),
        (lambda: top_size(10, 101), "outside (0, 100]"),
        (lambda: join_on_id(["a", "a"], [1, 2], ["a"], [1]), "unique"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace("]", r"\]")):
        call()


# ---------------------------------------------------------------- maths, properties

scores = st.lists(st.integers(-200, 200), min_size=3, max_size=40)


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_spearman_ignores_strictly_increasing_transforms(data):
    a = data.draw(scores)
    b = data.draw(st.lists(st.integers(-200, 200), min_size=len(a), max_size=len(a)))
    base = spearman(a, b).statistic
    cubed = [x**3 + 7 for x in a]
    expo = [math.exp(x / 50) for x in b]
    assert _same(spearman(cubed, b).statistic, base)
    assert _same(spearman(a, expo).statistic, base)
    assert _same(spearman(cubed, expo).statistic, base)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_overlap_is_a_symmetric_fraction(data):
    a = data.draw(scores)
    b = data.draw(st.lists(st.integers(-5, 5), min_size=len(a), max_size=len(a)))
    ids = [f"id{i}" for i in data.draw(st.permutations(range(len(a))))]
    direction = data.draw(st.sampled_from(["lower", "higher"]))
    percents = (5, 10, 33.3, 50, 100)
    ab = top_overlap(a, b, ids, percents, direction)
    ba = top_overlap(b, a, ids, percents, direction)
    assert [t.jaccard for t in ab] == [t.jaccard for t in ba]
    assert all(0.0 <= t.jaccard <= 1.0 and 0 < t.chance <= 1 for t in ab)
    assert ab[-1].jaccard == 1.0  # the top 100% is everything
    rho_ab, rho_ba = spearman(a, b).statistic, spearman(b, a).statistic
    assert rho_ab == pytest.approx(rho_ba, abs=1e-12, nan_ok=True)


# ---------------------------------------------------------------- command-line helpers


def test_parse_top_and_direction():
    assert parse_top("5%, 10,10,50") == (5.0, 10.0, 50.0)
    with pytest.raises(TamisError, match="'0' is not a percentage in \\(0, 100\\]"):
        parse_top("5,0")
    assert resolve_direction(None, "ppl", "opt-1.3b_P0") == ("lower", "tamis default for ppl")
    assert resolve_direction(None, "x", "y")[0] == "higher"
    # tamis' own derived columns: an ensemble's per-model score, learning percentage's p1
    assert resolve_direction(None, "ppl__smollm2_135m", "ppl__gemma3_270m") == (
        "lower",
        "tamis default for ppl__smollm2_135m",
    )
    assert resolve_direction(None, "p1", "x") == ("lower", "tamis default for p1")
    assert resolve_direction("lower", "ifd", "ifd") == ("lower", "--direction")
    with pytest.raises(TamisError, match="give --direction"):
        resolve_direction(None, "ppl", "ifd")


def test_log_axis_only_for_positive_wide_scores():
    assert log_axis(np.array([1.0, 5.0, 1000.0]))
    assert not log_axis(np.array([1.0, 50.0]))
    assert not log_axis(np.array([-1.0, 1000.0]))
    assert not log_axis(np.array([0.0, 1000.0]))


# ---------------------------------------------------------------- end to end


def _small_scores(folder):
    """Tamis' scores.parquet: ids '0'..'39' (ppl e^(i/8)); '5' was not scored, and a second
    '7' is a duplicate_id row without a score."""
    rows = [
        {"index": i, "id": str(i), "status": "ok", "detail": "", "truncated": False}
        | {"ppl": math.exp(i / 8)}
        for i in range(40)
    ]
    rows[5] |= {"status": "too_long", "ppl": None}
    rows.append(rows[7] | {"index": 40, "status": "duplicate_id", "ppl": None})
    write_scores(folder / "scores.parquet", rows, ["ppl"])
    return {r["id"]: r["ppl"] for r in rows if r["status"] == "ok"}


def _large_csv(path, values: dict[int, float | None]):
    lines = ["id,big_ppl"] + [f"{k}," + ("" if v is None else repr(v)) for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture()
def inputs(tmp_path):
    small = _small_scores(tmp_path / "small")
    related = {i: math.exp(i / 8) ** 1.3 * (1 + 0.2 * math.sin(i)) for i in range(39)}
    related[3] = None  # no value
    related[100] = 2.0  # not in A
    _large_csv(tmp_path / "related.csv", related)
    shuffled = np.random.default_rng(7).permutation(39)
    pq.write_table(
        pa.table({"id": list(range(39)), "big_ppl": [float(x) for x in shuffled]}),
        tmp_path / "unrelated.parquet",
    )
    return tmp_path, small, related, shuffled


def _run(capsys, *argv):
    code = main(["transfer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_transfer_writes_json_and_plot(inputs, capsys):
    tmp, small, related, _ = inputs
    code, out, err = _run(
        capsys, tmp / "small", tmp / "related.csv", "--score", "ppl", "--score-b", "big_ppl",
        "-o", tmp / "report", "--top", "10,50",
    )  # fmt: skip
    assert code == 0, err
    assert "warning" not in err
    report = json.loads((tmp / "report" / "transfer.json").read_text())
    ids = [str(i) for i in range(39) if i not in (3, 5)]
    expected = agreement([small[i] for i in ids], [related[int(i)] for i in ids], ids, (10, 50))
    assert report["joined"] == 37
    assert report["spearman"]["rho"] == pytest.approx(expected.spearman.statistic)
    assert report["spearman"]["rho"] > 0.9 and report["spearman"]["pvalue"] < 1e-6
    assert report["kendall"]["tau_b"] == pytest.approx(expected.kendall.statistic)
    assert report["direction"] == "lower" and report["direction_source"] == "tamis default for ppl"
    assert [t["percent"] for t in report["top"]] == [10.0, 50.0]
    assert [t["size"] for t in report["top"]] == [3, 18]
    a, b = report["inputs"]["a"], report["inputs"]["b"]
    assert a["column"] == "ppl" and a["file"].endswith("scores.parquet")
    scores_bytes = (tmp / "small" / "scores.parquet").read_bytes()
    assert a["sha256"] == hashlib.sha256(scores_bytes).hexdigest()
    assert b["column"] == "big_ppl" and len(b["sha256"]) == 64
    # 41 rows: too_long and duplicate_id rows are not ok; '3' has no B value, '39' no B row
    assert a["rows"] == 41
    assert a["dropped"] == {"status_not_ok": 2, "no_id": 0, "no_value": 0, "no_match": 2}
    # 40 rows: '3' is empty, '5' was not scored in A, '100' is not in A
    assert b["rows"] == 40
    assert b["dropped"] == {"status_not_ok": 0, "no_id": 0, "no_value": 1, "no_match": 2}
    assert a["used"] == b["used"] == 37
    assert "joined 37 records" in out and "spearman" in out and "the lowest values" in out
    png = (tmp / "report" / "transfer.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 5000
    import matplotlib.image

    pixels = matplotlib.image.imread(tmp / "report" / "transfer.png")
    assert pixels.shape[:2] == (660, 704) and pixels[..., :3].std() > 0.05  # drawn, not blank


def test_unrelated_scores_warn(inputs, capsys):
    tmp, small, _, shuffled = inputs
    code, out, err = _run(
        capsys, tmp / "small" / "scores.parquet", tmp / "unrelated.parquet", "--score", "ppl",
        "--score-b", "big_ppl",
    )  # fmt: skip
    assert code == 0, err
    ids = [i for i in range(39) if i != 5]
    rho = spearman([small[str(i)] for i in ids], [float(shuffled[i]) for i in ids]).statistic
    assert abs(rho) < 0.3
    assert err.startswith(f"warning: agreement is low (Spearman {rho:.2f} < 0.30): the small ")
    assert "may not transfer to the larger model" in err
    assert "joined 38 records" in out
    # the threshold is the option's: below -1 nothing can warn
    code, _, err = _run(
        capsys, tmp / "small", tmp / "unrelated.parquet", "--score", "ppl", "--score-b",
        "big_ppl", "--warn-below", "-1",
    )  # fmt: skip
    assert code == 0 and "warning" not in err


def _no_id(tmp):
    (tmp / "no_id.csv").write_text("key,big_ppl\n1,2.0\n2,3.0\n3,4.0\n", encoding="utf-8")
    return [tmp / "small", tmp / "no_id.csv", "--score", "ppl"]


def _disjoint(tmp):
    _large_csv(tmp / "other.csv", {1000 + i: float(i) for i in range(10)} | {1: 1.0, 2: 2.0})
    return [tmp / "small", tmp / "other.csv", "--score", "ppl", "--score-b", "big_ppl"]


def _dup(tmp):
    _large_csv(tmp / "dup.csv", {1: 1.0, 2: 2.0})
    text = (tmp / "dup.csv").read_text() + "1,5.0\n"
    (tmp / "dup.csv").write_text(text)
    return [tmp / "small", tmp / "dup.csv", "--score", "ppl", "--score-b", "big_ppl"]


def _text(tmp):
    (tmp / "text.csv").write_text("id,big_ppl\n1,high\n2,low\n", encoding="utf-8")
    return [tmp / "small", tmp / "text.csv", "--score", "ppl", "--score-b", "big_ppl"]


def _jsonl(tmp):
    (tmp / "x.jsonl").write_text('{"id": 1, "big_ppl": 2.0}\n', encoding="utf-8")
    return [tmp / "small", tmp / "x.jsonl", "--score", "ppl"]


def _args(*extra):
    return lambda tmp: [tmp / "small", tmp / "related.csv", "--score", "ppl", *extra]


ERRORS = {
    "missing_file": (
        lambda tmp: [tmp / "nope.csv", tmp / "related.csv", "--score", "ppl"],
        ["A", "nope.csv: no such file or folder", "a tamis output folder"],
    ),
    "folder_without_scores": (
        lambda tmp: [tmp, tmp / "related.csv", "--score", "ppl"],
        ["folder without scores.parquet"],
    ),
    "unknown_type": (_jsonl, ["unknown file type '.jsonl'", "choose .csv or .parquet"]),
    "no_id_column": (_no_id, ["B", "no 'id' column (columns: key, big_ppl)", "add one"]),
    "unknown_column_a": (
        _args("--score", "pll", "--score-b", "big_ppl"),
        ["A", "no column 'pll'; choose one of: ppl", "check --score"],
    ),
    "unknown_column_b": (
        _args("--score-b", "big"),
        ["B", "no column 'big'; choose one of: big_ppl", "check --score-b"],
    ),
    "too_few_joined": (_disjoint, ["only 2 records are in both", "at least 3", "same ids"]),
    "duplicate_ids": (_dup, ["1 ids appear more than once (first: '1')", "unique"]),
    "text_column": (_text, ["column 'big_ppl' holds string, not numbers"]),
    "bad_top": (_args("--score-b", "big_ppl", "--top", "5,x"), ["--top '5,x': 'x'", "give e.g."]),
    "bad_warn_below": (
        _args("--score-b", "big_ppl", "--warn-below", "3"),
        ["--warn-below 3.0 is not a correlation", "[-1, 1]"],
    ),
    "direction_conflict": (
        lambda tmp: [tmp / "small", tmp / "small", "--score", "ppl", "--score-b", "ifd"],
        ["'ppl' is better lower but 'ifd' is better higher", "give --direction"],
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_exit_2_with_one_line(inputs, capsys, case):
    tmp = inputs[0]
    make, words = ERRORS[case]
    code, out, err = _run(capsys, *make(tmp))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tamis: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert out == ""


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["transfer", "--help"])
    text = capsys.readouterr().out
    for option in ("--score COL", "--score-b", "--out", "--top", "--direction", "--warn-below"):
        assert option in text
    assert "(default: 5,10,20,50)" in text and "(default: 0.3)" in text


# ---------------------------------------------------------------- published Small2Large values


@pytest.mark.skipif(
    not SMALL2LARGE.is_file(), reason=f"published Small2Large values not found at {SMALL2LARGE}"
)
def test_small2large_opt_models_agree_on_the_first_2000(tmp_path, capsys):
    table = pcsv.read_csv(SMALL2LARGE)
    first = table.filter(pc.less(table.column("id"), 2000))
    assert first.num_rows == 2000
    pcsv.write_csv(first.select(["id", "opt-350m_P0"]), tmp_path / "first2000.csv")
    rho = {}
    for large in ("opt-1.3b_P0", "llama2-7b_P0"):
        out_dir = tmp_path / large
        code, out, err = _run(
            capsys, tmp_path / "first2000.csv", SMALL2LARGE, "--score", "opt-350m_P0",
            "--score-b", large, "-o", out_dir,
        )  # fmt: skip
        assert code == 0 and "warning" not in err, err
        report = json.loads((out_dir / "transfer.json").read_text())
        assert report["joined"] == 2000 and report["inputs"]["b"]["dropped"]["no_match"] == 50002
        rho[large] = report["spearman"]["rho"]
        top10 = next(t for t in report["top"] if t["percent"] == 10)
        assert top10["times_chance"] > 10  # hardest 10% by OPT-350M is far from random
    # measured: 0.942 (OPT-1.3B) and 0.805 (Llama-2-7B); the nearer model agrees more
    assert rho["opt-1.3b_P0"] == pytest.approx(0.942, abs=0.001)
    assert rho["llama2-7b_P0"] == pytest.approx(0.805, abs=0.001)
    assert rho["opt-1.3b_P0"] > rho["llama2-7b_P0"] > 0.8
