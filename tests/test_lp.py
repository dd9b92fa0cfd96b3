"""Learning percentage end to end with the real bundled model: training really lowers the loss,
and a run killed after its first epoch resumes to the same result as an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import DEMO

from tamis.cli import main

# Small and short so two epochs of full fine-tuning take seconds on two cores.
ARGS = [
    "--scorer",
    "lp",
    "--lp-epochs",
    "2",
    "--lp-batch-size",
    "4",
    "--lp-lr",
    "1e-4",
    "--max-tokens",
    "96",
    "--template",
    "alpaca",
    "-q",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    short = [r for r in rows if len(r["output"]) < 120 and not r["input"]][:8]
    path = tmp_path_factory.mktemp("lp") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in short), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clean_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lp-clean")
    assert main(["score", str(data), "-o", str(out), *ARGS]) == 0
    return out


def test_lp_columns_and_training_lowers_perplexity(clean_run):
    rows = pq.read_table(clean_run / "scores.parquet").to_pylist()
    assert len(rows) == 8
    for r in rows:
        assert {"p0", "p1", "p2", "lp", "lp_approx"} <= r.keys()
        assert r["lp"] == pytest.approx((r["p0"] - r["p1"]) / (r["p0"] - r["p2"]))
        assert r["lp_approx"] == pytest.approx((r["p0"] - r["p1"]) / r["p0"])
    # two epochs on the records themselves must fit them better on average
    assert sum(r["p2"] for r in rows) < 0.8 * sum(r["p0"] for r in rows)
    assert not list((clean_run / "lp").glob("*/checkpoint-*")), "checkpoints are removed on success"
    manifest = json.loads((clean_run / "manifest.json").read_text())
    assert manifest["score"]["config"]["train"]["epochs"] == 2
    # the work counted: both epochs trained, P0..P2 over the 8 records, all computed
    assert manifest["score"]["lp"] == {
        "epochs": 2, "epochs_trained": 2, "sequences": 24, "computed": 24, "from_cache": 0
    }  # fmt: skip


def test_s2l_selects_over_the_real_loss_trajectories(clean_run):
    # the 8 records' real p0..p2 from the LP run above, clustered in 3 and sampled evenly
    args = ["select", str(clean_run), "--method", "s2l", "--clusters", "3", "--keep", "5"]
    assert main([*args, "--seed", "1", "-q"]) == 0
    manifest = json.loads((clean_run / "manifest.json").read_text())
    assert manifest["selection"]["method"] == "s2l" and manifest["counts"]["selected"] == 5
    rejected = [json.loads(line) for line in (clean_run / "rejected.jsonl").open()]
    assert len(rejected) == 3
    assert all("s2l: trajectory cluster" in r["detail"] and "of 3" in r["detail"] for r in rejected)
    first = (clean_run / "selected.jsonl").read_text()
    assert main([*args, "--seed", "1", "-q"]) == 0
    assert (clean_run / "selected.jsonl").read_text() == first


def test_rerun_after_success_trains_nothing(data, clean_run, capsys):
    started = time.monotonic()
    loud = [a for a in ARGS if a != "-q"]
    assert main(["score", str(data), "-o", str(clean_run), *loud]) == 0
    assert time.monotonic() - started < 30  # all P_e come from the cache; no epoch is retrained
    manifest = json.loads((clean_run / "manifest.json").read_text())
    assert manifest["score"]["computed"] == 0
    assert manifest["score"]["lp"]["epochs_trained"] == 0
    assert manifest["score"]["lp"]["from_cache"] == 24
    # the summary counts the LP passes, not the (empty) plain pass
    assert (
        "scored 8 records with smollm2-135m (template alpaca): learning percentage: 0 of 2 "
        "epochs trained now, 0 P0..P2 sequences computed, 24 cached ->" in capsys.readouterr().err
    )


def epoch_checkpoint(out: Path) -> bool:
    for state in out.glob("lp/*/checkpoint-*/trainer_state.json"):
        try:
            if json.loads(state.read_text())["epoch"] >= 1:
                return True
        except (OSError, ValueError):
            pass  # being written
    return False


def test_killed_after_first_epoch_resumes_to_the_same_result(data, clean_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tamis", "score", str(data), "-o", str(out), *ARGS]
    proc = subprocess.Popen(
        cmd, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not epoch_checkpoint(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before its first checkpoint could be seen"
    time.sleep(0.5)  # let the checkpoint's files land
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "scores.parquet").exists()
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    # nothing of the Trainer's on the console: no raw dictionary of each step's logs, no notice
    # about the tied output embeddings that a checkpoint stores once
    assert "{'loss'" not in resumed.stdout + resumed.stderr
    assert "missing keys" not in resumed.stderr
    a = pq.read_table(out / "scores.parquet").to_pylist()
    b = pq.read_table(clean_run / "scores.parquet").to_pylist()
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for column in ("p0", "p1", "p2", "lp", "lp_approx"):
            assert ra[column] == pytest.approx(rb[column], rel=1e-4, abs=1e-6), column
