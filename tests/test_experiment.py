"""tamis experiment end to end on a tiny pool with the real bundled model: every arm trained
and evaluated, the results table and plots written, and a re-run resumes without training."""

import json

import pytest
from conftest import DEMO

from tamis.cli import main
from tamis.errors import TamisError
from tamis.experiment import ExperimentConfig

CONFIG = """\
pool: pool.jsonl
test_size: 6
budget: 0.25
scorers: [ppl]
lowest: true
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
    assert list(arms) == ["full", "top-ppl", "random", "lowest-ppl"]
    assert arms["full"]["records"] == 24  # 30 minus the 6 held out
    assert all(arms[a]["records"] == 6 for a in ("top-ppl", "random", "lowest-ppl"))
    for summary in arms.values():
        assert summary["loss"]["mean"] > 0 and summary["train_tokens"]["mean"] > 0
    # the pool had 6 corrupted records; the full arm trained on all of them
    assert arms["full"]["noisy_records"]["mean"] == 6
    assert (tmp / "out" / "results.md").read_text().startswith("| arm | records |")
    assert (tmp / "out" / "loss_curves.png").stat().st_size > 1000
    assert (tmp / "out" / "metrics.png").stat().st_size > 1000
    test_ids = {json.loads(x)["instruction"] for x in (tmp / "out/data/test.jsonl").open()}
    pool_ids = {json.loads(x)["instruction"] for x in (tmp / "out/data/pool.jsonl").open()}
    assert len(test_ids) == 6 and not test_ids & pool_ids


def test_a_rerun_resumes_without_training_again(experiment):
    tmp, _ = experiment
    before = (tmp / "out" / "arms" / "full" / "seed0" / "train" / "manifest.json").stat().st_mtime
    assert main(["experiment", str(tmp / "exp.yaml"), "-o", str(tmp / "out"), "-q"]) == 0
    after = (tmp / "out" / "arms" / "full" / "seed0" / "train" / "manifest.json").stat().st_mtime
    assert before == after


def test_unknown_keys_are_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pool: p.jsonl\nbudjet: 0.2\n")
    with pytest.raises(TamisError, match="unknown key\\(s\\) budjet"):
        ExperimentConfig.load(path)
