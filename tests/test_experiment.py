"""tamis experiment end to end on a tiny pool with the real bundled model: every arm trained
and evaluated, the results table and plots written, and a re-run resumes without training."""

import json
from dataclasses import replace

import pytest
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.engines.experiment import ExperimentConfig

CONFIG = """\
pool: pool.jsonl
test_size: 6
budget: 0.25
scorers: [ppl]
arms:
  - {name: top-ppl, by: ppl, direction: highest, drop_junk_above: none}
  - {name: lowest-ppl, by: ppl, drop_junk_above: none}
  - {name: again, by: ppl, direction: lowest, drop_junk_above: none}
noise: {rate: 0.25, seed: 0}
target: {model: smollm2-135m, method: lora, epochs: 1, batch_size: 4, max_tokens: 256}
seeds: [0]
eval: {generate: false}
"""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if len(r["output"]) < 250 and not r["input"]][:30]
    (tmp / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "exp.yaml").write_text(CONFIG)
    code = main(["experiment", str(tmp / "exp.yaml"), "-o", str(tmp / "out"), "-q"])
    return tmp, code


def test_every_arm_is_trained_and_evaluated(experiment):
    tmp, code = experiment
    assert code == 0
    results = json.loads((tmp / "out" / "results.json").read_text())
    arms = results["arms"]
    assert list(arms) == ["full", "random", "top-ppl", "lowest-ppl", "again"]
    assert results["complete"] is True
    assert arms["full"]["records"] == 24  # 30 minus the 6 held out
    assert all(arms[a]["records"] == 6 for a in ("top-ppl", "random", "lowest-ppl", "again"))
    # 'again' chose lowest-ppl's records: the same model, so reused rather than trained twice
    assert arms["again"]["same_as"] == "lowest-ppl" and "same_as" not in arms["lowest-ppl"]
    assert arms["again"]["loss"] == arms["lowest-ppl"]["loss"]
    assert not (tmp / "out" / "arms" / "again" / "seed0" / "train").exists()
    assert "| again (= lowest-ppl) | 6 |" in (tmp / "out" / "results.md").read_text()
    for summary in arms.values():
        assert summary["loss"]["mean"] > 0 and summary["train_tokens"]["mean"] > 0
    # the pool had 6 corrupted records; the full arm trained on all of them
    assert arms["full"]["noisy_records"]["mean"] == 6
    assert (tmp / "out" / "results.md").read_text().startswith("| arm | records |")
    assert results["versus_random"] is None  # one seed: no spread for the bar
    assert (tmp / "out" / "loss_curves.png").stat().st_size > 1000
    assert (tmp / "out" / "metrics.png").stat().st_size > 1000
    test_ids = {json.loads(x)["instruction"] for x in (tmp / "out/data/test.jsonl").open()}
    pool_ids = {json.loads(x)["instruction"] for x in (tmp / "out/data/pool.jsonl").open()}
    assert len(test_ids) == 6 and not test_ids & pool_ids
    # an evaluated run keeps what the results read, not its model or checkpoints (GBs per run)
    for run in (tmp / "out" / "arms").glob("*/seed0/train"):
        assert (run / "manifest.json").is_file() and (run / "adapter").is_dir(), run
        assert not (run / "model").exists() and not (run / "checkpoints").exists(), run
    from tamis.report.training import train_page

    _, html = train_page(run)  # its report says the model is gone, not where it was
    assert "(deleted since; an experiment keeps it only with keep_models: true)" in html


def test_prepare_writes_only_the_small_models_part(experiment, tmp_path, capsys):
    # --prepare: the pool, test set and scores, the same as a whole run's; nothing trained
    from tamis.data.outputs import read_scores

    exp, _ = experiment
    (tmp_path / "pool.jsonl").write_text((exp / "pool.jsonl").read_text())
    (tmp_path / "exp.yaml").write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["experiment", str(tmp_path / "exp.yaml"), "-o", str(out), "--prepare", "-q"]) == 0
    for name in ("data/pool.jsonl", "data/test.jsonl", "data/noise_labels.jsonl"):
        assert (out / name).read_text() == (exp / "out" / name).read_text(), name
    mine, _ = read_scores(out / "scores" / "scores.parquet")
    whole, _ = read_scores(exp / "out" / "scores" / "scores.parquet")
    assert [r["ppl"] for r in mine] == [r["ppl"] for r in whole]
    assert not (out / "arms").exists() and not (out / "results.json").exists()
    # a typo in the target's or an arm's options shows here, not where the arms train
    typos = {
        "epochz": CONFIG.replace("epochs: 1", "epochz: 1"),
        "bye": CONFIG.replace("arms:\n", "arms:\n  - {name: x, bye: ppl}\n"),
    }
    for word, text in typos.items():
        (tmp_path / "typo.yaml").write_text(text)
        args = ["experiment", str(tmp_path / "typo.yaml"), "-o", str(out), "--prepare", "-q"]
        assert main(args) == 2
        assert f"unknown option(s) {word}" in capsys.readouterr().err


def test_an_evaluated_runs_model_is_kept_on_request(tmp_path):
    from tamis.engines.experiment import _prune

    for keep in (True, False):
        train = tmp_path / str(keep) / "train"
        for sub in ("model", "adapter", "checkpoints/checkpoint-1"):
            (train / sub).mkdir(parents=True)
            (train / sub / "weights").write_bytes(b"0" * 10)
        (train / "manifest.json").write_text("{}")
        _prune(train, keep)
        assert (train / "model").is_dir() is keep
        assert (train / "adapter" / "weights").is_file() and (train / "manifest.json").is_file()
        assert not (train / "checkpoints").exists()
    # a prompt-tuned run's model/ is a small PEFT adapter, its only output: it stays
    train = tmp_path / "prompt" / "train"
    (train / "model").mkdir(parents=True)
    (train / "model" / "adapter_config.json").write_text("{}")
    _prune(train, False)
    assert (train / "model" / "adapter_config.json").is_file()
    assert ExperimentConfig(pool="p").keep_models is False


def test_a_rerun_resumes_without_training_again(experiment):
    tmp, _ = experiment
    before = (tmp / "out" / "arms" / "full" / "seed0" / "train" / "manifest.json").stat().st_mtime
    assert main(["experiment", str(tmp / "exp.yaml"), "-o", str(tmp / "out"), "-q"]) == 0
    after = (tmp / "out" / "arms" / "full" / "seed0" / "train" / "manifest.json").stat().st_mtime
    assert before == after


def test_each_arm_is_judged_against_random_seed_by_seed():
    from tamis.engines.experiment_results import versus_random, versus_table

    def run(arm, seed, loss, tokens=1000):
        return {"arm": arm, "seed": seed, "loss": loss, "train_tokens": tokens}

    runs = [
        *(run("random", s, x) for s, x in enumerate((2.00, 2.02, 2.01))),  # sd 0.01: bar 0.02
        *(run("full", s, x, 4000) for s, x in enumerate((1.94, 1.96, 1.95))),  # 0.06 over 2x2
        *(run("good", s, x) for s, x in enumerate((1.97, 1.99, 1.98))),  # -0.03 every seed
        *(run("close", s, x) for s, x in enumerate((1.97, 2.01, 1.98))),  # -0.01 on seed 1
        run("short", 0, 1.90),  # one seed of three: not judged a win
    ]
    v = versus_random(runs)
    assert v["bar"] == pytest.approx(0.02)
    assert v["nats_per_doubling"] == pytest.approx(0.03)
    assert v["bar_in_tokens"] == pytest.approx(2 ** (0.02 / 0.03))
    arms = v["arms"]
    assert arms["good"]["paired"] == pytest.approx([-0.03, -0.03, -0.03])
    assert arms["good"]["beats_random"] is True
    assert arms["close"]["beats_random"] is False and arms["close"]["seeds"] == [0, 1, 2]
    assert arms["short"]["seeds"] == [0] and arms["short"]["beats_random"] is False
    assert arms["full"]["beats_random"] is None  # all the tokens: no claim at equal tokens
    text = versus_table(v)
    assert "| good | -0.0300 (seed 0), -0.0300 (seed 1), -0.0300 (seed 2) | -0.0300 | yes |" in text
    assert "worth 1.59x random's tokens" in text
    assert versus_random(runs[:1] + runs[3:]) is None  # random on one seed only
    # full on one seed of three (a stopped run): the line from that seed; a run without a loss
    # is left out; a full arm no better than random gives no line, and a flat one no multiple
    partial = [*runs[:3], runs[3], run("good", 0, None), runs[7]]
    v = versus_random(partial)
    assert v["nats_per_doubling"] == pytest.approx((2.00 - 1.94) / 2)
    assert v["arms"]["good"]["seeds"] == [1]
    worse = versus_random([*runs[:3], run("full", 0, 2.10, 4000)])
    assert "nats_per_doubling" not in worse and "bar_in_tokens" not in worse
    flat = versus_random([*runs[:3], run("full", 0, 1.9999, 4000)])
    assert flat["bar_in_tokens"] is None and "worth" not in versus_table(flat)
    json.dumps(flat, allow_nan=False)  # results.json stays valid JSON


def test_unknown_keys_are_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pool: p.jsonl\nbudjet: 0.2\n")
    with pytest.raises(TamisError, match="unknown key\\(s\\) budjet"):
        ExperimentConfig.load(path)


def test_arms_from_scorer_columns(experiment):
    # The older form: top-COL per scorer column, random, and lowest of the first column.
    from tamis.engines.experiment_arms import arms_of

    tmp, _ = experiment
    pool = [json.loads(x) for x in (tmp / "out" / "data" / "pool.jsonl").open()]
    cfg = ExperimentConfig(pool="p", budget=0.25, scorers=["ppl"], lowest=True)
    arms = arms_of(cfg, pool, tmp / "out" / "scores")
    assert list(arms) == ["full", "top-ppl", "random", "lowest-ppl"]
    top, low = arms["top-ppl"](0), arms["lowest-ppl"](0)
    assert len(top) == len(low) == 6 and not set(top) & set(low)
    assert top == arms["top-ppl"](1) and arms["random"](0) != arms["random"](1)


def test_arms_from_select_options_at_equal_tokens(experiment, tmp_path):
    # The arms of a token-budget experiment, picked from real default scores of the same pool
    # (junk, tokens, ppl, ifd): no arm takes more tokens than the budget, the random arm draws
    # from the whole pool and changes with the seed, the default recipe leaves junk out.
    from tamis.data.outputs import read_scores
    from tamis.engines.experiment_arms import arms_of
    from tamis.select.methods import record_tokens

    exp, _ = experiment
    pool_path = tmp_path / "out" / "data" / "pool.jsonl"  # an experiment folder's layout
    pool_path.parent.mkdir(parents=True)
    pool_path.write_text((exp / "out" / "data" / "pool.jsonl").read_text())
    scores = tmp_path / "out" / "scores"
    assert main(["score", str(pool_path), "-o", str(scores), "-q"]) == 0
    pool = [json.loads(x) for x in pool_path.open()]
    rows, _ = read_scores(scores / "scores.parquet")
    cost = {r["index"]: record_tokens(r) for r in rows}
    budget = int(0.3 * sum(cost.values()))
    cfg = ExperimentConfig(
        pool=str(pool_path),
        budget_tokens=0.3,
        arms=[
            {"name": "default", "by": "ppl"},
            {"name": "superfiltering", "by": "ifd"},
            {"name": "diverse", "method": "diverse", "by": "ppl", "max_similarity": 0.5},
            {"name": "ppl-no-junk", "by": "ppl", "drop_junk_above": "none"},
        ],
    )
    arms = arms_of(cfg, pool, scores)
    assert list(arms) == ["full", "random", "default", "superfiltering", "diverse", "ppl-no-junk"]
    picks = {arm: fn(0) for arm, fn in arms.items()}
    assert picks["full"] == list(range(len(pool)))
    for arm, chosen in picks.items():
        if arm != "full":
            assert 0 < sum(cost[i] for i in chosen) <= budget, arm
    assert picks["random"] != arms["random"](1) and picks["random"] == arms["random"](0)
    junk = {r["index"] for r in rows if r["junk"] > 0}
    assert not junk & set(picks["default"]) and set(picks["default"]) != set(picks["ppl-no-junk"])
    assert set(picks["diverse"]) != set(picks["default"])  # a strict threshold skips some
    with pytest.raises(TamisError, match="unknown option"):
        arms_of(ExperimentConfig(pool="p", arms=[{"name": "x", "bye": "ppl"}]), pool, scores)
    with pytest.raises(TamisError, match="x named twice"):
        arms_of(ExperimentConfig(pool="p", arms=[{"name": "x"}, {"name": "x"}]), pool, scores)
    with pytest.raises(TamisError, match="give a number, or none"):
        bad = [{"name": "x", "drop_junk_above": "inf"}]
        arms_of(ExperimentConfig(pool="p", arms=bad), pool, scores)


def test_a_budget_in_the_targets_tokens_counts_what_it_trains_on(experiment, tmp_path):
    # budget_counts: target: a record costs the tokens the target trains on (its tokenizer,
    # template and max_tokens). The fixture's real runs trained exactly the sum of their records'.
    from tamis.engines.experiment import train_settings
    from tamis.engines.experiment_arms import arms_of
    from tamis.engines.target_tokens import FILE, train_tokens

    exp, _ = experiment
    cfg = ExperimentConfig.load(exp / "exp.yaml")
    pool_path = tmp_path / "out" / "data" / "pool.jsonl"
    pool_path.parent.mkdir(parents=True)
    pool_path.write_text((exp / "out" / "data" / "pool.jsonl").read_text())
    pool = [json.loads(x) for x in pool_path.open()]
    counts = train_tokens(train_settings(cfg, 0), pool_path)
    assert sorted(counts) == list(range(len(pool))) and all(n > 0 for n in counts.values())
    assert (pool_path.parent / FILE).is_file()
    where = {json.dumps(r, sort_keys=True): i for i, r in enumerate(pool)}
    for arm in ("full", "random", "top-ppl", "lowest-ppl"):
        run = exp / "out" / "arms" / arm / "seed0"
        chosen = [
            where[json.dumps(json.loads(x), sort_keys=True)] for x in (run / "train.jsonl").open()
        ]
        trained = json.loads((run / "train" / "manifest.json").read_text())["train"]["tokens"]
        assert sum(counts[i] for i in chosen) == trained, arm
    # the arms at 30% of the target's tokens: none over the budget, whatever the scorer counted
    (tmp_path / "out" / "scores").symlink_to(exp / "out" / "scores")
    none = {"drop_junk_above": "none"}
    target = ExperimentConfig(
        pool=str(pool_path), budget_tokens=0.3, budget_counts="target", target=cfg.target,
        arms=[{"name": "low", "by": "ppl", **none}, {"name": "high", "by": "ppl",
              "direction": "highest", **none}],
    )  # fmt: skip
    budget = int(0.3 * sum(counts.values()))
    arms = arms_of(target, pool, tmp_path / "out" / "scores", train_settings(target, 0))
    for arm in ("random", "low", "high"):
        used = sum(counts[i] for i in arms[arm](0))
        assert budget - max(counts.values()) < used <= budget, arm
    # counted once: a second call reads the file while the settings and the pool are the same
    stamp = (pool_path.parent / FILE).stat().st_mtime_ns
    assert train_tokens(train_settings(cfg, 0), pool_path) == counts
    assert (pool_path.parent / FILE).stat().st_mtime_ns == stamp
    shorter = replace(train_settings(cfg, 0), max_tokens=64)  # other settings: counted again
    assert train_tokens(shorter, pool_path) != counts
    bad = tmp_path / "bad.yaml"
    bad.write_text("pool: p.jsonl\nbudget_tokens: 0.3\nbudget_counts: gemma\n")
    with pytest.raises(TamisError, match="budget_counts 'gemma': give scorer or target"):
        ExperimentConfig.load(bad)
    bad.write_text("pool: p.jsonl\nkeep_models: maybe\n")
    with pytest.raises(TamisError, match="keep_models 'maybe': give true or false"):
        ExperimentConfig.load(bad)
    bad.write_text("pool: p.jsonl\nbudget_counts: target\n")
    with pytest.raises(TamisError, match="counts budget_tokens; set it"):
        ExperimentConfig.load(bad)
