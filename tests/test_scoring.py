"""Scoring with the real bundled SmolLM2-135M: orderings that must hold, invariances, masking."""

import random

import numpy as np
import pytest
import torch
from conftest import DEMO

from tamis.data.readers import read_dataset
from tamis.model.cache import ScoreCache
from tamis.model.render import IGNORE, TooLong, encode, encode_unconditional
from tamis.model.runner import prefix_groups, token_nlls
from tamis.scorers import get_scorers
from tamis.scorers.score import score_dataset

ALL = get_scorers(["ce", "ppl", "ce_uncond", "ppl_uncond", "ifd", "tokens"])
COLUMNS = ["ce", "ppl", "ce_uncond", "ppl_uncond", "ifd"]


def score(data, lm, tmp_path, name="c.sqlite", **kw):
    with ScoreCache(tmp_path / name) as cache:
        return score_dataset(data, lm, ALL, cache, progress=False, **kw)


@pytest.fixture(scope="module")
def demo12():
    data = read_dataset(DEMO)
    data.records = data.records[:12]
    return data


def shuffled_words(text, seed=0):
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def test_corrupted_responses_score_a_clearly_higher_ppl(lm, write_jsonl, tmp_path):
    originals = [
        {
            "instruction": "What is the capital of France?",
            "input": "",
            "output": "The capital of France is Paris, which is also its largest city.",
        },
        {
            "instruction": "Name three primary colors.",
            "input": "",
            "output": "The three primary colors are red, blue and yellow.",
        },
        {
            "instruction": "How many days are in a week?",
            "input": "",
            "output": "There are seven days in a week, from Monday to Sunday.",
        },
    ]
    rows = list(originals)
    rows += [{**r, "output": shuffled_words(r["output"], i)} for i, r in enumerate(originals)]
    # another record's response: rotate the answers
    rows += [{**r, "output": originals[(i + 1) % 3]["output"]} for i, r in enumerate(originals)]
    result = score(read_dataset(write_jsonl(rows)), lm, tmp_path)
    ppl = [r["ppl"] for r in result.rows]
    for i in range(3):
        assert ppl[3 + i] > 1.5 * ppl[i], f"shuffled response {i} not clearly worse: {ppl}"
        assert ppl[6 + i] > 1.5 * ppl[i], f"mismatched response {i} not clearly worse: {ppl}"
    ifd = [r["ifd"] for r in result.rows]
    assert all(ifd[6 + i] > ifd[i] for i in range(3)), "a mismatched prompt must help less"


def test_scores_do_not_depend_on_batch_size_or_order(lm, demo12, tmp_path):
    one = score(demo12, lm, tmp_path, "b1.sqlite", batch_size=1)
    eight = score(demo12, lm, tmp_path, "b8.sqlite", batch_size=8)
    data = read_dataset(DEMO)
    data.records = data.records[:12]
    random.Random(3).shuffle(data.records)
    shuffled = score(data, lm, tmp_path, "shuf.sqlite", batch_size=8)
    by_id = {r["id"]: r for r in shuffled.rows if r["id"] is not None}
    for a, b in zip(one.rows, eight.rows, strict=False):
        for c in COLUMNS:
            assert b[c] == pytest.approx(a[c], rel=1e-4), (a["id"], c)
            assert by_id[a["id"]][c] == pytest.approx(a[c], rel=1e-4), (a["id"], c)


@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_head_only_runner_matches_full_logits(lm, demo12, template):
    """The output head applied at response positions only, after the template's opening run
    once for all records that share it, gives the plain computation's NLLs."""
    encoded = [encode(r, lm.tokenizer, template, 2048) for r in demo12.records[:6]]
    groups = prefix_groups(lm.model, encoded)
    assert max(p for p, _ in groups) >= 20  # the template's opening is shared, and tested here
    counts = []
    got = dict(token_nlls(lm, encoded, 2, lambda n, tokens, run: counts.append((tokens, run))))
    tokens = sum(len(e.input_ids) for e in encoded)
    saved = sum((len(m) - 1) * p for p, m in groups)
    assert sum(t for t, _ in counts) == tokens and sum(r for _, r in counts) == tokens - saved
    for i, e in enumerate(encoded):
        ids = torch.tensor([e.input_ids])
        with torch.inference_mode():
            logits = lm.model(ids).logits[0, :-1].float()
        labels = torch.tensor(e.labels[1:])
        full = torch.nn.functional.cross_entropy(
            logits, labels, ignore_index=IGNORE, reduction="none"
        )
        expected = full[labels != IGNORE].numpy()
        np.testing.assert_allclose(got[i], expected, rtol=1e-4, atol=1e-5)


def test_masking_and_templates(lm, demo12):
    rec = demo12.records[0]
    chat = encode(rec, lm.tokenizer, "chat", 2048)
    assert chat.labels[: chat.n_prompt] == [IGNORE] * chat.n_prompt
    assert lm.tokenizer.decode(chat.input_ids[chat.n_prompt :]) == rec.response + "<|im_end|>"
    alpaca = encode(rec, lm.tokenizer, "alpaca", 2048)
    prompt = lm.tokenizer.decode(alpaca.input_ids[: alpaca.n_prompt])
    assert prompt.startswith("Below is an instruction that describes a task")
    assert prompt.endswith("### Response:")
    assert alpaca.input_ids[-1] == lm.tokenizer.eos_token_id
    uncond = encode_unconditional(chat, lm.tokenizer, "chat")
    assert uncond.input_ids[uncond.n_prompt :] == chat.input_ids[chat.n_prompt :]
    assert lm.tokenizer.decode(uncond.input_ids[: uncond.n_prompt]) == "<|im_start|>assistant\n"


def test_context_limit_truncates_prompt_from_the_left_or_drops(lm, demo12, tmp_path):
    rec = max(demo12.records, key=lambda r: len(r.prompt[0].content))
    full = encode(rec, lm.tokenizer, "chat", 2048)
    limit = full.n_response + 10
    cut = encode(rec, lm.tokenizer, "chat", limit)
    assert cut.truncated and len(cut.input_ids) == limit
    assert cut.input_ids[-full.n_response - 10 :] == full.input_ids[-full.n_response - 10 :]
    with pytest.raises(TooLong):
        encode(rec, lm.tokenizer, "chat", full.n_response)
    result = score(demo12, lm, tmp_path, "short.sqlite", max_tokens=24)
    statuses = {r["status"] for r in result.rows}
    assert statuses <= {"ok", "too_long"} and "too_long" in statuses
    assert all(r["ppl"] is None for r in result.rows if r["status"] == "too_long")


def test_cache_recomputes_nothing_on_a_rerun(lm, demo12, tmp_path):
    first = score(demo12, lm, tmp_path, "same.sqlite")
    second = score(demo12, lm, tmp_path, "same.sqlite")
    assert first.stats["computed"] == 24 and second.stats["computed"] == 0
    assert second.stats["from_cache"] == 24
    assert [r["ppl"] for r in second.rows] == [r["ppl"] for r in first.rows]


def test_tokens_scorer_needs_no_forward_pass(lm, demo12, tmp_path):
    with ScoreCache(tmp_path / "t.sqlite") as cache:
        result = score_dataset(demo12, lm, get_scorers(["tokens"]), cache, progress=False)
    assert result.stats["computed"] == 0
    assert all(r["response_tokens"] > 0 for r in result.rows)


def test_chunked_scoring_gives_the_same_rows_and_keeps_no_encodings(
    lm, demo12, tmp_path, monkeypatch
):
    whole = score(demo12, lm, tmp_path, "whole.sqlite", batch_size=4)
    monkeypatch.setattr("tamis.scorers.score.CHUNK_RECORDS", 5)  # 12 records: chunks of 5, 5 and 2
    chunked = score(demo12, lm, tmp_path, "chunked.sqlite", batch_size=4)
    assert [r["id"] for r in chunked.rows] == [r["id"] for r in whole.rows]
    for a, b in zip(whole.rows, chunked.rows, strict=True):
        for c in COLUMNS:
            assert b[c] == pytest.approx(a[c], rel=1e-4), (a["id"], c)
    assert chunked.stats["computed"] == whole.stats["computed"] == 24
    assert chunked.stats["tokens"] == whole.stats["tokens"]
    assert chunked.encoded == {}
    kept = score(demo12, lm, tmp_path, "chunked.sqlite", keep_encoded=True)
    assert sorted(kept.encoded) == [r.index for r in demo12.records]
