"""``tamis eval MODEL --data TEST -o DIR``: how good is a (fine-tuned) model on held-out records.

- **Loss**: the response tokens' mean negative log-likelihood given the prompt, over every token
  of the test set (``loss``; ``perplexity = exp(loss)``), with the same masking and template as
  scoring and training; ``record_ce_mean`` averages per record instead.
- **Generation** (unless ``--no-generate``): a greedy answer per prompt (up to
  ``--max-new-tokens``), ROUGE-L F1 against the reference response, and exact match over the
  records whose reference has at most ``--short-words`` words (short answers).
- **Pairwise preference** (``--against B --judge J``): model B answers the same prompts, and
  judge J compares the two answers in both orders (:func:`tamis.scorers.judge.preference`,
  probabilities from logits); ``preference`` is the mean probability that MODEL's answer is the
  better one.

Writes ``DIR/eval.json`` (every number, with the models and settings) and
``DIR/eval_records.jsonl`` (per record: id, ce, answer, ROUGE-L, exact match, preference).
Generations and judgements are cached in ``DIR/cache``, so a re-run is fast.
"""

from __future__ import annotations

import copy
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import write_json, write_jsonl
from tamis.base.metrics import exact_match, rouge_l
from tamis.base.version import __version__


def eval_job(model: str, data_path: str | Path, out_dir: str | Path, opts: dict[str, Any]):
    """Evaluate ``model`` on ``data_path``; ``opts`` holds the command's options (see
    :func:`add_parser`). Returns the report written to ``eval.json``."""
    from tamis.data.readers import read_dataset
    from tamis.engines.manifest import input_info, model_info, open_cache, versions
    from tamis.model.loading import load_model
    from tamis.scorers import get_scorers
    from tamis.scorers.score import score_dataset

    start = time.perf_counter()
    out_dir = Path(out_dir)
    if opts.get("generate_limit") is not None and opts["generate_limit"] < 1:
        raise TamisError(f"--generate-limit {opts['generate_limit']}: must be at least 1")
    if (opts["against"] is None) != (opts["judge"] is None):
        raise TamisError("--against and --judge go together: give both, or neither")
    data = read_dataset(data_path, opts["format"], opts["skip_bad"], fields=opts.get("fields", ()))
    lm = load_model(model, opts["device"], opts.get("precision", "auto"))
    with open_cache(out_dir, None) as cache:
        result = score_dataset(
            data, lm, get_scorers(["ce", "tokens"]), cache, opts["template"],
            opts["max_tokens"], opts["batch_size"], not opts["quiet"],
            keep_encoded=opts["generate"],
        )  # fmt: skip
        ok = [r for r in result.rows if r["status"] == "ok"]
        if not ok:
            raise TamisError(f"{data_path}: no record could be scored; see --max-tokens")
        records = {r.index: r for r in data.records}
        order = [r["index"] for r in ok]
        per = {i: {"id": records[i].id, "ce": row["ce"]} for i, row in zip(order, ok, strict=True)}
        n_tok = sum(r["response_tokens"] for r in ok)
        loss = sum(r["ce"] * r["response_tokens"] for r in ok) / n_tok
        report: dict[str, Any] = {
            "loss": loss,
            "perplexity": math.exp(loss),
            "record_ce_mean": sum(r["ce"] for r in ok) / len(ok),
            "records": len(ok),
            "response_tokens": n_tok,
            "not_scored": {r["id"]: r["status"] for r in result.rows if r["status"] != "ok"},
        }
        if opts["generate"]:
            limit = opts.get("generate_limit")
            order = order[:limit] if limit else order  # the test set's order: a random split
            answers = _answers(lm, result.encoded, order, cache, opts)
            report.update(_reference_metrics(answers, records, order, per, opts["short_words"]))
            report.update(_flagged(answers, records, order, per))
            if opts["against"]:
                report.update(_preference(answers, records, order, per, result, cache, opts))
    report = {
        "tamis_version": __version__,
        "model": model_info(lm, result.template),
        "input": input_info(data_path, data),
        "settings": {k: v for k, v in opts.items() if k != "quiet"},
        **report,
        "wall_s": time.perf_counter() - start,
        "versions": versions(),
    }
    write_json(out_dir / "eval.json", report)
    write_jsonl(out_dir / "eval_records.jsonl", per.values())
    return report


def _answers(lm, encoded, order, cache, opts) -> list[str]:
    from tamis.model.generate import Request, generate

    reqs = [Request(encoded[i].input_ids[: encoded[i].n_prompt]) for i in order]
    return [
        g.text
        for g in generate(lm, reqs, cache, 0.0, opts["max_new_tokens"], 0, opts["batch_size"])
    ]


def _reference_metrics(answers, records, order, per, short_words: int) -> dict[str, Any]:
    rouge, em = [], []
    for i, answer in zip(order, answers, strict=True):
        reference = records[i].response
        per[i].update(answer=answer, rouge_l=rouge_l(answer, reference))
        rouge.append(per[i]["rouge_l"])
        if len(reference.split()) <= short_words:
            per[i]["exact_match"] = exact_match(answer, reference)
            em.append(per[i]["exact_match"])
    return {
        "rouge_l": sum(rouge) / len(rouge),
        "exact_match": sum(em) / len(em) if em else None,
        "exact_match_records": len(em),
    }


def _answered(records, order, answers) -> list:
    """Copies of the records at ``order`` with ``answers`` in place of their responses."""
    shown = []
    for i, answer in zip(order, answers, strict=True):
        rec = copy.copy(records[i])
        rec.response = answer
        shown.append(rec)
    return shown


def _flagged(answers, records, order, per) -> dict[str, Any]:
    """The share of greedy answers a junk text flag fires on (a loop, a copy of the prompt, a
    placeholder, markup, a template marker, ...: :func:`tamis.scorers.junk.text_flags`)."""
    from tamis.scorers.junk import text_flags

    flags = text_flags(_answered(records, order, answers))
    for i, flag in zip(order, flags, strict=True):
        per[i]["junk_flag"] = flag
    fired = [f for f in flags if f]
    return {
        "junk_flagged": len(fired) / len(flags) if flags else None,
        "junk_flagged_by": dict(sorted(Counter(fired).items())),
        "generated_records": len(flags),
    }


def _preference(answers, records, order, per, result, cache, opts) -> dict[str, Any]:
    from tamis.model.loading import load_model
    from tamis.model.render import TooLong, encode, resolve_template
    from tamis.scorers.judge import preference

    other = load_model(opts["against"], opts["device"], opts.get("precision", "auto"))
    # B reads the prompts through its own tokenizer and template; a record too long for it is
    # left out of the comparison (and counted).
    template = resolve_template(opts["template"], other.tokenizer)
    theirs_encoded = {}
    for i in order:
        try:
            theirs_encoded[i] = encode(records[i], other.tokenizer, template, opts["max_tokens"])
        except TooLong:
            continue
    both = [i for i in order if i in theirs_encoded]
    theirs = _answers(other, theirs_encoded, both, cache, opts)
    del other
    judge = load_model(opts["judge"], opts["device"], opts.get("precision", "auto"))
    mine = dict(zip(order, answers, strict=True))
    # preference() gives P(candidate better than the record's response): MODEL's answer goes in
    # as the response and B's as the candidate; both orders are asked.
    shown = _answered(records, both, [mine[i] for i in both])
    p_theirs = preference(judge, shown, theirs, cache, opts["batch_size"])
    wins = [1.0 - p for p in p_theirs]
    for i, w in zip(both, wins, strict=True):
        per[i]["preference"] = w
    return {
        "preference": sum(wins) / len(wins) if wins else None,
        "preferred_share": sum(w > 0.5 for w in wins) / len(wins) if wins else None,
        "preference_records": len(wins),
        "against": opts["against"],
        "judge": opts["judge"],
    }
