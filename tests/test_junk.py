"""The junk score: each signal on hand-made score rows, order independence, the selection step and
its reasons, and the default run with the real bundled model dropping a loop and a copy."""

import json
import math
import random

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.base.maths import lead_pmi, robust_location_scale, worst_share
from tamis.cli import main
from tamis.scorers.junk import FLAG_MARGIN, Z_CUT, junk_scores
from tamis.select.selection import Selection, select


def clean_rows(n=40, seed=0):
    """Rows as the scorers write them for ordinary records: spread-out likelihoods, the prompt
    helping (lead_pmi and ce_uncond - ce positive), no text flag."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ce = rng.uniform(1.5, 2.5)
        rows.append(
            {
                "index": i,
                "id": f"r{i:03d}",
                "status": "ok",
                "detail": "",
                "truncated": False,
                "ce": ce,
                "ce_uncond": ce + rng.uniform(0.3, 1.0),
                "lead_pmi": rng.uniform(8.0, 20.0),
                "end_nll": rng.uniform(0.1, 2.0),
                "peak_nll": rng.uniform(3.0, 5.0),
                "worst_nll": rng.uniform(5.0, 7.0),
                "part_relevance": rng.uniform(0.25, 0.75),
                "tail_relevance": 0.4 + 0.01 * (i % 50),  # no draw: the others' stay as they were
                "prompt_relevance": 0.45 + 0.01 * (i % 40),
                "response_tokens": rng.randint(20, 60),
                "repetition": rng.uniform(0.0, 0.1),
                "echo": 0.0,
                "placeholder": 0.0,
                "non_text": 0.0,
                "response_words": 30.0,
                "markup": 0.0,
                "template_leak": 0.0,
                "boilerplate": 0.0,
                "refusal": 0.0,
                "misspelt": rng.choice([0.0, 0.0, 0.02]),
                "dangling": 0.0,
            }
        )
    return rows


def verdicts(rows):
    return {r["id"]: v for r, v in zip(rows, junk_scores(rows), strict=True)}


def test_maths_worst_share_by_hand():
    assert worst_share(np.array([1.0, 9.0, 2.0, 7.0, 1.0]), 0.4) == pytest.approx(8.0)
    assert worst_share(np.array([1.0, 9.0, 2.0]), 0.1) == pytest.approx(9.0)  # at least one
    assert worst_share(np.arange(20.0), 0.1) == pytest.approx(18.5)  # the top 2 of 20
    assert math.isnan(worst_share(np.array([]), 0.1))
    with pytest.raises(ValueError):
        worst_share(np.array([1.0]), 0.0)


def test_a_misspelt_value_of_none_another_language_fires_nothing():
    rows = clean_rows()
    rows[5]["misspelt"] = None
    got = verdicts(rows)
    assert got["r005"].junk <= 0 and got["r005"].signal != "misspelt"


def test_leaving_a_signal_out_silences_it_and_nothing_else():
    rows = clean_rows()
    rows.append({**clean_rows(1, seed=7)[0], "index": 40, "id": "typos", "worst_nll": 15.0})
    rows.append({**clean_rows(1, seed=8)[0], "index": 41, "id": "loop", "repetition": 0.8})
    verdicts_ = junk_scores(rows, frozenset({"unlikely_words"}))
    got = {r["id"]: v for r, v in zip(rows, verdicts_, strict=True)}
    assert got["typos"].junk <= 0 and got["typos"].signal != "unlikely_words"
    assert got["loop"].signal == "repetitive" and got["loop"].junk == FLAG_MARGIN


def test_maths_lead_pmi_and_robust_scale_by_hand():
    assert lead_pmi(np.array([1.0, 2.0, 9.0]), np.array([3.0, 2.5, 0.0]), 2) == pytest.approx(2.5)
    assert math.isnan(lead_pmi(np.array([]), np.array([]), 4))
    assert robust_location_scale(np.array([1.0, 2.0, 3.0, 4.0, 100.0, np.nan])) == (
        3.0,
        pytest.approx(1.4826),
    )


def test_clean_rows_are_not_junk_and_each_signal_fires_on_its_defect():
    rows = clean_rows()
    assert all(v.junk <= 0 for v in junk_scores(rows))  # no signal past its cut
    bad = {
        "garbled": {"ce": 9.0, "ce_uncond": 9.5},
        "other-answer": {"lead_pmi": -6.0, "ce_uncond": 2.0, "ce": 2.1, "prompt_relevance": 0.05},
        "cut-off": {"end_nll": 25.0},
        "loop": {"repetition": 0.8},
        "copy": {"echo": 1.0},
        "na": {"placeholder": 1.0},
        "blob": {"non_text": 0.9},
        "dots": {"response_words": 0.0},
        "appended": {"peak_nll": 14.0},
        "typos": {"worst_nll": 15.0},
        "html": {"markup": 1.0},
        "next-example": {"template_leak": 1.0},
        "footer": {"boilerplate": 1.0},
        "as-an-ai": {"refusal": 1.0},
        "second-answer": {"part_relevance": 0.02},
        "two-answers": {"tail_relevance": 0.05},
        "ocr": {"misspelt": 0.12},
        "cut-at-the": {"dangling": 1.0},
    }
    expected = {
        "garbled": "unlikely",
        "other-answer": "unrelated",
        "cut-off": "unfinished",
        "loop": "repetitive",
        "copy": "echo",
        "na": "placeholder",
        "blob": "non_text",
        "dots": "no_words",
        "appended": "unlikely_part",
        "typos": "unlikely_words",
        "html": "markup",
        "next-example": "template_leak",
        "footer": "boilerplate",
        "as-an-ai": "refusal",
        "second-answer": "off_topic",
        "two-answers": "appended",
        "ocr": "misspelt",
        "cut-at-the": "dangling",
    }
    for i, (name, change) in enumerate(bad.items()):
        rows.append({**clean_rows(1, seed=100 + i)[0], "index": 40 + i, "id": name, **change})
    got = verdicts(rows)
    for name, signal in expected.items():
        assert got[name].junk > 0 and got[name].signal == signal, (name, got[name])
    assert got["loop"].junk == FLAG_MARGIN and "repetition=0.8 >= 0.6" in got["loop"].detail
    assert "lead_pmi=-6" in got["other-answer"].detail
    assert "part_relevance=0.02, cut <= 0.08" in got["second-answer"].detail
    assert "tail_relevance=0.05, cut <= 0.17" in got["two-answers"].detail
    assert "misspelt=0.12 >= 0.05 (misspelt words)" in got["ocr"].detail
    assert sum(v.junk > 0 for v in got.values()) == len(bad)


def test_unrelated_needs_both_the_opening_and_the_whole_response():
    rows = clean_rows()
    # a generic opening, but the rest of the response uses the prompt: not junk
    rows.append({**rows[0], "index": 40, "id": "generic-opening", "lead_pmi": -4.0})
    # the whole response gains nothing from the prompt, though its opening does: not junk
    rows.append({**rows[1], "index": 41, "id": "on-topic-start", "ce_uncond": rows[1]["ce"] - 0.2})
    got = verdicts(rows)
    assert got["generic-opening"].junk < 0 and got["on-topic-start"].junk < 0


def test_unrelated_needs_a_response_off_the_prompts_topic_where_topic_ran():
    rows = clean_rows()
    no_help = {"lead_pmi": -3.0, "ce_uncond": 2.0, "ce": 2.4}  # the prompt helps nothing
    # "He invented dynamite." to "Who was Alfred Nobel?": unlikely, but about what was asked
    rows.append({**rows[0], "index": 40, "id": "short-fact", **no_help, "prompt_relevance": 0.6})
    rows.append({**rows[1], "index": 41, "id": "other-answer", **no_help, "prompt_relevance": 0.1})
    got = verdicts(rows)
    assert got["short-fact"].junk < 0, got["short-fact"]
    assert got["other-answer"].signal == "unrelated" and got["other-answer"].junk > 0
    assert "prompt_relevance=0.1, cut <= 0.32" in got["other-answer"].detail
    # without the topic scorer's column, the likelihood evidence alone decides (as before)
    for row in rows:
        del row["prompt_relevance"]
    got = verdicts(rows)
    assert got["short-fact"].signal == "unrelated" and got["short-fact"].junk > 0


def test_margins_are_robust_z_past_the_cut():
    rows = clean_rows()
    values = np.array([r["ce"] for r in rows] + [9.0])
    rows.append({**rows[0], "index": 40, "id": "garbled", "ce": 9.0, "ce_uncond": 9.5})
    med, scale = robust_location_scale(values)
    assert verdicts(rows)["garbled"].junk == pytest.approx((9.0 - med) / scale - Z_CUT, abs=1e-5)


def test_independent_of_record_order_and_unscored_rows_get_none():
    rows = clean_rows(60)
    rows[3]["ce"] = 12.0
    rows.append({"index": 60, "id": "bad", "status": "bad_json", "detail": "x", "truncated": False})
    before = verdicts(rows)
    shuffled = rows[:]
    random.Random(4).shuffle(shuffled)
    assert verdicts(shuffled) == before
    assert before["bad"].junk is None and before["r003"].signal == "unlikely"


def test_too_few_records_leave_only_the_flags():
    rows = clean_rows(5)
    rows[0]["ce"] = 50.0
    rows[1]["placeholder"] = 1.0
    got = verdicts(rows)
    assert got["r001"].signal == "placeholder" and got["r001"].junk == FLAG_MARGIN
    assert got["r000"].junk is None  # no spread to compare with, no flag: no verdict


def test_short_answers_are_compared_with_short_answers():
    """A one-word answer naming a rare fact has a high ce; among 1,000 records (5 length bins) it
    is judged against other short answers, not against long ones."""
    rng = random.Random(3)
    rows = []
    for i in range(1000):
        short = i % 5 == 0
        ce = rng.uniform(3.0, 8.0) if short else rng.uniform(1.5, 2.5)
        rows.append(
            {**clean_rows(1, seed=i)[0], "index": i, "id": f"r{i:04d}", "ce": ce,
             "ce_uncond": ce + 0.5, "response_tokens": rng.randint(1, 3) if short else 50}
        )  # fmt: skip
    got = junk_scores(rows)
    short_dropped = sum(v.junk > 0 for r, v in zip(rows, got, strict=True) if r["index"] % 5 == 0)
    assert short_dropped == 0


def test_selection_drops_junk_first_with_the_signal_as_reason():
    rows = clean_rows()
    rows.append({**rows[0], "index": 40, "id": "loop", "repetition": 0.9, "ce": 0.2})
    for row, v in zip(rows, junk_scores(rows), strict=True):
        row.update(junk=v.junk, junk_signal=v.signal, junk_detail=v.detail)
    decisions = {rows[d.index]["id"]: d for d in select(rows, Selection(by="ce", keep=10))}
    loop = decisions["loop"]  # the lowest ce of all: ranked first without the junk filter
    assert not loop.kept and loop.reason == "junk_repetitive" and "repetition=0.9" in loop.detail
    assert sum(d.kept for d in decisions.values()) == 10
    off = {
        rows[d.index]["id"]: d
        for d in select(rows, Selection(by="ce", keep=10, drop_junk_above=math.inf))
    }
    assert off["loop"].kept
    lenient = select(rows, Selection(by="ce", keep=10, drop_junk_above=5.0))
    assert lenient[40].kept


def test_junk_limit_without_the_column_is_a_clear_error():
    rows = clean_rows()
    with pytest.raises(TamisError, match="--drop-junk-above needs the junk score"):
        select(rows, Selection(by="ce", drop_junk_above=0.0))
    assert len(select(rows, Selection(by="ce"))) == 40  # default: off without the column


def test_default_run_drops_a_looping_and_a_copied_response(tmp_path, capsys):
    """The real bundled model on 24 demo records plus a loop, a copy, another record's answer, a
    cut-off answer, two merged answers and one full of typos: ``tamis run --keep 0.5`` with
    nothing else drops the loop, the copy and the typos as junk, with the signal in the reason
    and the summary, and every degenerate response scores a higher ``junk`` than its clean
    original."""
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if 100 <= len(r["output"]) <= 500][:24]
    loop_of = rows[0]["output"].split(".")[0].strip() + ". "
    rows.append({**rows[1], "uid": "loop", "output": rows[1]["output"][:60] + " " + loop_of * 6})
    rows.append({**rows[2], "uid": "copy", "output": rows[2]["instruction"]})
    # degenerate versions of demo-3 and demo-4 that likelihood alone does not rank last
    rows.append({**rows[3], "uid": "swapped", "output": rows[10]["output"]})
    cut = rows[4]["output"].split()
    rows.append({**rows[4], "uid": "cut", "output": " ".join(cut[: len(cut) // 3])})
    # two answers merged into one: demo-5's, then demo-12's
    merged = rows[5]["output"] + "\n\n" + rows[12]["output"]
    rows.append({**rows[5], "uid": "merged", "output": merged})
    # keyboard slips: every third lower-case word of 4+ letters has two letters swapped
    words = rows[6]["output"].split(" ")
    for k in [k for k, w in enumerate(words) if w.isalpha() and w.islower() and len(w) > 3][::3]:
        words[k] = words[k][0] + words[k][2] + words[k][1] + words[k][3:]
    rows.append({**rows[6], "uid": "typos", "output": " ".join(words)})
    named = ("loop", "copy", "swapped", "cut", "merged", "typos")
    for i, r in enumerate(rows):
        r["id"] = r.pop("uid") if r["uid"] in named else f"demo-{i}"
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["run", str(data), "-o", str(tmp_path / "out"), "--keep", "0.5"]) == 0
    err = capsys.readouterr().err
    rejected = {}
    with (tmp_path / "out" / "rejected.jsonl").open() as f:
        for line in f:
            item = json.loads(line)
            rejected[item["id"]] = item
    assert rejected["loop"]["reason"] == "junk_repetitive"
    assert rejected["copy"]["reason"] == "junk_echo"
    assert rejected["typos"]["reason"].startswith("junk_")  # misspelt, or a likelier signal
    scored = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "scores.parquet").to_pylist()}
    assert scored["typos"]["misspelt"] >= 0.05 and scored["demo-6"]["misspelt"] < 0.05
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    by_signal = manifest["counts"]["junk_by_signal"]
    assert by_signal["repetitive"] >= 1 and by_signal["echo"] >= 1
    assert manifest["selection"]["drop_junk_above"] == 0.0
    assert "junk filter (junk > 0): dropped" in err and "repetitive" in err and "echo" in err
    assert manifest["counts"]["selected"] == 15  # half of the 30 scored records

    junk = {
        r["id"]: r["junk"] for r in pq.read_table(tmp_path / "out" / "scores.parquet").to_pylist()
    }
    # the real model's signals put each degenerate response above its clean original
    assert junk["swapped"] > junk["demo-3"] and junk["cut"] > junk["demo-4"]
    assert junk["loop"] > junk["demo-1"] and junk["copy"] > junk["demo-2"]
    assert junk["merged"] > junk["demo-5"] and junk["typos"] > junk["demo-6"]


def test_a_small_dataset_of_300_records_gets_length_bins_too():
    # As above, at the size of the demo (300 records: 3 bins), while a long garbled response
    # is still "unlikely".
    rng = random.Random(3)
    rows = clean_rows(300, seed=3)
    for r in rows[:100]:
        r.update(response_tokens=rng.randint(1, 3), ce=rng.uniform(4.0, 9.0))
        r["ce_uncond"] = r["ce"] + 0.5
    rows[150].update(ce=9.0, ce_uncond=9.5)
    got = verdicts(rows)
    assert got[rows[150]["id"]].signal == "unlikely" and got[rows[150]["id"]].junk > 0
    assert not any(got[r["id"]].junk > 0 for r in rows[:100])


def test_text_flags_name_the_flag_a_generated_answer_trips():
    from tamis.data.records import to_record
    from tamis.scorers.junk import text_flags

    def rec(instruction, output):
        return to_record({"instruction": instruction, "input": "", "output": output}, "alpaca", "t")

    answers = [
        rec("Name a colour.", "Blue is a calm colour that many people like."),
        rec("Name a colour.", "Blue blue blue blue blue blue blue blue blue blue blue blue."),
        rec(
            "Describe the water cycle in one sentence.", "Describe the water cycle in one sentence."
        ),
        rec("Name a colour.", "N/A"),
        rec("Name a colour.", "Blue.\n\n### Instruction:\nName a fruit."),
        # cut by --max-new-tokens, or a rare word: junk in data, not in a generated answer
        rec("Name a colour.", "Blue is a calm colour, the colour of"),
        rec("Name a colour.", "Blue is a calm colour, lke the sky."),
    ]
    assert text_flags(answers) == ["", "repetitive", "echo", "placeholder", "template_leak", "", ""]


def test_below_the_cuts_two_strong_signals_outrank_middling_ones_everywhere(monkeypatch):
    # Fisher's combination of the two largest percentiles: a record far out (but below the cuts)
    # on two signals comes before one a little off on all of them, which every dataset has many
    # of; over all the percentiles it would be the other way round.
    rows = clean_rows()
    everywhere = {"ce": 2.3, "end_nll": 1.7, "peak_nll": 4.6, "worst_nll": 6.6,
                  "part_relevance": 0.35, "tail_relevance": 0.5, "lead_pmi": 10.0}  # fmt: skip
    two = {"ce": 2.0, "end_nll": 1.0, "peak_nll": 4.99, "worst_nll": 6.99,
           "part_relevance": 0.5, "tail_relevance": 0.65, "lead_pmi": 14.0}  # fmt: skip
    rows.append({**rows[0], "index": 40, "id": "everywhere", **everywhere, "ce_uncond": 2.75})
    rows.append({**rows[1], "index": 41, "id": "two", **two, "ce_uncond": 2.65})
    got = verdicts(rows)
    assert got["everywhere"].junk < 0 and got["two"].junk < 0  # no signal past its cut
    assert got["two"].junk > got["everywhere"].junk
    monkeypatch.setattr("tamis.scorers.junk.TOP_PERCENTILES", 99)  # Fisher over all of them
    every = verdicts(rows)
    assert every["two"].junk < every["everywhere"].junk
