"""Safety: weights load from safetensors or GGUF only, never by unpickling a file from a user's
path; no code from a model folder runs; output files stay inside the output folder.

The pickles here are real: loading one would create a marker file, and every test checks that
it does not exist afterwards.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import pickle
from pathlib import Path

import pytest
from test_properties import scored_folder

from tamis.base.errors import TamisError
from tamis.engines.jobs import select_job
from tamis.model.loading import load_model, resolve
from tamis.select.selection import Selection

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "tamis"


class Payload:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def plant_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"model.embed_tokens.weight": Payload(marker)}))


@pytest.fixture(scope="module")
def smollm2_folder() -> Path:
    """The converted SmolLM2 folder (safetensors) that the test session's model comes from."""
    from tamis.model.loading import _converted_folder, model_sha256

    _, gguf = resolve("smollm2-135m")
    return _converted_folder(gguf, model_sha256(gguf))


def copy_small_files(src: Path, dst: Path) -> None:
    for p in src.iterdir():
        if p.suffix in (".json", ".jinja"):
            (dst / p.name).write_bytes(p.read_bytes())


def test_a_pickle_only_model_folder_is_refused_unopened(tmp_path, smollm2_folder):
    copy_small_files(smollm2_folder, tmp_path)
    marker = tmp_path.parent / f"{tmp_path.name}.marker"
    for name in ("pytorch_model.bin", "model.pt", "training_args.bin"):
        plant_pickle(tmp_path / name, marker)
    with pytest.raises(TamisError, match=r"no \.safetensors weights; tamis does not load pickled"):
        load_model(str(tmp_path))
    assert not marker.exists()


def test_a_pickle_only_adapter_is_refused_unopened(tmp_path, smollm2_folder):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(smollm2_folder), "peft_type": "LORA"})
    )
    marker = tmp_path.parent / f"{tmp_path.name}.marker"
    plant_pickle(tmp_path / "adapter_model.bin", marker)
    with pytest.raises(TamisError, match="no adapter_model.safetensors; tamis loads no pickled"):
        load_model(str(tmp_path))
    assert not marker.exists()


def test_custom_model_code_is_never_run(tmp_path, smollm2_folder):
    """A folder asking for its own code (``auto_map``) is refused and the code never imported."""
    copy_small_files(smollm2_folder, tmp_path)
    marker = tmp_path.parent / f"{tmp_path.name}.marker"
    config = json.loads((tmp_path / "config.json").read_text())
    config |= {
        "model_type": "evil",
        "architectures": ["EvilForCausalLM"],
        "auto_map": {
            "AutoConfig": "modeling_evil.EvilConfig",
            "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM",
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (tmp_path / "model.safetensors").symlink_to(smollm2_folder / "model.safetensors")
    with pytest.raises(TamisError, match="contains custom code"):
        load_model(str(tmp_path))
    assert not marker.exists()


@pytest.mark.model
def test_safetensors_are_loaded_even_beside_a_pickle(tmp_path, smollm2_folder):
    copy_small_files(smollm2_folder, tmp_path)
    (tmp_path / "model.safetensors").symlink_to(smollm2_folder / "model.safetensors")
    marker = tmp_path.parent / f"{tmp_path.name}.marker"
    plant_pickle(tmp_path / "pytorch_model.bin", marker)
    lm = load_model(str(tmp_path))
    assert lm.model.config.model_type == "llama"
    assert not marker.exists()


# ---- the code itself ---------------------------------------------------------------------------


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, node


def source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_unpickling_anywhere_in_tamis():
    banned = {"load", "loads", "Unpickler"}  # on pickle, torch, joblib, dill, cloudpickle
    for path in source_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not {"pickle", "dill", "joblib", "cloudpickle"} & set(names), path
        for name, node in calls(tree):
            func = node.func
            owner = getattr(getattr(func, "value", None), "id", "")
            if name in banned:
                assert owner not in ("torch", "pickle", "joblib", "dill"), f"{path}:{node.lineno}"
            if name == "load" and owner == "np":
                kws = {k.arg: k.value for k in node.keywords}
                assert not (
                    isinstance(kws.get("allow_pickle"), ast.Constant) and kws["allow_pickle"].value
                ), f"{path}:{node.lineno}"


def test_trust_remote_code_is_never_turned_on():
    """Every from_pretrained call either says trust_remote_code=False or leaves the default,
    which is False; and weights from a folder are read with use_safetensors=True."""
    seen = 0
    for path in source_files():
        for name, node in calls(ast.parse(path.read_text(), str(path))):
            if name != "from_pretrained":
                continue
            seen += 1
            kws = {k.arg: k.value for k in node.keywords}
            assert None not in kws, f"{path}:{node.lineno}: **kwargs could carry trust_remote_code"
            trust = kws.get("trust_remote_code")
            assert trust is None or (isinstance(trust, ast.Constant) and trust.value is False)
    assert seen >= 5
    text = (SRC / "model" / "loading.py").read_text()
    assert "use_safetensors=True" in text and "trust_remote_code=False" in text


def test_the_trainer_resumes_from_checkpoints_without_full_unpickling():
    """tamis resumes training through transformers' Trainer, which reads the optimizer, scheduler
    and RNG states of tamis's own checkpoints with torch.load; every such call must use the
    restricted unpickler (weights_only=True), which rebuilds tensors and plain containers and runs
    no code."""
    spec = importlib.util.find_spec("transformers.trainer")
    tree = ast.parse(Path(spec.origin).read_text())
    loads = [
        node
        for name, node in calls(tree)
        if name == "load" and getattr(node.func.value, "id", "") == "torch"
    ]
    assert loads
    for node in loads:
        kws = {k.arg: k.value for k in node.keywords}
        weights_only = kws.get("weights_only")
        assert isinstance(weights_only, ast.Constant) and weights_only.value is True, node.lineno


def test_output_files_stay_inside_the_output_folder_whatever_the_ids(tmp_path):
    """No output path is built from record content: ids that look like paths change nothing."""
    ids = ["../../escape", "/etc/passwd", "a/b", "..", "C:\\x", "~", "$HOME", "\x00nul"]
    rows = [
        {
            "index": i,
            "id": rid,
            "status": "ok",
            "detail": "",
            "truncated": False,
            "ppl": float(i),
            "repetition": 0.0,
            "cluster": 0,
        }
        for i, rid in enumerate(ids)
    ]
    out = scored_folder(tmp_path, rows)
    select_job(out, Selection(keep=3))
    inside = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert inside == [
        "data.jsonl",
        "out",
        "out/manifest.json",
        "out/rejected.jsonl",
        "out/scores.parquet",
        "out/selected.jsonl",
    ]
