"""How often the newer text flags of junk fire on real data: ``misspelt`` (at junk's cut),
``dangling`` and ``template_leak``'s chat-turn rule (fifth version), ``looping`` (sixth), on the
whole of Alpaca 52k and Dolly 15k (no noise added), with a seeded sample of the flagged records
to read by hand.

Usage: python benchmarks/text_flags_real.py [--results PATH]
       (default: benchmarks/results/text_flags_real.json)
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from alpaca_sample import SHARED
from part_relevance_dev import prompt_of

from tamis.scorers.endings import dangling
from tamis.scorers.junk import LOOP_COPIES, MISSPELT_CUT
from tamis.scorers.loops import loop_copies
from tamis.scorers.residue import chat_turn, template_leak
from tamis.scorers.spelling import misspelt

EXAMPLES = 10


def flags(row: dict) -> dict[str, bool]:
    prompt, response = prompt_of(row), row["output"]
    value = misspelt(response, prompt)
    return {
        "misspelt": value is not None and value >= MISSPELT_CUT,
        "misspelt_none": value is None,
        "dangling": dangling(response, prompt) == 1.0,
        "chat_turn": chat_turn(response) and template_leak(response, prompt) == 1.0,
        "looping": loop_copies(response, prompt) >= LOOP_COPIES,
    }


def study(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for r in rows:  # Dolly's fields as Alpaca's
        r.setdefault("output", r.get("response", ""))
        r.setdefault("input", r.get("context", ""))
    got = [flags(r) for r in rows]
    out: dict = {"records": len(rows)}
    for name in got[0]:
        hit = [r for r, g in zip(rows, got, strict=True) if g[name]]
        sample = random.Random(0).sample(hit, min(EXAMPLES, len(hit)))
        out[name] = {
            "flagged": len(hit),
            "share": round(len(hit) / len(rows), 5),
            "examples": [
                {"instruction": r["instruction"][:120], "end": r["output"][-160:]} for r in sample
            ],
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent / "results" / "text_flags_real.json"
    p.add_argument("--results", type=Path, default=default)
    args = p.parse_args()
    report = {
        "alpaca": study(SHARED / "alpaca_52k.jsonl"),
        "dolly": study(SHARED.parent / "dolly15k" / "dolly_15k.jsonl"),
    }
    for name, r in report.items():
        counts = {k: f"{v['flagged']} ({v['share']:.2%})" for k, v in r.items() if k != "records"}
        print(f"{name}: {r['records']} records; {counts}")
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
