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
  selection (:data:`~.experiment_arms.ARM_KEYS`): the default recipe, Superfiltering
  (``by: ifd``), ``s2l``, ``diverse``, the same without the junk filter, ...

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
(``train.jsonl``, ``tamis train`` output, ``eval/``; once a run is evaluated its checkpoints
and, unless ``keep_models: true``, its model are deleted: no result reads them). Results:
``results.json``, ``results.md`` (mean and standard deviation over seeds per arm; each arm
against random, seed by seed: :func:`~.experiment_results.versus_random`),
``loss_curves.png`` and ``metrics.png``, rewritten after every run (``complete: false``
until the last). Runs go seed by seed (every arm on the first seed, then the next), full-data
runs last; an arm that chose exactly the records of an earlier arm on the same seed reuses its
run (``same_as``) instead of training the same model twice.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import read_jsonl, write_jsonl
from tamis.engines.experiment_arms import arm_selections, arms_of
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
    # selection arms as `tamis select` options, besides full and random
    # (experiment_arms.ARM_KEYS); None: the top budget by each of `scorers` (and `lowest`)
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
    # keep each run's trained model once it is evaluated (1.1 GB per run for Gemma 3 270M);
    # its checkpoints go either way, and a LoRA run's small adapter/ always stays
    keep_models: bool = False

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
        if not isinstance(cfg.keep_models, bool):
            raise TamisError(f"{path}: keep_models {cfg.keep_models!r}: give true or false")
        if cfg.budget_counts == "target" and cfg.budget_tokens is None:
            raise TamisError(f"{path}: budget_counts: target counts budget_tokens; set it")
        base = path.parent
        cfg.pool = str((base / cfg.pool).resolve())
        if cfg.test:
            cfg.test = str((base / cfg.test).resolve())
        return cfg


def run_experiment(
    config_path: str | Path, out_dir: str | Path, progress: bool = True, prepare: bool = False
) -> dict | None:
    """Run (or resume) every arm and seed; returns ``results.json``'s content. ``prepare``:
    only the pool, test set and scores (``data/``, ``scores/``), for training elsewhere."""
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
    job = train_settings(cfg, 0)  # checks the target's options before any training
    if prepare:  # the arms' options too, so that a typo shows here, not where the arms train
        arm_selections(cfg.arms or [], {"keep": 1})
        return None
    arms = arms_of(cfg, pool, scores_dir, job)
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
        _prune(run_dir / "train", cfg.keep_models)  # one evaluated before pruning, or killed
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
    _prune(run_dir / "train", cfg.keep_models)
    return run_summary(arm, seed, run_dir)


def _prune(train_dir: Path, keep_model: bool) -> None:
    """An evaluated run's checkpoints (the resume state of a finished training: 3 GB per full
    fine-tuning of Gemma 3 270M) and, unless ``keep_model``, its model: an experiment of 15 runs
    would otherwise fill tens of GB with files that no result reads."""
    shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)
    # a prompt-tuned run's model/ is its only output, and small: a PEFT adapter
    if not keep_model and not (train_dir / "model" / "adapter_config.json").is_file():
        shutil.rmtree(train_dir / "model", ignore_errors=True)


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
