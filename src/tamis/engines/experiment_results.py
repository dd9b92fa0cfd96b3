"""An experiment's results: each run's summary, the table over seeds, each arm against random,
and the plots."""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from tamis.base.files import atomic_open, write_json


def write_results(cfg, out: Path, runs: list, arms: list, start: float, complete: bool) -> dict:
    runs = sorted(runs, key=lambda r: (arms.index(r["arm"]), r["seed"]))  # the arms' order
    results = summarise(cfg, runs, time.perf_counter() - start)
    results["complete"] = complete
    write_json(out / "results.json", results)
    with atomic_open(out / "results.md") as f:
        f.write(table(results))
        if results.get("versus_random"):
            f.write("\n" + versus_table(results["versus_random"]))
        if not complete:
            f.write("\nPart of the runs: run the experiment again to finish it.\n")
    _plots(out, runs)
    return results


def run_summary(arm: str, seed: int, run_dir: Path) -> dict[str, Any]:
    train = json.loads((run_dir / "train" / "manifest.json").read_text())["train"]
    ev = json.loads((run_dir / "eval" / "eval.json").read_text())
    log = [json.loads(x) for x in (run_dir / "train" / "train_log.jsonl").read_text().splitlines()]
    return {
        "arm": arm,
        "seed": seed,
        "records": train["records_trained"],
        "train_tokens": train["tokens"],
        "train_wall_s": train["wall_s"],
        "loss": ev["loss"],
        "perplexity": ev["perplexity"],
        "rouge_l": ev.get("rouge_l"),
        "exact_match": ev.get("exact_match"),
        "junk_flagged": ev.get("junk_flagged"),
        "curve": [(row["step"], row["loss"]) for row in log],
    }


METRICS = ("loss", "perplexity", "rouge_l", "exact_match", "junk_flagged", "train_tokens",
           "train_wall_s")  # fmt: skip


def summarise(cfg, runs: list[dict], wall: float) -> dict[str, Any]:
    arms: dict[str, dict[str, Any]] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        these = [r for r in runs if r["arm"] == arm]
        summary: dict[str, Any] = {"seeds": len(these), "records": these[0]["records"]}
        twins = {r.get("same_as") for r in these}
        if len(twins) == 1 and None not in twins:
            summary["same_as"] = twins.pop()
        for m in (*METRICS, "noisy_records"):
            values = [r[m] for r in these if r.get(m) is not None]
            if values:
                summary[m] = {
                    "mean": statistics.fmean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                }
        arms[arm] = summary
    return {
        "config": cfg.__dict__,
        "arms": arms,
        "versus_random": versus_random(runs),
        "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs],
        "wall_s": wall,
    }


def versus_random(runs: list[dict]) -> dict[str, Any] | None:
    """Each arm's held-out loss against random's, seed by seed (None until random has two
    seeds). The bar: more than twice random's standard deviation over seeds; an arm beats random
    when it is lower by more than the bar on every seed random ran. Where ``full`` ran too, the
    loss per doubling of the training tokens from random to full (a straight line in log tokens
    through the two: an interpolation) and the bar as a multiple of random's tokens: what a pick
    must be worth, in random data, to pass it."""
    by: dict[str, dict[int, dict]] = {}
    for r in runs:
        if r.get("loss") is not None:
            by.setdefault(r["arm"], {})[r["seed"]] = r
    rnd = by.get("random", {})
    if len(rnd) < 2:
        return None
    bar = 2 * statistics.stdev(r["loss"] for r in rnd.values())
    out: dict[str, Any] = {"bar": bar, "arms": {}}
    for arm, seeds in by.items():
        common = sorted(set(seeds) & set(rnd))
        if arm == "random" or not common:
            continue
        diffs = [seeds[s]["loss"] - rnd[s]["loss"] for s in common]
        out["arms"][arm] = {
            "seeds": common,
            "paired": diffs,
            "mean": statistics.fmean(diffs),
            # full trains on every token, not the budget: no claim at equal tokens
            "beats_random": None
            if arm == "full"
            else len(common) == len(rnd) and all(d < -bar for d in diffs),
        }
    full = [s for s in by.get("full", {}) if s in rnd]
    if full:
        gain = statistics.fmean(rnd[s]["loss"] - by["full"][s]["loss"] for s in full)
        ratio = statistics.fmean(by["full"][s]["train_tokens"] for s in full) / statistics.fmean(
            rnd[s]["train_tokens"] for s in full
        )
        if gain > 0 and ratio > 1:
            out["nats_per_doubling"] = slope = gain / math.log2(ratio)
            out["bar_in_tokens"] = tokens_worth(bar, slope)
    return out


def tokens_worth(gain: float, slope: float) -> float | None:
    """A loss ``gain`` as a multiple of the tokens, at ``slope`` nats per doubling: ``2 **
    (gain / slope)``; None past 60 doublings ("never"; 2 ** 1024 overflows a float)."""
    return 2 ** (gain / slope) if gain / slope < 60 else None


def versus_table(v: dict[str, Any]) -> str:
    """:func:`versus_random` in words and a table."""
    lines = [
        f"Held-out loss against random, seed by seed (negative: lower than random). The bar: "
        f"more than {v['bar']:.4f} lower (twice random's standard deviation over seeds) on "
        "every seed.",
    ]
    if v.get("bar_in_tokens") is not None:
        lines[0] += (
            f" From random to full the loss falls {v['nats_per_doubling']:.4f} per doubling of "
            f"the training tokens, so the bar asks a pick worth {v['bar_in_tokens']:.2f}x "
            "random's tokens."
        )
    lines += ["", "| arm | difference per seed | mean | beats random |", "|---|---|---|---|"]
    for arm, a in v["arms"].items():
        per_seed = ", ".join(
            f"{d:+.4f} (seed {s})" for s, d in zip(a["seeds"], a["paired"], strict=True)
        )
        verdict = {True: "yes", False: "no", None: "(all the tokens)"}[a["beats_random"]]
        lines.append(f"| {arm} | {per_seed} | {a['mean']:+.4f} | {verdict} |")
    return "\n".join(lines) + "\n"


def table(results: dict) -> str:
    cols = [m for m in (*METRICS, "noisy_records") if any(m in a for a in results["arms"].values())]
    lines = ["| arm | records | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for arm, s in results["arms"].items():
        cells = [f"{s[m]['mean']:.4g} ± {s[m]['std']:.2g}" if m in s else "" for m in cols]
        name = f"{arm} (= {s['same_as']})" if s.get("same_as") else arm
        lines.append(f"| {name} | {s['records']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plots(out: Path, runs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(r["arm"] for r in runs))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, arm in enumerate(arms):
        for j, r in enumerate(x for x in runs if x["arm"] == arm):
            steps, losses = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
            ax.plot(steps, losses, color=f"C{k}", alpha=0.7, label=arm if j == 0 else None)
    ax.set(xlabel="optimizer step", ylabel="training loss", title="Training loss per arm")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=120)
    plt.close(fig)
    # One panel per metric measured; the axis is fitted to the values (a bar from zero would
    # hide differences of a few hundredths), each seed a dot, the mean and its spread a bar.
    metrics = [
        m
        for m in ("loss", "rouge_l", "exact_match", "junk_flagged")
        if any(r.get(m) is not None for r in runs)
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, arm in enumerate(arms):
            vals = [r[metric] for r in runs if r["arm"] == arm and r.get(metric) is not None]
            if not vals:
                continue
            ax.scatter([k - 0.1] * len(vals), vals, color=f"C{k}", alpha=0.6, zorder=3)
            spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
            ax.errorbar(
                k + 0.1, statistics.fmean(vals), yerr=spread, fmt="s", color=f"C{k}", capsize=4
            )
        ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(arms) - 0.5)
        ax.set_title(f"held-out {metric}: seeds, mean ± sd")
    fig.tight_layout()
    fig.savefig(out / "metrics.png", dpi=120)
    plt.close(fig)
