"""tamis eval and its metrics: ROUGE-L and exact match by hand, and the command end to end with
the real bundled model."""

import json

import numpy as np
import pytest
from conftest import DEMO
from hypothesis import given
from hypothesis import strategies as st

from tamis.base.metrics import exact_match, lcs_length, rouge_l
from tamis.cli import main
from tamis.data.readers import read_dataset
from tamis.model.render import encode
from tamis.model.runner import token_nlls


def test_rouge_l_by_hand():
    # LCS of "the cat sat on the mat" / "the cat is on the mat" = the cat on the mat (5 words)
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # candidate 2 words, reference 4, LCS 2: P = 1, R = 0.5, F1 = 2/3
    assert rouge_l("Paris, France!", "paris is in france") == pytest.approx(2 / 3)
    assert rouge_l("", "anything") == 0.0
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4  # the textbook example


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12))
def test_rouge_l_of_a_text_with_itself_is_one(tokens):
    text = " ".join(tokens)
    assert rouge_l(text, text) == 1.0


@pytest.mark.parametrize(
    ("candidate", "reference", "same"),
    [
        ("The Eiffel Tower.", "eiffel tower", True),
        ("  an apple ", "Apple", True),
        ("1912", "In 1912", False),
    ],
)
def test_exact_match_normalises_case_punctuation_and_articles(candidate, reference, same):
    assert exact_match(candidate, reference) is same


@pytest.fixture(scope="module")
def test_data(tmp_path_factory):
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if len(r["output"]) < 300][:4]
    path = tmp_path_factory.mktemp("eval") / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_reports_the_token_weighted_loss_and_a_model_against_itself_ties(
    lm, test_data, tmp_path
):
    out = tmp_path / "eval"
    args = ["eval", str(test_data), "--model", "smollm2-135m", "-o", str(out), "-q"]
    args += ["--max-new-tokens", "16", "--against", "smollm2-135m", "--judge", "smollm2-135m"]
    assert main(args) == 0
    report = json.loads((out / "eval.json").read_text())
    encoded = [encode(r, lm.tokenizer, "chat", 1024) for r in read_dataset(test_data).records]
    nll = np.concatenate([n for _, n in token_nlls(lm, encoded)])
    assert report["loss"] == pytest.approx(float(nll.mean()), rel=1e-4)
    assert report["perplexity"] == pytest.approx(float(np.exp(nll.mean())), rel=1e-4)
    assert report["records"] == 4 and report["response_tokens"] == len(nll)
    # the same answers judged in both orders: position bias cancels to exactly one half
    assert report["preference"] == pytest.approx(0.5, abs=1e-6)
    per = [json.loads(line) for line in (out / "eval_records.jsonl").read_text().splitlines()]
    assert len(per) == 4 and all(0.0 <= p["rouge_l"] <= 1.0 and p["answer"] for p in per)
    assert report["rouge_l"] == pytest.approx(sum(p["rouge_l"] for p in per) / 4)


def test_against_without_judge_is_explained(test_data, tmp_path, capsys):
    args = ["eval", str(test_data), "--model", "smollm2-135m", "-o", str(tmp_path), "-q"]
    assert main([*args, "--against", "smollm2-135m"]) == 2
    assert "--against and --judge go together" in capsys.readouterr().err


def test_a_generation_limit_answers_the_first_records_and_counts_junk_answers(test_data, tmp_path):
    out = tmp_path / "eval"
    args = ["eval", str(test_data), "--model", "smollm2-135m", "-o", str(out), "-q"]
    assert main([*args, "--max-new-tokens", "12", "--generate-limit", "2"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["records"] == 4 and report["generated_records"] == 2  # loss on all four
    per = [json.loads(line) for line in (out / "eval_records.jsonl").read_text().splitlines()]
    assert [("answer" in p) for p in per] == [True, True, False, False]
    flagged = [p["junk_flag"] for p in per[:2]]
    assert report["junk_flagged"] == sum(bool(f) for f in flagged) / 2


def test_a_generation_limit_below_one_is_refused(test_data, tmp_path, capsys):
    args = ["eval", str(test_data), "--model", "smollm2-135m", "-o", str(tmp_path), "-q"]
    assert main([*args, "--generate-limit", "0"]) == 2
    assert "--generate-limit 0: must be at least 1" in capsys.readouterr().err
