"""Ray engine: records/s with 1 and 2 actors, and its overhead against local scoring.

Usage: python benchmarks/ray_scaling.py [--records 200] [--shard-records 25] [--repeats 3]
           [--model smollm2-135m]

Scores one seeded Alpaca sample (Alpaca template, ``ppl`` + ``ifd``) three ways, each from an empty
output folder and cache, so nothing is reused:

- ``tamis score`` with the local engine (all cores, one process);
- ``--engine ray --actors 1 --cpus-per-actor N`` (one actor with every core);
- ``--engine ray --actors 2 --cpus-per-actor N/2`` (two actors, half the cores each).

Wall time is the whole job as a user sees it (reading, Ray start, model loading in each actor,
scoring, writing). The local Ray instance starts inside each job, as it does for a user without
``--address``. Each way runs ``--repeats`` times, the ways taking turns, and the median is
reported. Writes benchmarks/results/ray_scaling.json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scoring import write_sample  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ray_scaling.json"


def timed_job(data: Path, out: Path, args, extra: list[str]) -> dict:
    import subprocess

    cmd = [sys.executable, "-m", "tamis", "score", str(data), "-o", str(out), "-q"]
    cmd += ["--model", args.model, "--template", "alpaca", "--scorer", "ppl,ifd", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    manifest = json.loads((out / "manifest.json").read_text())
    records = manifest["input"]["records"]
    return {"wall_s": wall, "records": records, "records_per_s": records / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--shard-records", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    shard = ["--shard-records", str(args.shard_records)]
    runs = {
        "local": [],
        "ray, 1 actor": ["--engine", "ray", "--actors", "1", "--cpus-per-actor", str(cores)],
        "ray, 2 actors": ["--engine", "ray", "--actors", "2", "--cpus-per-actor", str(cores / 2)],
    }
    report: dict = {"command": " ".join(sys.argv), "cores": cores, "records": args.records}
    walls: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_sample(args.records, Path(tmp) / "sample.jsonl")
        for repeat in range(args.repeats):
            for i, (name, extra) in enumerate(runs.items()):
                extra = [*extra, *shard] if extra else []
                out = Path(tmp) / f"out{repeat}-{i}"  # fresh: nothing reused
                job = timed_job(data, out, args, extra)
                walls[name].append(job["wall_s"])
                print(f"{name:<14} {job['wall_s']:7.1f} s  {job['records_per_s']:.2f} records/s",
                      flush=True)  # fmt: skip
    for name in runs:
        wall = statistics.median(walls[name])
        rate = args.records / wall
        report[name] = {"wall_s": wall, "walls_s": walls[name], "records_per_s": rate}
    base = report["local"]["wall_s"]
    for name in runs:
        report[name]["wall_ratio_to_local"] = report[name]["wall_s"] / base
    print(f"median of {args.repeats}:")
    for name in runs:
        r = report[name]
        print(f"{name:<14} {r['wall_s']:7.1f} s  {r['records_per_s']:.2f} records/s  "
              f"x{r['wall_ratio_to_local']:.2f} local's wall time")  # fmt: skip
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
