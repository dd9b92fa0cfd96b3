"""The tamis command end to end, in temporary folders, with the real bundled model."""

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from conftest import DEMO

from tamis.cli import main
from tamis.scorers.junk import MEANINGS


def demo_rows(n, start=0):
    with DEMO.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f][start : start + n]


def read_jsonl(path):
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def corrupted_run(tmp_path_factory):
    """10 demo records with 150-600 character responses (very short answers make a noisy
    perplexity), plus a word-shuffled copy of one and a mismatched copy of another."""
    rows = [r for r in demo_rows(300) if 150 <= len(r["output"]) <= 600][:10]
    for i, r in enumerate(rows):
        r["id"] = f"demo-{i}"
    words = rows[0]["output"].split()
    random.Random(1).shuffle(words)
    rows.append({**rows[0], "id": "shuffled-0", "output": " ".join(words)})
    rows.append({**rows[1], "id": "mismatched-1", "output": rows[5]["output"]})
    tmp = tmp_path_factory.mktemp("run")
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code = main(["run", str(data), "-o", str(tmp / "out"), "--keep", "0.5", "--by", "ppl", "-q"])
    return rows, tmp / "out", code


def test_run_writes_every_output_and_counts_add_up(corrupted_run):
    rows, out, code = corrupted_run
    assert code == 0
    selected = read_jsonl(out / "selected.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(selected) == 6 and len(rejected) == 6
    counts = manifest["counts"]
    assert counts["input"] == 12 == counts["selected"] + counts["rejected"]
    assert sum(counts["rejected_by_reason"].values()) == counts["rejected"]
    # kept records are exactly the input objects, all fields
    by_id = {r["id"]: r for r in rows}
    assert all(s == by_id[s["id"]] for s in selected)
    assert all(r["record"] == by_id[r["id"]] and r["reason"] and r["detail"] for r in rejected)
    table = pq.read_table(out / "scores.parquet")
    assert table.num_rows == 12 and table.column("id").to_pylist() == [r["id"] for r in rows]
    for column in (
        "ce",
        "ppl",
        "ce_uncond",
        "ppl_uncond",
        "ifd",
        "prompt_tokens",
        "response_tokens",
    ):
        assert column in table.column_names
    assert manifest["model"]["name"] == "smollm2-135m" and len(manifest["model"]["sha256"]) == 64
    assert manifest["input"]["sha256"] and manifest["versions"]["torch"].startswith("2.13.0")
    assert manifest["score"]["tokens_per_s"] > 0


def test_corrupted_records_score_higher_and_are_rejected(corrupted_run):
    rows, out, _ = corrupted_run
    ppl = dict(
        zip(
            pq.read_table(out / "scores.parquet").column("id").to_pylist(),
            pq.read_table(out / "scores.parquet").column("ppl").to_pylist(),
            strict=False,
        )
    )
    assert ppl["shuffled-0"] > 1.5 * ppl["demo-0"]
    assert ppl["mismatched-1"] > 1.5 * ppl["demo-1"]
    rejected = {r["id"]: r for r in read_jsonl(out / "rejected.jsonl")}
    # dropped by the junk filter (the default) or ranked out by ppl
    for rid in ("shuffled-0", "mismatched-1"):
        reason = rejected[rid]["reason"]
        assert reason == "ranked_out" or reason.startswith("junk_"), (rid, reason)


def test_without_by_the_default_recipe_is_junk_then_a_seeded_random_sample(corrupted_run):
    rows, out, _ = corrupted_run
    assert main(["select", str(out), "--keep", "0.5", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection"]["by"] == "random" and manifest["selection"]["drop_junk_above"] == 0
    scores = pq.read_table(out / "scores.parquet").to_pylist()
    junk = {r["id"] for r in scores if r["junk"] > 0}
    first = {r["id"] for r in read_jsonl(out / "selected.jsonl")}
    assert len(first) == 6 and not first & junk
    rejected = read_jsonl(out / "rejected.jsonl")
    assert {r["reason"] for r in rejected} <= {"ranked_out"} | {f"junk_{s}" for s in MEANINGS}
    assert "random order (seed 0)" in next(
        r["detail"] for r in rejected if r["reason"] == "ranked_out"
    )
    assert (
        "recipe" in (out / "report.html").read_text()
        and "drop junk, then a seeded" in (out / "report.html").read_text()
    )
    # another seed, another sample; the same seed, the same one
    assert main(["select", str(out), "--keep", "0.5", "--seed", "1", "-q"]) == 0
    assert {r["id"] for r in read_jsonl(out / "selected.jsonl")} != first
    assert main(["select", str(out), "--keep", "0.5", "-q"]) == 0
    assert {r["id"] for r in read_jsonl(out / "selected.jsonl")} == first
    # a threshold reads a score, so it needs --by
    assert main(["select", str(out), "--keep", "0.5", "--max", "50", "-q"]) == 2


def test_select_again_with_other_options_reuses_scores(corrupted_run, capsys):
    _, out, _ = corrupted_run
    assert main(["select", str(out), "--by", "ifd", "--keep", "3", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection"]["by"] == "ifd" and manifest["selection"]["drop_ifd_above"] == 1.0
    assert manifest["counts"]["selected"] <= 3
    assert manifest["counts"]["input"] == 12


def test_verbose_adds_the_details_and_quiet_silences_everything(corrupted_run, tmp_path, capsys):
    rows, out, _ = corrupted_run
    data = out.parent / "data.jsonl"
    cache = ["--cache", str(out / "cache" / "nll.sqlite")]  # the fixture's scores: no new pass
    assert main(["run", str(data), "-o", str(tmp_path / "v"), "--keep", "0.5", "-v", *cache]) == 0
    err = capsys.readouterr().err
    assert "model smollm2-135m:" in err and "template chat" in err
    assert re.search(r"scoring: (\d+) sequences \(0 computed, \1 from cache\)", err)
    assert re.search(r"\n  ppl: median [\d.]+, 5%-95% [\d.]+ to [\d.]+ \(12 values\)", err)
    assert "selection: by random, keep 0.5" in err and "seed 0" in err and "kept 6" in err
    junk = [r for r in read_jsonl(tmp_path / "v" / "rejected.jsonl") if r["reason"] != "ranked_out"]
    assert junk and all(f"dropped {r['id']}: {r['reason']}: junk=" in err for r in junk)
    assert main(["select", str(tmp_path / "v"), "--keep", "0.5", "-q"]) == 0
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit):
        main(["select", str(tmp_path / "v"), "-q", "-v"])
    assert "not allowed with argument -q" in capsys.readouterr().err


def test_the_summary_says_what_was_asked_when_fewer_are_kept(corrupted_run, tmp_path, capsys):
    _, out, _ = corrupted_run
    again = tmp_path / "again"
    shutil.copytree(out, again)  # the module's other tests read the fixture's own selection
    assert main(["select", str(again), "--keep", "1000", "--by", "ppl"]) == 0
    kept = json.loads((again / "manifest.json").read_text())["counts"]["selected"]
    assert kept < 12 and f"(asked for 1000: only {kept} left after the filters)" in (
        capsys.readouterr().err
    )
    assert main(["select", str(again), "--by", "ppl"]) == 0
    assert "(no --keep: all that passed)" in capsys.readouterr().err
    assert main(["select", str(again), "--keep", "0.05", "--by", "ppl"]) == 0
    assert "(--keep 0.05 of 12 scored records rounds down to 0)" in capsys.readouterr().err
    assert main(["select", str(again), "--keep", "0"]) == 2
    assert "--keep 0: would keep nothing" in capsys.readouterr().err


def test_select_under_a_token_budget_and_with_the_diversity_filter(corrupted_run, capsys):
    rows, out, _ = corrupted_run
    table = pq.read_table(out / "scores.parquet").to_pylist()
    cost = {r["id"]: r["prompt_tokens"] + r["response_tokens"] for r in table}
    budget = sum(sorted(cost.values())[:4])  # room for about four records
    assert main(["select", str(out), "--by", "random", "--keep-tokens", str(budget),
                 "--seed", "3"]) == 0  # fmt: skip
    assert "tokens" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    selected = read_jsonl(out / "selected.jsonl")
    counts = manifest["counts"]
    assert counts["selected_tokens"] == sum(cost[r["id"]] for r in selected) <= budget
    assert counts["input_tokens"] == sum(cost.values()) and selected
    assert manifest["selection"]["keep_tokens"] == budget
    assert manifest["selection"]["direction"] == "random"
    # the same draw again: the seed fixes it
    first = [r["id"] for r in selected]
    assert main(["select", str(out), "--by", "random", "--keep-tokens", str(budget),
                 "--seed", "3", "-q"]) == 0  # fmt: skip
    assert [r["id"] for r in read_jsonl(out / "selected.jsonl")] == first
    # diverse, with the real MiniLM: a copy of a record's prompt and response is too similar
    copy = {**rows[2], "id": "copy-2"}
    data = out.parent / "with_copy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [*rows[:10], copy]), encoding="utf-8")
    out2 = out.parent / "diverse"
    assert main(["run", str(data), "-o", str(out2), "--method", "diverse", "--keep", "8",
                 "--by", "ppl", "--drop-junk-above", "none", "-q"]) == 0  # fmt: skip
    rejected = {r["id"]: r for r in read_jsonl(out2 / "rejected.jsonl")}
    selected = {r["id"] for r in read_jsonl(out2 / "selected.jsonl")}
    pair = {"demo-2", "copy-2"}
    assert len(pair & selected) == 1
    (skipped,) = pair - selected
    assert rejected[skipped]["reason"] == "too_similar"
    assert "cosine similarity 1.000" in rejected[skipped]["detail"]


def test_select_without_scores_is_a_clear_error(tmp_path, capsys):
    assert main(["select", str(tmp_path), "--keep", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tamis: error:") and "run 'tamis score" in err and "Traceback" not in err


def test_unknown_model_lists_what_is_available(tmp_path, write_jsonl, capsys):
    data = write_jsonl(demo_rows(2))
    assert main(["score", str(data), "-o", str(tmp_path / "o"), "--model", "nope-7b"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope-7b'" in err and "smollm2-135m" in err and "gemma3-270m" in err


def test_unknown_by_is_rejected_before_scoring(tmp_path, write_jsonl, capsys):
    data = write_jsonl(demo_rows(2))
    code = main(["run", str(data), "-o", str(tmp_path / "o"), "--keep", "lots"])
    assert code == 2 and "--keep 'lots' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "o" / "scores.parquet").exists()


def test_help_documents_every_option(capsys):
    for command in ("score", "select", "run", "clear", "train", "eval", "experiment"):
        with pytest.raises(SystemExit) as exit_code:
            main([command, "--help"])
        assert exit_code.value.code == 0
        text = capsys.readouterr().out
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("--") and "  " not in stripped and "," not in stripped:
                # an option alone on its line must have its help on the next line
                assert text.split(stripped, 1)[1].strip(), (command, stripped)
        assert ("--keep" in text) == (command in ("select", "run", "clear"))


def cached_rows(path):
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM nll").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killed_score_resumes_without_loss_or_doubling(tmp_path, write_jsonl):
    data = write_jsonl(demo_rows(20, start=100))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tamis", "score", str(data), "-o", str(out), "-q"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cache = out / "cache" / "nll.sqlite"
    deadline = time.monotonic() + 240
    while cached_rows(cache) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "scoring finished before it could be killed; use more records"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = cached_rows(cache)
    assert 4 <= done_before < 40
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["score"]["from_cache"] == done_before
    assert manifest["score"]["computed"] == 40 - done_before
    clean = tmp_path / "clean"
    assert main(["score", str(data), "-o", str(clean), "-q"]) == 0
    a = pq.read_table(out / "scores.parquet").to_pylist()
    b = pq.read_table(clean / "scores.parquet").to_pylist()
    assert len(a) == 20 and len({r["id"] for r in a}) == 20
    for ra, rb in zip(a, b, strict=False):
        assert ra["id"] == rb["id"]
        for column in ("ppl", "ppl_uncond", "ifd"):
            assert ra[column] == pytest.approx(rb[column], rel=1e-4)


def test_a_field_mapping_carries_through_run_and_select(write_jsonl, tmp_path):
    rows = [
        {"uid": f"u{i}", "question": f"Name the number {i}.", "answer": f"It is {i}, a number."}
        for i in range(6)
    ]
    data = write_jsonl(rows)
    out = tmp_path / "o"
    mapping = ["--field", "instruction=question", "--field", "output=answer", "--id-field", "uid"]
    assert main(["run", str(data), "-o", str(out), "--scorer", "heuristics", *mapping, "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["fields"] == [
        ["instruction", "question"],
        ["output", "answer"],
        ["id", "uid"],
    ]
    assert [r["id"] for r in pq.read_table(out / "scores.parquet").to_pylist()] == [
        f"u{i}" for i in range(6)
    ]
    assert [json.loads(line) for line in (out / "selected.jsonl").open()] == rows
    # select reads the input again with the run's mapping
    assert main(["select", str(out), "--keep", "2", "-q"]) == 0
    kept = [json.loads(line) for line in (out / "selected.jsonl").open()]
    assert len(kept) == 2 and all(r in rows for r in kept)


def test_a_dropped_duplicate_names_the_record_it_repeats(write_jsonl, tmp_path):
    rows = [
        {"id": "a", "instruction": "Name a colour.", "output": "Blue."},
        {"id": "b", "instruction": "Name a fruit.", "output": "A pear."},
        {"id": "c", "instruction": "name a  colour.", "output": "BLUE."},
    ]
    out = tmp_path / "o"
    args = ["run", str(write_jsonl(rows)), "-o", str(out), "--scorer", "dup_exact", "-q"]
    assert main([*args, "--filter", "dup_exact==0"]) == 0
    scores = pq.read_table(out / "scores.parquet").to_pylist()
    assert [r["dup_exact_of"] for r in scores] == [None, None, "a"]
    (dropped,) = [json.loads(line) for line in (out / "rejected.jsonl").open()]
    assert dropped["id"] == "c" and dropped["reason"] == "filter_dup_exact"
    assert dropped["detail"] == "dup_exact=1 fails --filter dup_exact==0 (repeats a)"
