"""The Ray engine on a real local Ray cluster (no mocks): the same outputs as the local engine,
resume by shard, and a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray  # the ray extra; `make test` installs it
from conftest import DEMO

from tamis.cli import main

SCORERS = "ce,ppl,ifd,tokens,heuristics,junk"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:20]
    rows.insert(3, {"instruction": "Say hi.", "output": ""})  # rejected: empty response
    rows.append(dict(rows[0]))  # a duplicate of the first record
    path = tmp_path_factory.mktemp("ray_data") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def local(data, tmp_path_factory):
    """The local engine's run on ``data``: the reference every Ray run must equal (made once)."""
    out = tmp_path_factory.mktemp("ray_local") / "local"
    return out, run(data, out)


def run(data: Path, out: Path, *extra: str) -> dict:
    args = ["run", str(data), "-o", str(out), "--keep", "0.5", "--skip-bad", "-q"]
    assert main([*args, "--scorer", SCORERS, "--batch-size", "4", *extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def rows(out: Path) -> list[dict]:
    return pq.read_table(out / "scores.parquet").to_pylist()


def assert_same_outputs(a: Path, b: Path) -> None:
    ra, rb = rows(a), rows(b)
    assert [r["id"] for r in ra] == [r["id"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        assert x.keys() == y.keys()
        for k, v in x.items():
            if isinstance(v, float):
                assert y[k] == pytest.approx(v, rel=1e-4), (x["id"], k)
            else:
                assert y[k] == v, (x["id"], k)
    for name in ("selected.jsonl", "rejected.jsonl"):
        assert (a / name).read_text() == (b / name).read_text(), name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["counts"] == mb["counts"]
    assert ma["score"]["status_counts"] == mb["score"]["status_counts"]


RAY = ["--engine", "ray", "--actors", "2", "--shard-records", "6"]


def test_ray_gives_the_local_engines_outputs_and_resumes_by_shard(cluster, data, local, tmp_path):
    local_out, local = local
    on_ray = run(data, tmp_path / "ray", *RAY)
    reasons = local["counts"]["rejected_by_reason"]
    assert reasons["empty_response"] == 1 and reasons["duplicate_id"] == 1
    # of the 20 good records 10 are kept; the rest are junk (computed over the whole dataset
    # after the shards, the same on both engines) or ranked out
    junk = sum(n for reason, n in reasons.items() if reason.startswith("junk_"))
    assert reasons.get("ranked_out", 0) + junk == 10
    assert_same_outputs(local_out, tmp_path / "ray")
    stats = on_ray["score"]
    assert stats["shards"] == 4 and stats["shards_reused"] == 0  # 20 good records, 6 per shard
    assert on_ray["model"]["sha256"] == local["model"]["sha256"]
    # a re-run reuses every complete shard and redoes a damaged one, alone
    shard = tmp_path / "ray" / "shards" / "00002.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    redone = run(data, tmp_path / "ray", *RAY)
    assert redone["score"]["shards"] == 4 and redone["score"]["shards_reused"] == 3
    assert_same_outputs(local_out, tmp_path / "ray")


def actor_pids() -> list[int]:
    """Processes of live actors running ShardScorer (Ray titles them ray::...ShardScorer...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::") and b"ShardScorer" in cmdline:
                pids.append(int(entry.name))
    return pids


def test_a_killed_ray_worker_is_replaced_and_no_record_is_lost(cluster, data, local, tmp_path):
    killed: list[int] = []
    earlier = set(actor_pids())  # an earlier test's actors may still be exiting

    def kill_one_actor():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = [p for p in actor_pids() if p not in earlier]
            if pids:
                time.sleep(1.0)  # let it start on a shard
                try:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                except ProcessLookupError:  # it ended in that second: look again
                    pass
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_actor)
    killer.start()
    run(data, tmp_path / "ray", *RAY)
    killer.join()
    assert killed, "no actor process was found to kill"
    assert_same_outputs(local[0], tmp_path / "ray")
    indices = [r["index"] for r in rows(tmp_path / "ray")]
    assert indices == list(range(22))  # every input record once


def test_what_ray_cannot_do_yet_is_refused_before_any_work(data, tmp_path, capsys):
    base = ["score", str(data), "-o", str(tmp_path / "out"), "--engine", "ray"]
    assert main([*base, "--scorer", "lp"]) == 2
    assert "--scorer lp is not available with --engine ray yet" in capsys.readouterr().err
    assert main([*base, "--model", "smollm2-135m", "--model", "gemma3-270m"]) == 2
    assert "an ensemble of models" in capsys.readouterr().err
    assert main([*base, "--actors", "0"]) == 2
    assert "--actors 0: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_clear_on_ray_gives_the_local_engines_outputs(cluster, write_jsonl, tmp_path):
    with DEMO.open(encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:8]
    records.insert(2, {"instruction": "Say hi.", "output": ""})  # rejected: empty response
    data = write_jsonl(records)
    args = ["--keep", "0.5", "--samples", "2", "--max-new-tokens", "12", "--skip-bad", "-q"]
    args += ["--correct-max-new-tokens", "24", "--batch-size", "4"]
    outs = {engine: tmp_path / engine for engine in ("local", "ray")}
    assert main(["clear", str(data), "-o", str(outs["local"]), *args]) == 0
    ray_args = ["clear", str(data), "-o", str(outs["ray"]), *args, *RAY[:4], "--shard-records"]
    assert main([*ray_args, "3"]) == 0
    a, b = (rows(outs[e]) for e in ("local", "ray"))
    assert [r["index"] for r in b] == list(range(9))  # every input record once
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k, v in x.items():
            assert y[k] == (pytest.approx(v, rel=1e-4) if isinstance(v, float) else v), k
    for name in ("selected.jsonl", "corrected.jsonl"):
        assert (outs["local"] / name).read_text() == (outs["ray"] / name).read_text(), name
    ra, rb = ([json.loads(s) for s in (o / "rejected.jsonl").open()] for o in outs.values())
    # the same records for the same reasons; "detail" prints confidences to 6 digits
    assert [{**r, "detail": None} for r in ra] == [{**r, "detail": None} for r in rb]
    ca, cb = ([json.loads(s) for s in (o / "corrections.jsonl").open()] for o in outs.values())
    assert [(c["id"], c["replacement"], c["applied"]) for c in ca] == [
        (c["id"], c["replacement"], c["applied"]) for c in cb
    ]
    assert [c["preference"] for c in cb] == pytest.approx([c["preference"] for c in ca], rel=1e-4)
    ma, mb = (json.loads((o / "manifest.json").read_text()) for o in outs.values())
    assert ma["counts"] == mb["counts"] and mb["counts"]["corrections_tried"] == 4
    stats = mb["clear"]["ray"]
    assert stats["confidence"]["shards"] == 3 and stats["correct"]["shards"] == 2
    assert stats["confidence"]["records"] == 8 and stats["correct"]["records"] == 4
    # a re-run reuses every complete shard of both steps
    assert main([*ray_args, "3"]) == 0
    again = json.loads((outs["ray"] / "manifest.json").read_text())["clear"]["ray"]
    assert again["confidence"]["shards_reused"] == 3 and again["correct"]["shards_reused"] == 2
    assert (outs["ray"] / "corrected.jsonl").read_text() == (
        outs["local"] / "corrected.jsonl"
    ).read_text()
