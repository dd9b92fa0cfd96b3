"""Scoring speed and memory: tamis against the reference approach and this machine's roofline.

Usage: python benchmarks/scoring.py [--model smollm2-135m] [--records 200] [--repeats 3]
           [--baseline-records 100] [--sizes 1000,4000,16000] [--no-scaling] [--bfloat16]
           [--scaling-only] [--scaling-scorers ppl,ifd]

On a fixed, seeded sample of Alpaca 52k records (Alpaca template, as the papers score), one run
measures:

- **tamis** ``ppl`` and ``ifd`` through ``tamis.scorers.score.score_dataset`` with a fresh cache
each
  repeat (encoding, batching and cache writes included): records/s and tokens/s, median of
  ``--repeats``.
- **reference** approach (Superfiltering, Cherry LLM, Small2Large): one record at a time, the
  record tokenized inside the loop, the model's own forward with ``labels`` (logits over the full
  vocabulary at every position), and for IFD a second, separate pass over every response alone.
  Written here for comparison only; it scores the same tokens, and its scores are checked against
  tamis' (largest relative difference reported).
- **bfloat16** (``--bfloat16``): tamis again with the model in bfloat16, its speed and the
  Spearman correlation and largest relative difference of its scores against tamis' float32
  scores on the same records (the difference column then compares with float32, not with the
  reference).
- **roofline**: float32 matrix-multiply GFLOP/s measured here (4096 x 4096, median of 5) divided
  by 2 x parameters FLOP per token: the most tokens/s float32 could reach.
- **scaling**: ``tamis score --scorer ppl,ifd`` (``--scaling-scorers``) on 1k, 4k and 16k records,
  each in its own process: wall time, records/s and peak resident memory (``ru_maxrss``), against a
  process that only loads the model. Results are kept by scorers under ``scaling``.
  ``--scaling-only`` runs this step alone and replaces the entry for its scorers in the existing
  results file, keeping its throughput measurements and other scaling runs; a run with
  ``--no-scaling`` likewise keeps the file's ``scaling`` entries.
- **junk** (``--junk-cost``, alone): the default scorers, which the junk score needs (``ce``,
  ``ppl``, the prompt-free pass of ``ifd``, ``lead_pmi``, ``end_nll``, ``peak_nll``, the text
  heuristics, then ``junk`` over the dataset), against ``ppl`` alone, interleaved in one run on
  the same records with a fresh cache each time: records/s (median of ``--repeats``) and the
  ratio; and ``topic`` alone (MiniLM's ``part_relevance``, part of the default scorers) with its
  share of their time. Kept under ``junk_cost`` in the results file.

Tokens are the records' tokens: the whole rendered record for ``ppl``, plus the response with
its short prefix for the unconditional pass of ``ifd``; padding is not counted. Tokens run are
those the forward passes read: tamis runs a prefix that records share (the template's
preamble) once per group, the reference runs every token. The roofline share is of tokens run.
Prints one table and writes benchmarks/results/scoring.json.
"""

import argparse
import json
import math
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALPACA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca52k" / "alpaca_52k.jsonl"
RESULTS = Path(__file__).parent / "results" / "scoring.json"
SEED = 6
TEMPLATE = "alpaca"
MAX_TOKENS = 2048


def write_sample(n: int, path: Path, seed: int = SEED) -> Path:
    """``n`` seeded Alpaca records as JSON Lines at ``path``."""
    with ALPACA.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    sample = random.Random(seed).sample(rows, n)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample), "utf-8")
    return path


def tamis_pass(lm, data, names: list[str], batch: int) -> dict:
    """One scoring run of ``data`` with a fresh cache; returns timing and the scores by id. With
    ``junk`` among ``names``, the junk score is computed too, inside the timing."""
    from tamis.model.cache import ScoreCache
    from tamis.scorers import JUNK, get_scorers
    from tamis.scorers.junk import add_junk
    from tamis.scorers.score import score_dataset

    with tempfile.TemporaryDirectory() as tmp:
        cache = ScoreCache(Path(tmp) / "nll.sqlite")
        t0 = time.perf_counter()
        result = score_dataset(data, lm, get_scorers(names), cache, TEMPLATE, MAX_TOKENS, batch)
        if JUNK in names:
            add_junk(result)
        wall = time.perf_counter() - t0
        cache.close()
    ok = [r for r in result.rows if r["status"] == "ok"]
    return {
        "wall_s": wall,
        "records": len(ok),
        "tokens": result.stats["tokens"],
        "tokens_run": result.stats["tokens_run"],
        "scores": {r["id"]: {k: r[k] for k in ("ppl", "ifd") if k in r} for r in ok},
    }


def reference_pass(lm, data, ifd: bool) -> dict:
    """The reference approach: batch 1, full logits, tokenize in the loop, IFD as a second pass."""
    import torch

    from tamis.model.render import encode, encode_unconditional

    def loss(e) -> float:
        ids = torch.tensor([e.input_ids])
        labels = torch.tensor([e.labels])
        return float(lm.model(input_ids=ids, labels=labels).loss)

    tokens, cond = 0, {}
    t0 = time.perf_counter()
    with torch.inference_mode():
        for rec in data.records:
            e = encode(rec, lm.tokenizer, TEMPLATE, MAX_TOKENS)
            cond[rec.id] = math.exp(loss(e))
            tokens += len(e.input_ids)
        scores = {rid: {"ppl": p} for rid, p in cond.items()}
        if ifd:
            for rec in data.records:
                e = encode(rec, lm.tokenizer, TEMPLATE, MAX_TOKENS)
                u = encode_unconditional(e, lm.tokenizer, TEMPLATE)
                scores[rec.id]["ifd"] = cond[rec.id] / math.exp(loss(u))
                tokens += len(u.input_ids)
    return {
        "wall_s": time.perf_counter() - t0,
        "records": len(scores),
        "tokens": tokens,
        "tokens_run": tokens,
        "scores": scores,
    }


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Median float32 GFLOP/s of an ``n x n`` matrix multiply on this machine."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def rates(runs: list[dict]) -> dict:
    """Median records/s and tokens/s over repeated runs (same records and tokens each time)."""
    walls = [r["wall_s"] for r in runs]
    wall = statistics.median(walls)
    return {
        "repeats": len(runs),
        "records": runs[0]["records"],
        "tokens": runs[0]["tokens"],
        "median_wall_s": wall,
        "wall_s": walls,
        "records_per_s": runs[0]["records"] / wall,
        "tokens_per_s": runs[0]["tokens"] / wall,
        "tokens_run": runs[0]["tokens_run"],
        "tokens_run_per_s": runs[0]["tokens_run"] / wall,
    }


def max_rel_diff(a: dict, b: dict, column: str) -> float:
    """Largest relative difference of ``column`` over the ids both score dicts hold."""
    common = [i for i in a if i in b and column in a[i] and column in b[i]]
    return max(abs(a[i][column] - b[i][column]) / abs(b[i][column]) for i in common)


def throughput(args, tmp: Path) -> dict:
    """tamis against the reference approach, in this process, on the same sample."""
    import torch

    from tamis.data.readers import read_dataset
    from tamis.model.loading import load_model

    lm = load_model(args.model)
    data = read_dataset(write_sample(args.records, tmp / "sample.jsonl"), skip_bad=True)
    small = read_dataset(write_sample(args.baseline_records, tmp / "small.jsonl"), skip_bad=True)
    out = {"threads": torch.get_num_threads(), "parameters": lm.model.num_parameters()}
    for name, names in (("ppl", ["ppl"]), ("ifd", ["ppl", "ifd"])):
        runs = [tamis_pass(lm, data, names, args.batch) for _ in range(args.repeats)]
        ref = [reference_pass(lm, small, name == "ifd") for _ in range(args.repeats)]
        check = tamis_pass(lm, small, names, args.batch)["scores"]
        out[name] = {
            "tamis": rates(runs),
            "reference": rates(ref),
            "max_rel_diff": max_rel_diff(check, ref[0]["scores"], name),
        }
        out[name]["speedup_records_per_s"] = (
            out[name]["tamis"]["records_per_s"] / out[name]["reference"]["records_per_s"]
        )
        t, r = out[name]["tamis"], out[name]["reference"]
        print(
            f"{name}: tamis {t['records_per_s']:.2f} rec/s, reference {r['records_per_s']:.2f} "
            f"rec/s, max rel. diff {out[name]['max_rel_diff']:.1e}",
            flush=True,
        )
        out[name]["float32_scores"] = runs[0]["scores"]
    if args.bfloat16:
        bfloat16(args, data, out)
    for name in ("ppl", "ifd"):
        del out[name]["float32_scores"]
    return out


def bfloat16(args, data, out: dict) -> None:
    """tamis with ``--precision bfloat16`` on the same records: speed, and Spearman agreement
    with the float32 scores (>= 0.99 to count as the same ranking)."""
    from scipy.stats import spearmanr

    from tamis.model.loading import load_model

    lm = load_model(args.model, "cpu", "bfloat16")
    for name, names in (("ppl", ["ppl"]), ("ifd", ["ppl", "ifd"])):
        runs = [tamis_pass(lm, data, names, args.batch) for _ in range(args.repeats)]
        f32, b16 = out[name]["float32_scores"], runs[0]["scores"]
        ids = sorted(set(f32) & set(b16))
        rho = spearmanr([f32[i][name] for i in ids], [b16[i][name] for i in ids]).statistic
        out[name]["tamis_bfloat16"] = rates(runs)
        out[name]["bfloat16_spearman"] = float(rho)
        out[name]["bfloat16_max_rel_diff"] = max_rel_diff(b16, f32, name)
        rate = out[name]["tamis_bfloat16"]["records_per_s"]
        print(f"{name}: tamis bfloat16 {rate:.2f} rec/s, Spearman {rho:.4f}", flush=True)


def peak_child(args, size: int | None, tmp: Path) -> dict:
    """Score ``size`` records with ``tamis score`` in a child process (or, with ``size`` None,
    only load the model); returns wall time and peak resident memory."""
    cmd = [sys.executable, __file__, "--model", args.model, "--batch", str(args.batch)]
    cmd += ["--scaling-scorers", ",".join(args.scaling_scorers)]
    cmd += ["--child", str(size or 0), "--tmp", str(tmp)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(args) -> None:
    """Inside the child process: one measured job, JSON on the last line of stdout."""
    from tamis.model.loading import load_model

    tmp = Path(args.tmp)
    if args.child == 0:
        load_model(args.model)
        result = {"records": 0, "wall_s": 0.0}
    else:
        from tamis.engines.jobs import ScoreConfig, score_job

        data = write_sample(args.child, tmp / f"scale{args.child}.jsonl")
        cfg = ScoreConfig(
            model=args.model,
            scorers=tuple(args.scaling_scorers),
            template=TEMPLATE,
            batch_size=args.batch,
            skip_bad=True,  # Alpaca 52k has records with empty responses
        )
        t0 = time.perf_counter()
        manifest = score_job(data, tmp / f"scale{args.child}", cfg, progress=False)
        result = {
            "records": manifest["input"]["records"],
            "wall_s": time.perf_counter() - t0,
            "tokens": manifest["score"]["tokens"],
        }
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def scaling(args, tmp: Path) -> dict:
    """Wall time and peak memory for each size, each in its own process."""
    base = peak_child(args, None, tmp)
    rows = []
    for size in args.sizes:
        r = peak_child(args, size, tmp)
        r["records_per_s"] = r["records"] / r["wall_s"]
        rows.append(r)
        print(f"scaling {size}: {r}", flush=True)
    first = rows[0]
    for r in rows:
        r["wall_ratio_to_first"] = r["wall_s"] / first["wall_s"]
        r["size_ratio_to_first"] = r["records"] / first["records"]
        r["peak_ratio_to_first"] = r["peak_rss_mib"] / first["peak_rss_mib"]
    return {
        "command": " ".join(sys.argv),
        "machine": machine(),
        "scorers": list(args.scaling_scorers),
        "model_only_peak_rss_mib": base["peak_rss_mib"],
        "sizes": rows,
    }


def machine() -> dict:
    """CPU model, cores and versions, for the results file."""
    import torch

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def table(report: dict) -> str:
    """The one table this script prints (also pasted into docs/performance.md)."""
    t = report["throughput"]
    roof = report["roofline"]["tokens_per_s"]
    lines = [
        "| scorer | approach | records/s | tokens/s | tokens run/s | of roofline | speed-up "
        "| max rel. diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("ppl", "ifd"):
        ref = t[name]["reference"]["records_per_s"]
        for who in ("tamis", "tamis_bfloat16", "reference"):
            if who not in t[name]:
                continue
            r = t[name][who]
            up = f"{r['records_per_s'] / ref:.2f}x" if who != "reference" else "1x"
            diff = {
                "tamis": f"{t[name]['max_rel_diff']:.1e}",
                "tamis_bfloat16": f"{t[name].get('bfloat16_max_rel_diff', 0):.1e} "
                f"(Spearman {t[name].get('bfloat16_spearman', 0):.4f})",
            }.get(who, "")
            lines.append(
                f"| {name} | {who} | {r['records_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
                f"{r['tokens_run_per_s']:.0f} | {r['tokens_run_per_s'] / roof:.0%} | {up} | "
                f"{diff} |"
            )
    return "\n".join(lines)


def write_results(report: dict) -> None:
    """Write the results file. An entry this run did not measure (``scaling`` after
    ``--no-scaling``, the throughput after ``--scaling-only``) is kept from the file. Scaling
    runs are kept by scorers (``scaling["ppl"]``, ``scaling["ifd"]``): a run replaces only the
    one for its own scorers."""
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs = old.get("scaling", {})
    if "sizes" in runs:  # a file from before runs were kept by scorers
        runs = {",".join(runs["scorers"]): runs}
    if "scaling" in report:
        new = report["scaling"]
        report = {**report, "scaling": {**runs, ",".join(new["scorers"]): new}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**old, **report}, indent=2) + "\n")


def junk_cost(args) -> None:
    """``ppl`` alone against the default scorers with ``junk``, interleaved, on one sample."""
    from tamis.data.readers import read_dataset
    from tamis.model.loading import load_model
    from tamis.scorers import DEFAULT_SCORERS

    lm = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        data = read_dataset(write_sample(args.records, Path(tmp) / "s.jsonl"), skip_bad=True)
        runs: dict[str, list[dict]] = {"ppl": [], "junk": [], "topic": []}
        for _ in range(args.repeats):
            runs["ppl"].append(tamis_pass(lm, data, ["ppl"], args.batch))
            runs["junk"].append(tamis_pass(lm, data, list(DEFAULT_SCORERS), args.batch))
            runs["topic"].append(tamis_pass(lm, data, ["topic"], args.batch))
    out = {name: rates(r) for name, r in runs.items()}
    out["junk_time_vs_ppl"] = out["ppl"]["records_per_s"] / out["junk"]["records_per_s"]
    # the share of the default scorers' time that MiniLM's part_relevance (off_topic) takes
    out["topic_share_of_junk"] = out["junk"]["records_per_s"] / out["topic"]["records_per_s"]
    out["command"] = " ".join(sys.argv)
    out["machine"] = machine()
    write_results({"junk_cost": out})
    print(
        f"ppl: {out['ppl']['records_per_s']:.2f} rec/s; default scorers with junk: "
        f"{out['junk']['records_per_s']:.2f} rec/s ({out['junk_time_vs_ppl']:.2f}x the time); "
        f"topic (MiniLM) alone: {out['topic']['records_per_s']:.2f} rec/s "
        f"({out['topic_share_of_junk']:.0%} of the default scorers' time)"
    )


def scaling_only(args) -> None:
    """The scaling step alone, written into the existing results file."""
    with tempfile.TemporaryDirectory() as tmp:
        report = {"scaling": scaling(args, Path(tmp))}
    write_results(report)
    for r in report["scaling"]["sizes"]:
        print(
            f"{r['records']:>6} records: {r['wall_s']:.0f} s ({r['wall_ratio_to_first']:.2f}x "
            f"for {r['size_ratio_to_first']:.0f}x the records), {r['records_per_s']:.2f} rec/s, "
            f"peak {r['peak_rss_mib']:.0f} MiB ({r['peak_ratio_to_first']:.3f}x)"
        )
    print(f"model only: peak {report['scaling']['model_only_peak_rss_mib']:.0f} MiB")
    print(f"wrote {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=200, help="records for tamis throughput")
    parser.add_argument("--baseline-records", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--sizes", default="1000,4000,16000", type=lambda s: [int(x) for x in s.split(",")]
    )
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument(
        "--scaling-only",
        action="store_true",
        help="only the scaling step; replaces the entry for its scorers under 'scaling' in the "
        "existing results file",
    )
    parser.add_argument(
        "--scaling-scorers", default="ppl,ifd", type=lambda s: s.split(","), help="scaling step"
    )
    parser.add_argument(
        "--bfloat16", action="store_true", help="also tamis in bfloat16, against float32"
    )
    parser.add_argument(
        "--junk-cost",
        action="store_true",
        help="only ppl against the default scorers with junk; written under 'junk_cost'",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args)
        return
    if args.scaling_only:
        scaling_only(args)
        return
    if args.junk_cost:
        junk_cost(args)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        gflops = matmul_gflops()
        report = {"command": " ".join(sys.argv), "machine": machine()}
        report["throughput"] = throughput(args, Path(tmp))
        params = report["throughput"]["parameters"]
        report["roofline"] = {
            "matmul_gflops": gflops,
            "flop_per_token": 2 * params,
            "tokens_per_s": gflops * 1e9 / (2 * params),
        }
        if not args.no_scaling:
            report["scaling"] = scaling(args, Path(tmp))
    report["wall_s"] = time.perf_counter() - started
    write_results(report)
    print(table(report))
    print(f"roofline: {gflops:.0f} GFLOP/s / {2 * params / 1e6:.0f} MFLOP per token")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
