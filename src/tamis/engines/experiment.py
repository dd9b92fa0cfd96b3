"""``tamis experiment CONFIG.yaml -o DIR``: does selecting with the small model help the target?

For one data pool and one target model, every arm is trained with the same hyper-parameters and
several seeds, and evaluated on the same held-out test set:

- ``full``: the whole pool;
- ``top-COL``: the best ``budget`` records by each score column in ``scorers`` (its better
  direction), scored by the small ``scorer_model``;
- ``random``: ``budget`` records drawn at random (a new draw per seed);
- ``lowest-COL`` (``lowest: true``): the worst ``budget`` by the first scorer, to show the
  direction matters;
- with ``arms:`` (in place of ``top-COL`` and ``lowest-COL``): one arm per named ``tamis select``
  selection (:data:`ARM_KEYS`): the default recipe, Superfiltering (``by: ifd``), ``s2l``,
  ``diverse``, the same without the junk filter, ...

``budget_tokens`` gives every arm but ``full`` the same budget in training tokens
(``--keep-tokens``), so the arms are compared at equal compute; ``random`` is then a seeded random
order of the whole pool under that budget. ``budget_counts: target`` counts the target's tokens as
it trains on them (its tokenizer, template and ``max_tokens``; :mod:`~.target_tokens`) in place
of the scorer's tokens of whole records.

Noisy-pool mode (``noise: {rate, kinds, seed}``) corrupts a known share of the pool with
:func:`tamis.data.noise.corrupt` (never the test set) and reports how many corrupted records each
arm trained on.

Steps, each skipped when its output is already complete, so a killed experiment resumes arm by
arm: ``data/`` (pool, test, noise labels), ``scores/`` (``tamis score``), ``arms/ARM/seedS/``
(``train.jsonl``, ``tamis train`` output, ``eval/``). Results: ``results.json``,
``results.md`` (mean and standard deviation over seeds per arm; each arm against random, seed
by seed: :func:`~.experiment_results.versus_random`), ``loss_curves.png`` and
``metrics.png``, rewritten after every run (``complete: false`` until the last). Runs go seed
by seed (every arm on the first seed, then the next), full-data runs last; an arm that chose
exactly the records of an earlier arm on the same seed reuses its run (``same_as``) instead of
training the same model twice.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import read_jsonl, write_jsonl
from tamis.engines.experiment_results import run_summary, write_results


@dataclass
class ExperimentConfig:
    pool: str
    pool_size: int | None = None  # a seeded sample of the pool file (before the test split)
    test: str | None = None  # held-out file; else `test_size` records split off the pool
    test_size: int = 200
    split_seed: int = 0
    budget: float | int = 0.25  # fraction of the pool, or a count
    # a budget in training tokens (fraction of the pool's, or a count): every arm but full gets
    # the same number of tokens, so methods that prefer long records get no more compute
    budget_tokens: float | int | None = None
    # whose tokens budget_tokens counts: "scorer" (the scorer's tokens of whole records) or
    # "target" (the target's tokens as it trains on them: tamis.engines.target_tokens)
    budget_counts: str = "scorer"
    # selection arms as `tamis select` options, besides full and random (ARM_KEYS); None: the
    # top budget by each of `scorers` (and `lowest`)
    arms: list[dict[str, Any]] | None = None
    lp: dict[str, Any] = field(default_factory=dict)  # --scorer lp options (an s2l arm)
    scorer_model: str = "smollm2-135m"
    scorers: list[str] = field(default_factory=lambda: ["ppl"])
    score_template: str = "alpaca"
    lowest: bool = False
    noise: dict[str, Any] | None = None  # {rate, kinds, seed}
    target: dict[str, Any] = field(default_factory=dict)  # tamis train options
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    eval: dict[str, Any] = field(default_factory=dict)  # tamis eval options

    @classmethod
    def load(cls, path: Path) -> ExperimentConfig:
        import yaml

        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise TamisError(f"{path}: cannot read the experiment configuration ({e})") from None
        if not isinstance(raw, dict) or "pool" not in raw:
            raise TamisError(f"{path}: a mapping with at least 'pool: FILE' is needed")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise TamisError(
                f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid keys: "
                f"{', '.join(cls.__dataclass_fields__)}"
            )
        cfg = cls(**raw)
        if cfg.budget_counts not in ("scorer", "target"):
            raise TamisError(f"{path}: budget_counts '{cfg.budget_counts}': give scorer or target")
        if cfg.budget_counts == "target" and cfg.budget_tokens is None:
            raise TamisError(f"{path}: budget_counts: target counts budget_tokens; set it")
        base = path.parent
        cfg.pool = str((base / cfg.pool).resolve())
        if cfg.test:
            cfg.test = str((base / cfg.test).resolve())
        return cfg


# What an arm in `arms` may set: `name` and these fields of tamis.select.selection.Selection.
ARM_KEYS = ("by", "method", "direction", "drop_junk_above", "drop_ifd_above", "clusters",
            "max_similarity")  # fmt: skip


def run_experiment(config_path: str | Path, out_dir: str | Path, progress: bool = True) -> dict:
    """Run (or resume) every arm and seed; returns ``results.json``'s content."""
    from tamis.engines.jobs import ScoreConfig, score_job

    start = time.perf_counter()
    cfg = ExperimentConfig.load(Path(config_path))
    out = Path(out_dir)
    pool, test, labels = _prepare_data(cfg, out / "data")
    scores_dir = out / "scores"
    if not (scores_dir / "manifest.json").is_file():
        score_job(
            out / "data" / "pool.jsonl",
            scores_dir,
            ScoreConfig(
                model=cfg.scorer_model,
                template=cfg.score_template,
                scorers=_scorers(cfg),
                skip_bad=True,
                train=_lp_config(cfg),
            ),  # fmt: skip
            progress,
        )
    arms = _arms(cfg, pool, scores_dir)
    runs, done = [], {}
    # Seed by seed, so that an experiment stopped part-way has every arm paired on its first
    # seeds; full last: the longest runs, and the least needed to compare selections with random.
    order = [(a, s) for s in cfg.seeds for a in arms if a != "full"]
    order += [("full", s) for s in cfg.seeds if "full" in arms]
    for arm, seed in order:
        chosen = arms[arm](seed)
        twin = done.get((seed, tuple(chosen)))
        if twin:  # the same records and seed train the same model: reuse that run
            runs.append(_same_run(out, arm, seed, twin))
        else:
            runs.append(_run_arm(cfg, out, arm, seed, [pool[i] for i in chosen], test, progress))
            done[(seed, tuple(chosen))] = runs[-1]
        runs[-1]["noisy_records"] = sum(labels[i] is not None for i in chosen) if labels else None
        # after every run, so that a stopped experiment shows what it has so far
        results = write_results(cfg, out, runs, list(arms), start, len(runs) == len(order))
    return results


def _lp_config(cfg: ExperimentConfig):
    from tamis.model.finetune import TrainConfig

    lp = dict(cfg.lp)
    known = {"epochs", "method", "learning_rate", "batch_size", "precision", "seed"}
    if set(lp) - known:
        raise TamisError(f"lp: unknown option(s) {', '.join(sorted(set(lp) - known))}")
    return TrainConfig(**{"epochs": 3, "method": "full", "learning_rate": 2e-5, **lp})


def _scorers(cfg: ExperimentConfig) -> tuple[str, ...]:
    from tamis.scorers import GROUPS, JUNK, SCORERS, TRAINING_SCORERS

    names = []
    for col in cfg.scorers:
        if col in (JUNK, *GROUPS, *TRAINING_SCORERS):  # a scorer or group name
            names.append(col)
            continue
        owner = next((s.name for s in SCORERS.values() if col in s.columns), None)
        if owner is None:
            raise TamisError(f"scorers: '{col}' is not a score column tamis score writes")
        names.append(owner)
    return tuple(dict.fromkeys(names))


def _prepare_data(cfg: ExperimentConfig, data_dir: Path):
    from tamis.data.noise import KINDS, corrupt

    pool_path, test_path = data_dir / "pool.jsonl", data_dir / "test.jsonl"
    labels_path = data_dir / "noise_labels.jsonl"
    if not pool_path.is_file():
        rows = read_jsonl(Path(cfg.pool))
        if cfg.pool_size is not None:
            if not 0 < cfg.pool_size <= len(rows):
                raise TamisError(f"pool_size {cfg.pool_size}: the pool has {len(rows)} records")
            keep = sorted(random.Random(cfg.split_seed).sample(range(len(rows)), cfg.pool_size))
            rows = [rows[i] for i in keep]
        if cfg.test:
            test = read_jsonl(Path(cfg.test))
        else:
            if cfg.test_size >= len(rows):
                raise TamisError(f"test_size {cfg.test_size} leaves no pool of {len(rows)}")
            order = list(range(len(rows)))
            random.Random(cfg.split_seed).shuffle(order)
            held = set(order[: cfg.test_size])
            test = [r for i, r in enumerate(rows) if i in held]
            rows = [r for i, r in enumerate(rows) if i not in held]
        labels = None
        if cfg.noise:
            n = cfg.noise
            rows, labels = corrupt(rows, n["rate"], n.get("seed", 0), n.get("kinds") or KINDS)
            _write_jsonl(labels_path, labels)
        _write_jsonl(test_path, test)
        _write_jsonl(pool_path, rows)  # last: its presence marks the step complete
    pool = read_jsonl(pool_path)
    test = test_path
    labels = [r["kind"] for r in read_jsonl(labels_path)] if labels_path.is_file() else None
    return pool, test, labels


def _arms(cfg: ExperimentConfig, pool: list, scores_dir: Path) -> dict:
    """``{arm: seed -> pool indices}``."""
    from tamis.data.outputs import read_scores
    from tamis.select.selection import Selection, select

    rows, columns = read_scores(scores_dir / "scores.parquet")
    if cfg.budget_counts == "target":
        from tamis.engines.target_tokens import FILE, train_tokens

        counts = train_tokens(train_settings(cfg, 0), scores_dir.parent / "data" / "pool.jsonl")
        if set(counts) != {r["index"] for r in rows}:
            raise TamisError(f"{scores_dir}: not the scores of the pool {FILE} counts; delete it")
        for r in rows:
            r["train_tokens"] = counts[r["index"]]
            if r["status"] == "ok" and not counts[r["index"]]:  # the target skips it
                r["status"], r["detail"] = "too_long", "the target skips it (target max_tokens)"
    n = len(pool)
    budget = cfg.budget if isinstance(cfg.budget, int) else int(cfg.budget * n)
    if not 0 < budget <= n:
        raise TamisError(f"budget {cfg.budget}: gives {budget} records of a pool of {n}")
    tokens = _token_budget(cfg, rows, columns)
    keep = {"keep_tokens": tokens} if tokens else {"keep": budget}

    def ranked(col: str, direction: str | None) -> list[int]:
        decisions = select(rows, Selection(by=col, direction=direction, **keep))
        return [d.index for d in decisions if d.kept]

    arms: dict[str, Any] = {"full": lambda seed: list(range(n))}
    if tokens:  # the random baseline at the same number of tokens, from the whole pool
        none = {"drop_junk_above": math.inf}
        draw = lambda seed: _picks(rows, Selection(by="random", seed=1000 + seed, **none, **keep))  # noqa: E731
    else:
        draw = lambda seed: sorted(random.Random(1000 + seed).sample(range(n), budget))  # noqa: E731
    if cfg.arms is not None:
        names = [a.get("name") if isinstance(a, dict) else None for a in cfg.arms]
        twice = sorted({x for x in names if x and names.count(x) > 1})
        if twice:
            raise TamisError(f"arms: {', '.join(twice)} named twice; give each arm its own name")
        arms["random"] = draw
        vectors: dict[str, Any] = {}
        for spec in cfg.arms:
            sel = _arm_selection(spec, keep)
            arms[spec["name"]] = lambda seed, sel=sel: _picks(
                rows, replace(sel, seed=1000 + seed), _vectors(sel, vectors, scores_dir, rows)
            )
        return arms
    for col in cfg.scorers:
        top = ranked(col, None)
        arms[f"top-{col}"] = lambda seed, top=top: top
    arms["random"] = draw
    if cfg.lowest:
        col = cfg.scorers[0]
        default = Selection(by=col).resolved_direction()
        worst = ranked(col, "highest" if default == "lowest" else "lowest")
        arms[f"lowest-{col}"] = lambda seed, worst=worst: worst
    return arms


def _token_budget(cfg: ExperimentConfig, rows: list, columns: list) -> int | None:
    from tamis.select.methods import TOKEN_COLUMNS, record_tokens

    if cfg.budget_tokens is None:
        return None
    if cfg.budget_counts == "scorer" and not all(c in columns for c in TOKEN_COLUMNS):
        raise TamisError("budget_tokens needs the token counts: add 'tokens' to scorers")
    total = sum(record_tokens(r) for r in rows if r["status"] == "ok")
    b = cfg.budget_tokens
    tokens = b if isinstance(b, int) else int(b * total)
    if not 0 < tokens <= total:
        raise TamisError(f"budget_tokens {b}: gives {tokens} tokens of a pool of {total}")
    return tokens


def _arm_selection(spec: dict[str, Any], keep: dict[str, Any]):
    from tamis.select.selection import Selection

    if not isinstance(spec, dict) or not spec.get("name"):
        raise TamisError(f"arms: each arm needs a name and tamis select options, got {spec!r}")
    unknown = set(spec) - {"name", *ARM_KEYS}
    if unknown:
        raise TamisError(
            f"arms: {spec['name']}: unknown option(s) {', '.join(sorted(unknown))}; valid: "
            f"{', '.join(ARM_KEYS)}"
        )
    if spec["name"] in ("full", "random"):
        raise TamisError(f"arms: '{spec['name']}' is always run; give this arm another name")
    options = {k: v for k, v in spec.items() if k != "name"}
    for limit in ("drop_junk_above", "drop_ifd_above"):
        value = options.get(limit)
        if isinstance(value, str) and value.lower() == "none":
            options[limit] = math.inf
        elif limit in options and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TamisError(
                f"arms: {spec['name']}: {limit} {value!r}: give a number, or none to turn it off"
            )
    return Selection(**options, **keep)


def _picks(rows: list, sel, vectors=None) -> list[int]:
    from tamis.select.selection import select

    return [d.index for d in select(rows, sel, vectors) if d.kept]


def _vectors(sel, cache: dict, scores_dir: Path, rows: list):
    """The pool's embeddings for a ``diverse`` arm, computed once."""
    if sel.method != "diverse":
        return None
    if "v" not in cache:
        from tamis.data.readers import read_dataset
        from tamis.engines.jobs import record_vectors

        data = read_dataset(scores_dir.parent / "data" / "pool.jsonl", skip_bad=True)
        cache["v"] = record_vectors(data, rows)
    return cache["v"]


def train_settings(cfg: ExperimentConfig, seed: int):
    """The :class:`~tamis.engines.train_job.TrainJob` of every arm at ``seed`` (``target``)."""
    from tamis.engines.train_job import DEFAULT_LR, TrainJob
    from tamis.model.finetune import TrainConfig

    t = dict(cfg.target)
    method = t.pop("method", "lora")
    train_cfg = TrainConfig(
        method=method,
        learning_rate=t.pop("lr", DEFAULT_LR[method]),
        seed=seed,
        **{k: t.pop(k) for k in list(t) if k in TrainConfig.__dataclass_fields__},
    )
    job_opts = {
        "skip_bad": True,
        **{k: t.pop(k) for k in list(t) if k in TrainJob.__dataclass_fields__},
    }
    if t:
        raise TamisError(f"target: unknown option(s) {', '.join(sorted(t))}")
    return TrainJob(train=train_cfg, **job_opts)


def _run_arm(cfg, out: Path, arm: str, seed: int, rows: list, test: Path, progress: bool):
    from tamis.engines.eval_job import eval_job
    from tamis.engines.train_job import train_job

    run_dir = out / "arms" / arm / f"seed{seed}"
    eval_path = run_dir / "eval" / "eval.json"
    data = run_dir / "train.jsonl"
    if not data.is_file():
        _write_jsonl(data, rows)
    elif read_jsonl(data) != rows:  # an earlier run into this folder chose other records
        raise TamisError(
            f"{run_dir}: this arm's selection changed since an earlier run into {out} (another "
            "budget, pool or arm option); use a new output folder, or delete that arm's folder"
        )
    elif eval_path.is_file():  # done in an earlier run, on these records
        return run_summary(arm, seed, run_dir)
    job = train_settings(cfg, seed)
    resume = any((run_dir / "train" / "checkpoints").glob("checkpoint-*"))
    if not (run_dir / "train" / "manifest.json").is_file():
        train_job(data, run_dir / "train", replace(job, resume=resume), progress)
    opts = {
        "generate": True, "max_new_tokens": 64, "generate_limit": None, "short_words": 5,
        "against": None,
        "judge": None, "format": None, "template": job.template, "skip_bad": True,
        "max_tokens": job.max_tokens, "batch_size": 8, "device": job.device, "quiet": not progress,
    }  # fmt: skip
    opts.update(cfg.eval)
    eval_job(str(run_dir / "train" / "model"), test, run_dir / "eval", opts)
    return run_summary(arm, seed, run_dir)


def _same_run(out: Path, arm: str, seed: int, twin: dict) -> dict[str, Any]:
    """An arm that chose exactly the records of an earlier arm at this seed (DEITA's diversity
    finding no near-copy to skip, say): the run would be the same, so it is not trained twice."""
    run_dir = out / "arms" / arm / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "same_as.txt").write_text(f"{twin['arm']}/seed{seed}: the same records\n")
    return {**twin, "arm": arm, "same_as": twin["arm"]}


def _write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, rows)
