"""CLEAR with the real bundled model: seeded generation, judge read-outs, confidence, the
auto-correct rule, and ``tamis clear`` end to end."""

import copy
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.clear.confidence import ClearConfig, _verdict, auto_correct, confidence_scores, token_f1
from tamis.cli import main
from tamis.data.readers import read_dataset
from tamis.data.records import Message, Record, with_response
from tamis.model.cache import ScoreCache
from tamis.model.generate import Generated, Request, generate
from tamis.model.render import encode
from tamis.scorers.judge import A_B, DIGITS, YES_NO, Answers, answer_probs, question_ids, rating


@pytest.fixture(scope="module")
def short_records():
    data = read_dataset(DEMO)
    return [r for r in data.records if 40 <= len(r.response) < 300][:6]


@pytest.fixture(scope="module")
def embedder():
    from tamis.model.embed import load_embedder

    return load_embedder()


def prompts(lm, records):
    return [encode(r, lm.tokenizer, "chat", 2048) for r in records]


def test_token_f1_by_hand():
    assert token_f1("The cat sat", "the cat ran") == pytest.approx(2 / 3)
    assert token_f1("a a b", "a b b") == pytest.approx(2 / 3)  # multiset overlap: a, b
    assert token_f1("same words", "Same, words!") == 1.0
    assert token_f1("", "anything") == 0.0


def test_samples_do_not_depend_on_batch_or_order_and_are_cached(lm, short_records, tmp_path):
    enc = prompts(lm, short_records[:4])
    reqs = [Request(e.input_ids[: e.n_prompt], j) for e in enc for j in range(2)]
    with ScoreCache(tmp_path / "a.sqlite") as a, ScoreCache(tmp_path / "b.sqlite") as b:
        one = generate(lm, reqs, a, temperature=0.8, max_new_tokens=16, seed=3, batch_size=8)
        other = generate(
            lm, reqs[::-1], b, temperature=0.8, max_new_tokens=16, seed=3, batch_size=3
        )
        assert one == other[::-1]
        again = generate(lm, reqs, a, temperature=0.8, max_new_tokens=16, seed=3, batch_size=8)
        assert again == one
    texts = [g.text for g in one]
    assert any(texts[2 * i] != texts[2 * i + 1] for i in range(4))  # samples differ
    with ScoreCache(tmp_path / "c.sqlite") as c:
        reseeded = generate(lm, reqs, c, temperature=0.8, max_new_tokens=16, seed=4)
    assert [g.text for g in reseeded] != texts
    assert all(g.n_tokens <= 16 for g in one)
    assert all(g.finished == (g.n_tokens < 16) for g in one if g.n_tokens < 16)


def test_answer_tokens_shared_by_two_answers_are_not_counted(lm):
    digits = Answers.of(lm.tokenizer, DIGITS)
    # SmolLM2 writes " 1" as a space token then "1": the space would count for every digit.
    space = lm.tokenizer(" ", add_special_tokens=False)["input_ids"][0]
    assert all(space not in ids for ids in digits.token_ids)
    assert all(len(ids) >= 1 for ids in digits.token_ids)
    yes_no = Answers.of(lm.tokenizer, YES_NO)
    assert not set(yes_no.token_ids[0]) & set(yes_no.token_ids[1])


def test_judge_probabilities_do_not_depend_on_batch_size(lm, tmp_path):
    questions = [
        question_ids(lm.tokenizer, f"Is {n} a prime number? Answer yes or no.")
        for n in (7, 8, 13, 20, 31)
    ]
    answers = Answers.of(lm.tokenizer, A_B)
    with ScoreCache(tmp_path / "a.sqlite") as a, ScoreCache(tmp_path / "b.sqlite") as b:
        one = answer_probs(lm, questions, answers, a, batch_size=1)
        four = answer_probs(lm, questions, answers, b, batch_size=4)
        cached = answer_probs(lm, questions, answers, a, batch_size=4)
    for (p, m), (q, n), (r, _) in zip(one, four, cached, strict=True):
        assert p.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)
        assert m == pytest.approx(n, rel=1e-4)
        np.testing.assert_array_equal(p, r)


def test_rating_is_an_expected_digit(lm, short_records, tmp_path):
    with ScoreCache(tmp_path / "c.sqlite") as c:
        values = rating(lm, short_records[:3], c)
    for score, mass in values:
        assert 1.0 <= score <= 5.0 and 0.0 < mass <= 1.0


def test_a_response_from_an_unrelated_record_gets_lower_confidence(
    lm, short_records, tmp_path, embedder
):
    swapped = []
    for i, r in enumerate(short_records):
        s = copy.copy(r)
        s.response = short_records[(i + 3) % len(short_records)].response
        swapped.append(s)
    records = short_records + swapped
    cfg = ClearConfig(samples=3, max_new_tokens=48)
    with ScoreCache(tmp_path / "c.sqlite") as c:
        rows, samples = confidence_scores(
            lm, records, prompts(lm, records), c, cfg, embedder, progress=False
        )
    n = len(short_records)
    for original, copied in zip(rows[:n], rows[n:], strict=True):
        assert copied["confidence"] < original["confidence"]
        assert original["confidence"] == pytest.approx(
            0.7 * original["consistency"] + 0.3 * original["reflection"]
        )
    assert all(len(s) == 3 for s in samples)


def test_a_candidate_that_is_not_preferred_is_never_applied(lm, short_records, tmp_path, embedder):
    recs = short_records[:3]
    cfg = ClearConfig(samples=2, max_new_tokens=24, correct_max_new_tokens=48, prefer_threshold=0.6)
    with ScoreCache(tmp_path / "c.sqlite") as c:
        rows, samples = confidence_scores(
            lm, recs, prompts(lm, recs), c, cfg, embedder, progress=False
        )
        conf = [r["confidence"] for r in rows]
        out = auto_correct(
            lm, recs, prompts(lm, recs), conf, samples, c, cfg, embedder, progress=False
        )
        strict = ClearConfig(
            samples=2, max_new_tokens=24, correct_max_new_tokens=48, prefer_threshold=1.0
        )
        none = auto_correct(
            lm, recs, prompts(lm, recs), conf, samples, c, strict, embedder, progress=False
        )
    for c in out:
        assert c.applied == (c.reason == "applied")
        if c.applied:
            assert c.preference >= 0.6 and c.candidate_confidence > c.confidence
        assert 0.0 <= c.preference <= 1.0
    assert not any(c.applied for c in none)
    assert {c.reason for c in none} <= {"not_preferred", "candidate_unfinished", "candidate_empty"}


@pytest.mark.parametrize(
    ("finished", "text", "pref", "cand", "conf", "reason"),
    [
        (False, "x", 0.9, 0.9, 0.1, "candidate_unfinished"),
        (True, " ", 0.9, 0.9, 0.1, "candidate_empty"),
        (True, "x", 0.59, 0.9, 0.1, "not_preferred"),
        (True, "x", 0.9, 0.1, 0.1, "not_more_confident"),
        (True, "x", 0.6, 0.2, 0.1, "applied"),
    ],
)
def test_the_correction_rule(finished, text, pref, cand, conf, reason):
    assert _verdict(Generated(text, 3, finished), pref, cand, conf, ClearConfig()) == reason


@pytest.mark.parametrize(
    ("fmt", "raw", "field"),
    [
        ("alpaca", {"instruction": "i", "input": "", "output": "old", "x": 1}, ("output",)),
        ("alpaca", {"instruction": "i", "context": "", "response": "old"}, ("response",)),
        ("prompt-response", {"prompt": "p", "completion": "old"}, ("completion",)),
        (
            "messages",
            {
                "messages": [
                    {"role": "user", "content": "p"},
                    {"role": "assistant", "content": "old"},
                ]
            },
            ("messages", 1, "content"),
        ),
    ],
)
def test_with_response_replaces_only_the_response(fmt, raw, field):
    rec = Record("r", [Message("user", "p")], "old", raw)
    new = with_response(rec, fmt, "new")
    got = new
    for key in field:
        got = got[key]
    assert got == "new"
    assert rec.raw == raw and json.dumps(raw).count("old") == 1  # the input is untouched
    assert json.dumps(new).replace("new", "old") == json.dumps(raw)


def test_bad_settings_are_explained():
    with pytest.raises(TamisError, match="--temperature must be positive"):
        ClearConfig(temperature=0).check()
    with pytest.raises(TamisError, match="--beta must be between 0 and 1"):
        ClearConfig(beta=1.5).check()
    with pytest.raises(TamisError, match="--samples must be at least 1"):
        ClearConfig(samples=0).check()


def read_jsonl(path):
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_clear_command_writes_every_output_and_counts_add_up(tmp_path, write_jsonl, capsys):
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:8]
    rows.append({"instruction": "Say hi.", "output": ""})  # bad: empty response
    data = write_jsonl(rows)
    out = tmp_path / "out"
    args = ["clear", str(data), "-o", str(out), "--keep", "0.5", "--samples", "2", "-q"]
    args += ["--max-new-tokens", "16", "--correct-max-new-tokens", "32", "--skip-bad"]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["input"] == 9
    assert counts["selected"] == 4  # half of the 8 scored records
    assert counts["selected"] + counts["corrected"] + counts["rejected"] == 9
    assert counts["rejected_by_reason"].get("empty_response") == 1
    assert counts["corrections_tried"] == 4
    selected = read_jsonl(out / "selected.jsonl")
    curated = read_jsonl(out / "corrected.jsonl")
    corrections = read_jsonl(out / "corrections.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    assert selected == [r for r in rows if r in selected] and all(r in rows for r in selected)
    assert len(curated) == counts["selected"] + counts["corrected"]
    assert len(corrections) == 4 and {"original", "replacement", "preference"} <= set(
        corrections[0]
    )
    applied = {c["id"]: c["replacement"] for c in corrections if c["applied"]}
    assert sum(r["reason"] == "low_confidence" for r in rejected) == 4 - len(applied)
    scores = pq.read_table(out / "scores.parquet").to_pylist()
    assert len(scores) == 9
    ok = [s for s in scores if s["status"] == "ok"]
    assert all(0 <= s["confidence"] <= 1 for s in ok)
    assert sum(s["preference"] is not None for s in scores) == 4
    # a re-run (from the cache) writes the same files
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    assert main(args) == 0
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before
    again = json.loads((out / "manifest.json").read_text())
    assert again["counts"] == counts
    assert main(["select", str(out), "--keep", "2", "--by", "confidence"]) == 2
    assert "written by tamis clear" in capsys.readouterr().err
