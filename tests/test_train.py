"""The training module: collation, configuration checks, and a real LoRA epoch."""

import copy

import pytest
import torch
from conftest import DEMO

from tamis.errors import TamisError
from tamis.readers import read_dataset
from tamis.render import IGNORE, encode
from tamis.runner import token_nlls
from tamis.train import Collator, TrainConfig, prepare_model, train_by_epoch


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
        ("method", "qlora", "unknown training method 'qlora'; choose one of: full, lora"),
        ("epochs", 0, "epochs must be at least 1"),
        ("learning_rate", 0.0, "learning rate must be positive"),
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
