"""The training module and tamis train, on the real bundled model: collation, masking,
configuration checks, LoRA, prompt tuning, checkpoints and resume after a kill."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.data.readers import read_dataset
from tamis.model.finetune import Collator, TrainConfig, prepare_model, train_by_epoch, train_model
from tamis.model.loading import load_model
from tamis.model.render import IGNORE, encode
from tamis.model.runner import token_nlls


def test_collator_pads_ids_labels_and_mask():
    batch = Collator(pad_id=0)(
        [
            {"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]},
            {"input_ids": [8], "labels": [8]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "method",
            "qlora",
            "unknown training method .qlora.; choose one of: full, lora, prompt-tuning",
        ),
        ("epochs", 0, "epochs must be at least 1"),
        ("learning_rate", 0.0, "learning rate must be positive"),
        ("precision", "float16", "unknown training precision .float16.; choose one of: float32"),
    ],
)
def test_bad_configuration_is_explained(field, value, message):
    with pytest.raises(TamisError, match=message):
        TrainConfig(**{field: value}).check()


def mean_nll(lm_like, encoded):
    nlls = dict(token_nlls(lm_like, encoded, batch_size=4))
    return sum(float(n.mean()) for n in nlls.values()) / len(nlls)


def test_a_lora_epoch_lowers_the_loss_and_checkpoints_only_adapters(lm, tmp_path):
    data = read_dataset(DEMO)
    records = [r for r in data.records if len(r.response) < 100][:4]
    encoded = [encode(r, lm.tokenizer, "alpaca", 96) for r in records]
    before = mean_nll(lm, encoded)
    base_weight = lm.model.get_output_embeddings().weight.clone()
    model = prepare_model(copy.deepcopy(lm.model), TrainConfig(method="lora"))
    # one optimizer step: no warm-up, or its learning rate would be 0
    cfg = TrainConfig(method="lora", epochs=1, learning_rate=2e-3, batch_size=4, warmup_ratio=0.0)
    seen = []

    def after_epoch(epoch, trained):
        seen.append(epoch)
        assert not trained.training  # scored in eval mode
        shim = type(lm)(lm.name, lm.source, "x", trained, lm.tokenizer, lm.device)
        seen.append(mean_nll(shim, encoded))

    train_by_epoch(model, lm.tokenizer, encoded, cfg, tmp_path, after_epoch, progress=False)
    assert seen[0] == 1 and seen[1] < 0.9 * before
    checkpoint = next(tmp_path.glob("checkpoint-*"))
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert not (checkpoint / "model.safetensors").exists()
    assert torch.equal(lm.model.get_output_embeddings().weight, base_weight)  # base untouched


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if len(r["output"]) < 200 and not r["input"]][:8]
    path = tmp_path_factory.mktemp("train") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


TRAIN = ["--model", "smollm2-135m", "--batch-size", "4", "--max-tokens", "256", "-q"]


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Four demo records that small_data does not hold."""
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if len(r["output"]) < 200 and not r["input"]][8:12]
    path = tmp_path_factory.mktemp("held") / "held.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_loss_is_on_response_tokens_only(lm, small_data):
    data = read_dataset(small_data)
    encoded = [encode(r, lm.tokenizer, "chat", 256) for r in data.records[:4]]
    batch = Collator(lm.tokenizer.pad_token_id)(
        [{"input_ids": list(e.input_ids), "labels": e.labels} for e in encoded]
    )
    assert all((batch["labels"][i, : e.n_prompt] == IGNORE).all() for i, e in enumerate(encoded))
    with torch.no_grad():
        loss = float(lm.model(**batch).loss)
    nlls = dict(token_nlls(lm, encoded, batch_size=4))
    response_mean = float(np.concatenate([nlls[i] for i in range(4)]).mean())
    assert loss == pytest.approx(response_mean, rel=1e-4)


@pytest.mark.parametrize("method", ["full", "lora", "prompt-tuning"])
def test_the_trainers_loss_and_gradients_equal_the_models_own(
    lm, small_data, tmp_path, method, monkeypatch
):
    # The Trainer's loss applies the output head at response positions only; it must be the
    # model's own loss (head everywhere, labels shifted) and give the same gradients, also when
    # the head runs in recomputed chunks (here 64 rows each, as a long batch would).
    from tamis.model import runner
    from tamis.model.finetune import _trainer

    data = read_dataset(small_data)
    # Two records (a batch with padding) keep the four forward and backward passes short; their
    # responses still span more than the 64-row chunks below.
    encoded = [encode(r, lm.tokenizer, "alpaca", 256) for r in data.records[1:3]]
    batch = Collator(lm.tokenizer.pad_token_id)(
        [{"input_ids": list(e.input_ids), "labels": e.labels} for e in encoded]
    )
    cfg = TrainConfig(method=method, batch_size=2)
    model = prepare_model(copy.deepcopy(lm.model), cfg)
    model.train()
    trainer = _trainer(model, lm.tokenizer, encoded, cfg, tmp_path, False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def loss_and_grads(fn):
        model.zero_grad(set_to_none=True)
        loss = fn()
        loss.backward()
        return loss.item(), [p.grad.clone() for _, p in trainable]

    own, own_grads = loss_and_grads(lambda: model(**batch).loss)
    ours, our_grads = loss_and_grads(lambda: trainer.compute_loss(model, dict(batch)))
    vocab = model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(runner, "LOSS_CHUNK_ELEMENTS", 64 * vocab)
    assert runner.loss_chunk_rows(model) == 64 < int((batch["labels"] != -100).sum())
    chunked, chunked_grads = loss_and_grads(lambda: trainer.compute_loss(model, dict(batch)))
    monkeypatch.undo()
    for loss, grads in ((ours, our_grads), (chunked, chunked_grads)):
        assert loss == pytest.approx(own, rel=1e-5)
        for (name, _), a, b in zip(trainable, own_grads, grads, strict=True):
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-6 * float(a.abs().max())), name
    # Mixed precision: the same loss within bfloat16 rounding, gradients in float32. On a CPU
    # without bfloat16 instructions each pass is emulated (about 20x slower), so this part reads
    # 12 tokens: the prompt's last 4 and the response's first 8.
    n = encoded[0].n_prompt
    short = Collator(lm.tokenizer.pad_token_id)(
        [
            {
                "input_ids": list(encoded[0].input_ids)[n - 4 : n + 8],
                "labels": encoded[0].labels[n - 4 : n + 8],
            }
        ]
    )
    own, _ = loss_and_grads(lambda: model(**short).loss)
    mixed = _trainer(model, lm.tokenizer, encoded, TrainConfig(method=method, precision="bfloat16"),
                     tmp_path, False)  # fmt: skip
    bf16, bf16_grads = loss_and_grads(lambda: mixed.compute_loss(model, dict(short)))
    assert bf16 != own and bf16 == pytest.approx(own, rel=0.02)
    assert all(g.dtype == torch.float32 for g in bf16_grads)


def test_train_lora_lowers_the_loss_and_saves_a_model_tamis_and_transformers_load(
    lm, small_data, held_out, tmp_path, capsys
):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    args = ["train", str(small_data), "-o", str(out), "--epochs", "2", "--lr", "2e-3", *TRAIN[:-1]]
    assert main([*args, "--eval-data", str(held_out)]) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4]
    assert all(row["tokens"] > 0 and row["tokens_per_s"] > 0 for row in log)
    manifest = json.loads((out / "manifest.json").read_text())
    t = manifest["train"]
    assert t["records_trained"] == 8 and t["steps"] == 4
    # held-out loss before training, at each epoch's end, lower after training
    held = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in held] == [0, 2, 4] and held[-1]["loss"] < held[0]["loss"]
    h = t["held_out"]
    assert h["records"] == 4 and (h["first_loss"], h["final_loss"]) == (
        held[0]["loss"],
        held[-1]["loss"],
    )
    # 4 steps: the summary's first and last losses are single steps (10% rounds to 1)
    assert t["loss_window"] == 1 and (t["first_loss"], t["final_loss"]) == (
        log[0]["loss"],
        log[-1]["loss"],
    )
    assert (
        f"trained smollm2-135m (lora) on 8 records, 4 steps: loss {t['first_loss']:.4f} -> "
        f"{t['final_loss']:.4f} (first and last step); held-out loss {h['first_loss']:.4f} -> "
        f"{h['final_loss']:.4f} (4 records, before and after training) -> {out / 'model'}"
    ) in (err := capsys.readouterr().err)
    assert "Writing model shards" not in err and "{'loss'" not in err  # nothing of the Trainer's
    # a finished run is not trained over without --fresh
    assert main([*args, "-q"]) == 2
    assert f"{out} holds a finished training run" in capsys.readouterr().err
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    trained = load_model(str(out / "model"))
    encoded = [encode(r, lm.tokenizer, "chat", 256) for r in read_dataset(small_data).records]
    assert mean_nll(trained, encoded) < 0.9 * mean_nll(lm, encoded)
    assert AutoModelForCausalLM.from_pretrained(out / "model", use_safetensors=True) is not None


def test_existing_checkpoints_need_resume_or_fresh(small_data, tmp_path, capsys):
    out = tmp_path / "o"
    (out / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    assert main(["train", str(small_data), "-o", str(out), *TRAIN]) == 2
    assert "pass --resume to continue it or --fresh" in capsys.readouterr().err


def test_prompt_tuning_trains_only_the_soft_prompt(lm, small_data, tmp_path):
    data = read_dataset(small_data)
    encoded = [encode(r, lm.tokenizer, "chat", 256) for r in data.records]
    cfg = TrainConfig(
        method="prompt-tuning", epochs=3, learning_rate=0.1, batch_size=8, warmup_ratio=0.0
    )
    model = prepare_model(copy.deepcopy(lm.model), cfg)
    before = {k: v.clone() for k, v in model.named_parameters()}
    trainable = {k for k, v in model.named_parameters() if v.requires_grad}
    assert trainable and all("prompt_encoder" in k for k in trainable)
    model.train()
    train_model(
        model, lm.tokenizer, encoded, cfg, tmp_path / "ck", tmp_path / "log.jsonl", False, False
    )
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    for name, value in model.named_parameters():
        assert torch.equal(value, before[name]) == (name not in trainable), name


def test_a_prompt_tuned_model_is_loaded_and_scored_with_its_soft_prompt(lm, small_data, tmp_path):
    from tamis.model.runner import soft_prompt_length

    out = tmp_path / "pt"
    args = ["train", str(small_data), "-o", str(out), "--method", "prompt-tuning", *TRAIN]
    assert main([*args, "--epochs", "3", "--lr", "0.1", "--warmup-ratio", "0"]) == 0
    tuned = load_model(str(out / "model"))
    assert soft_prompt_length(tuned.model) == 20 and soft_prompt_length(lm.model) == 0
    encoded = [encode(r, lm.tokenizer, "chat", 256) for r in read_dataset(small_data).records]
    assert mean_nll(tuned, encoded) < mean_nll(lm, encoded)
    # the runner's soft-prompt path gives the loss PEFT's own forward gives
    one = encoded[0]
    batch = Collator(lm.tokenizer.pad_token_id)(
        [{"input_ids": list(one.input_ids), "labels": one.labels}]
    )
    with torch.no_grad():
        loss = float(tuned.model(**batch).loss)
    nll = dict(token_nlls(tuned, [one], batch_size=1))[0]
    assert loss == pytest.approx(float(nll.mean()), rel=1e-4)


def test_max_steps_lora_targets_and_dropout_are_honoured(small_data, tmp_path, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "o"
    args = ["train", str(small_data), "-o", str(out), *TRAIN, "--epochs", "3", "--max-steps", "1"]
    assert main([*args, "--lora-targets", "q_proj,v_proj", "--lora-dropout", "0.1"]) == 0
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1]
    keys = load_file(out / "adapter" / "adapter_model.safetensors").keys()
    assert keys and all("q_proj" in k or "v_proj" in k for k in keys)
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["lora_dropout"] == 0.1 and set(config["target_modules"]) == {"q_proj", "v_proj"}
    assert main([*args, "--fresh", "--lora-targets", "qproj"]) == 2
    err = capsys.readouterr().err
    assert "--lora-targets qproj:" in err and "linear layers are named: down_proj, " in err


def test_a_model_trained_in_bfloat16_is_saved_in_bfloat16(lm, tmp_path):
    from safetensors import safe_open

    from tamis.engines.train_job import _save_final

    sizes = {}
    for precision in ("float32", "bfloat16"):
        cfg = TrainConfig(method="lora", precision=precision)
        _save_final(prepare_model(copy.deepcopy(lm.model), cfg), lm.tokenizer, cfg,
                    tmp_path / precision, "")  # fmt: skip
        weights = tmp_path / precision / "model" / "model.safetensors"
        sizes[precision] = weights.stat().st_size
        with safe_open(weights, "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {  # noqa: SIM118
                "F32" if precision == "float32" else "BF16"
            }
    assert 0.49 < sizes["bfloat16"] / sizes["float32"] < 0.51
    assert load_model(str(tmp_path / "bfloat16" / "model")).precision == "float32"  # as asked
