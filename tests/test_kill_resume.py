"""Crash safety: `tamis run`, `tamis clear` and `tamis train` killed by SIGKILL at random points,
then run again, end with the outputs of a run that was never interrupted (real model, real
processes). Scores may differ from the uninterrupted run's in
the last float digits (a resumed run batches the remaining records differently), so numbers are
compared to 1e-5 relative and everything else exactly.
"""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
from conftest import DEMO

KILLS = 2  # each start loads torch and the model again: two kills, then the finishing run


def records(n: int) -> list[dict]:
    with DEMO.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f][:n]


def same(a, b) -> bool:
    """Equal, with floats compared to 1e-5 relative."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def outputs(out) -> dict:
    """Every data output of a run folder, parsed; timings left out of the manifest."""
    found = {
        p.name: [json.loads(x) for x in p.read_text().splitlines()] for p in out.glob("*.jsonl")
    }
    found["scores.parquet"] = pq.read_table(out / "scores.parquet").to_pylist()
    manifest = json.loads((out / "manifest.json").read_text())
    found["counts"] = manifest["counts"]
    return found


def killed_then_finished(
    cmd: list[str], seconds: float, seed: int, first_when=None, kills: int = KILLS
) -> int:
    """Start ``cmd`` and SIGKILL it after a random 20-60% of ``seconds`` (the uninterrupted
    run's time), ``kills`` times, then run it to the end; returns how many kills hit a running
    process. The first always does; a later start has less left to do (what was committed
    before a kill is kept) and may finish before its kill. ``first_when``: the first kill
    comes instead as soon as this returns true (polled every 0.1 s)."""
    rng = random.Random(seed)
    hits = 0
    for k in range(kills):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if k == 0 and first_when is not None:
            deadline = time.monotonic() + 300
            while proc.poll() is None and not first_when() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.poll() is None, "the run ended before its first kill"
        else:
            time.sleep(rng.uniform(0.2, 0.6) * seconds)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            hits += 1
        proc.wait()
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return hits


def clean_and_killed(tmp_path, args: list[str], seed: int, kills: int = KILLS):
    base = [sys.executable, "-m", "tamis", *args]
    t0 = time.monotonic()
    subprocess.run([*base, "-o", str(tmp_path / "clean")], check=True, capture_output=True)
    seconds = time.monotonic() - t0
    cmd = [*base, "-o", str(tmp_path / "killed")]
    hits = killed_then_finished(cmd, seconds, seed, kills=kills)
    return outputs(tmp_path / "clean"), outputs(tmp_path / "killed"), hits


def test_a_run_killed_at_random_points_resumes_to_the_same_outputs(tmp_path, write_jsonl):
    rows = records(24)
    rows.insert(5, {"instruction": "Say hi.", "output": ""})  # a rejected record too
    data = write_jsonl(rows)
    args = ["run", str(data), "--keep", "0.5", "--batch-size", "4", "--skip-bad", "-q"]
    clean, killed, hits = clean_and_killed(tmp_path, args, seed=1)
    assert hits >= 1, "no kill caught the run while it was working"
    assert set(clean) == set(killed) >= {"selected.jsonl", "rejected.jsonl", "scores.parquet"}
    for name in clean:
        assert same(clean[name], killed[name]), name
    assert clean["counts"]["input"] == 25 and clean["counts"]["selected"] == 12


def test_a_clear_killed_at_random_points_resumes_to_the_same_outputs(tmp_path, write_jsonl):
    data = write_jsonl(records(5))
    args = ["clear", str(data), "--keep", "0.6", "--samples", "2", "-q"]
    args += ["--max-new-tokens", "16", "--correct-max-new-tokens", "24"]
    # one kill: the run's two kills already test a resume after a resume
    clean, killed, hits = clean_and_killed(tmp_path, args, seed=2, kills=1)
    assert hits >= 1, "no kill caught the run while it was working"
    expected = {"selected.jsonl", "corrected.jsonl", "corrections.jsonl", "scores.parquet"}
    assert set(clean) == set(killed) >= expected
    for name in clean:
        assert same(clean[name], killed[name]), name
    assert len(clean["corrections.jsonl"]) == 2  # the two least confident of five


def test_a_train_killed_at_random_points_resumes_to_the_same_weights(tmp_path, write_jsonl):
    # The kill comes in the middle of training, right after a step's checkpoint, so the resume
    # from a checkpoint is always tested.
    from safetensors.torch import load_file
    from torch.testing import assert_close

    rows = [r for r in records(60) if len(r["output"]) < 200 and not r["input"]][:8]
    data = write_jsonl(rows)
    args = ["train", str(data), "--model", "smollm2-135m", "--batch-size", "4", "-q"]
    args += ["--max-tokens", "256", "--epochs", "3", "--lr", "1e-3", "--save-steps", "1"]
    base = [sys.executable, "-m", "tamis", *args]
    t0 = time.monotonic()
    subprocess.run([*base, "-o", str(tmp_path / "clean")], check=True, capture_output=True)
    seconds = time.monotonic() - t0
    # --resume on every start: the first has no checkpoint yet and starts from scratch
    cmd = [*base, "-o", str(tmp_path / "killed"), "--resume"]
    third = tmp_path / "killed" / "checkpoints" / "checkpoint-3" / "trainer_state.json"
    # one kill, right after a checkpoint: the run's two kills test a resume after a resume
    hits = killed_then_finished(cmd, seconds, seed=3, first_when=third.is_file, kills=1)
    assert hits >= 1
    clean, killed = (
        load_file(tmp_path / d / "adapter" / "adapter_model.safetensors")
        for d in ("clean", "killed")
    )
    assert clean.keys() == killed.keys()
    for key in clean:
        assert_close(killed[key], clean[key], rtol=1e-5, atol=1e-7)
    log = (tmp_path / "killed" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == list(range(1, 7))
