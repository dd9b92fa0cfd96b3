"""Pack what a GPU run of ``tamis experiment`` needs into ``.device/``, in pieces that the device
tool can carry, and put the target model together again on the GPU machine.

The device tool (a GPU machine lent to some sessions) sends the checkout and at most 64 MiB of
git-ignored paths per call, and nothing on that machine can reach a package index. Gemma 3 270M's
GGUF file is 241 MiB, so it travels in parts, one per call: ignored files that a call carried
stay on the machine for the next call while it is warm (30 s after a call). Its image has
PyTorch, transformers, peft, pyarrow, PyYAML, scipy and matplotlib, but not ``gguf``, which
transformers needs to read GGUF files (0.7 MB, carried with its metadata, which transformers
reads to decide that it is installed). The small model's scores are computed here on the CPU
(``tamis experiment --prepare``; the experiment skips scoring when its folder holds ``data/`` and
``scores/``), so SmolLM2 and MiniLM need not travel.

Here:

    .venv/bin/python scripts/device_pack.py --experiment out/EXP    # writes .device/, prints
                                                                    # the carry list per call

On the GPU machine, in the last call (``tamis`` runs from ``src/``):

    python3 scripts/device_pack.py --assemble && PYTHONPATH=src:.device/py timeout 540 \\
        python3 -m tamis experiment CONFIG -o .device/exp -q; cp .device/exp/results.* $OUT

with ``target: {model: .device/gemma-3-270m-q4_k_m.gguf, device: cuda, precision: bfloat16}``
in CONFIG. ``timeout``: the tool's 600 s limit would kill the copy too; ``results.json`` is
rewritten after every run, and a next call resumes arm by arm while the machine is warm.
``--assemble`` checks every part and the whole file against ``manifest.json`` and names what is
missing or damaged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVICE = ROOT / ".device"
MODEL = "gemma-3-270m-q4_k_m.gguf"
CARRY_LIMIT = 64 * 2**20  # the device tool's limit per call, the checkout's own files included
CHECKOUT = 4 * 2**20  # room for the checkout's own files (about 3 MB), which every call sends
CHUNK = 56 * 2**20  # a part: leaves room for the checkout and the gguf package


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def pack(model: Path, out: Path, chunk: int = CHUNK, experiment: Path | None = None) -> dict:
    """Split ``model`` into ``out/model/part-NN`` of ``chunk`` bytes and write
    ``out/manifest.json``; copy the ``gguf`` package (with its metadata) and an experiment's
    ``data/`` and ``scores/`` (without the score cache). Returns the manifest."""
    import importlib.metadata

    if experiment is not None:  # checked before anything is deleted or written
        for need in ("data/pool.jsonl", "scores/manifest.json"):
            if not (experiment / need).is_file():
                raise SystemExit(
                    f"{experiment}: no {need}; run `tamis experiment CONFIG -o {experiment} "
                    "--prepare` to the end first"
                )
        if out.resolve() in (experiment.resolve(), *experiment.resolve().parents):
            raise SystemExit(f"--out {out} holds the experiment {experiment}; give another")
    if out.exists() and not (out / "manifest.json").is_file():
        raise SystemExit(f"{out} exists and is not a pack of this script; give another --out")
    try:
        dist = importlib.metadata.distribution("gguf")
        import gguf
    except (ImportError, importlib.metadata.PackageNotFoundError):
        raise SystemExit("the gguf package is not installed here: pip install gguf") from None
    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    parts = []
    with model.open("rb") as f:
        for n, block in enumerate(iter(lambda: f.read(chunk), b"")):
            part = out / "model" / f"part-{n:02d}"
            part.write_bytes(block)
            parts.append({"name": part.name, "bytes": len(block), "sha256": sha256(part)})
    py = out / "py"
    shutil.copytree(Path(gguf.__file__).parent, py / "gguf",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    info = Path(dist.locate_file(f"gguf-{dist.version}.dist-info"))
    shutil.copytree(info, py / info.name)
    if experiment is not None:
        for sub in ("data", "scores"):
            shutil.copytree(experiment / sub, out / "exp" / sub,
                            ignore=shutil.ignore_patterns("cache"))  # fmt: skip
    manifest = {"file": MODEL, "bytes": model.stat().st_size, "sha256": sha256(model),
                "parts": parts}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def calls(out: Path, chunk: int = CHUNK, root: Path = ROOT) -> list[list[str]]:
    """The ``carry`` list of each device call (paths relative to ``root``, the checkout): the
    model's parts one by one; the manifest, the gguf package and the experiment folder with the
    first part where they fit under the limit, else in a call of their own."""
    rel = lambda p: str(p.relative_to(root))  # noqa: E731
    extra = [out / "manifest.json", *(p for p in (out / "py", out / "exp") if p.exists())]
    size = sum(f.stat().st_size for p in extra for f in ([p] if p.is_file() else p.rglob("*"))
               if f.is_file())  # fmt: skip
    if size > CARRY_LIMIT - CHECKOUT:
        raise SystemExit(f"{out}: the manifest, py/ and exp/ hold {size / 2**20:.0f} MiB, over "
                         "what one call carries; make the experiment's pool smaller")  # fmt: skip
    plan = [[rel(p)] for p in sorted((out / "model").glob("part-*"))]
    if size + chunk > CARRY_LIMIT - CHECKOUT:
        plan.insert(0, [])
    plan[0] += [rel(p) for p in extra]
    return plan


def assemble(out: Path) -> Path:
    """Join ``out/model/part-NN`` into ``out/MODEL`` after checking each against the manifest."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{out / 'manifest.json'}: cannot read it ({e}); carry it first") from None
    bad = []
    for part in manifest["parts"]:
        path = out / "model" / part["name"]
        if not path.is_file():
            bad.append(f"{path} missing")
        elif path.stat().st_size != part["bytes"] or sha256(path) != part["sha256"]:
            bad.append(f"{path} damaged")
    if bad:
        raise SystemExit(f"{', '.join(bad)}; carry those parts again")
    target = out / manifest["file"]
    with target.open("wb") as f:
        for part in manifest["parts"]:
            f.write((out / "model" / part["name"]).read_bytes())
    if sha256(target) != manifest["sha256"]:
        target.unlink()
        raise SystemExit(
            f"{target}: the joined file does not match the manifest's sha256; run this script "
            "again here (without --assemble) and carry every part again"
        )
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assemble", action="store_true", help="on the GPU machine: join the parts")
    p.add_argument("--experiment", type=Path, help="an experiment folder with data/ and scores/")
    p.add_argument("--out", type=Path, default=DEVICE, help="the folder to write (.device/)")
    args = p.parse_args(argv)
    if args.assemble:
        print(assemble(args.out))
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from tamis.model.loading import resolve

    _, model = resolve("gemma3-270m")
    manifest = pack(model, args.out, experiment=args.experiment)
    print(f"{args.out}: {len(manifest['parts'])} parts of {manifest['file']}")
    for n, carry in enumerate(calls(args.out), 1):
        print(f"call {n}: carry {json.dumps(carry)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
