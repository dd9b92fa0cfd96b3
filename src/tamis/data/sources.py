"""Where an input's records are: one file, a folder or glob of part files, compressed or not.

Real corpora come in parts (``part-00000.parquet``, Spark's and most hubs' layout; the
``data-00000-of-00001.arrow`` files of ``datasets.save_to_disk``) and compressed
(``train.jsonl.gz``, ``.zst``). :func:`local_parts` turns a path into its :class:`Part` files in a
stable order: a folder's parts sorted by name (files starting with ``.`` or ``_``, such as
Spark's ``_SUCCESS``, are not data and are left out), a glob's matches sorted, a ``save_to_disk``
folder in the order of its ``state.json``. Each part's type comes from its name, the last
suffix naming a compression (``.gz``, ``.bz2``, ``.xz``, ``.zst``) and the one before it the
format; a compressed file whose name does not say so is recognised by its magic bytes.
:func:`opened` gives a readable plain copy of a compressed part (decompressed to a temporary
file, in chunks), and :func:`source_sha256` one hash over every part, so a manifest can tell when
any part changed.
"""

from __future__ import annotations

import bz2
import contextlib
import glob
import gzip
import hashlib
import json
import lzma
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import file_sha256

FORMATS = (".jsonl", ".json", ".parquet", ".csv")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
ARROW = ".arrow"  # a datasets.save_to_disk part: Arrow IPC
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Part:
    """One file of an input: ``path`` on disk, ``name`` in messages, its ``suffix`` (the format)
    and ``compression`` (None, or a key of :data:`MAGIC`'s values)."""

    path: Path
    name: str
    suffix: str
    compression: str | None = None


def file_type(name: str) -> tuple[str, str | None]:
    """``(format suffix, compression)`` from a file name: ``x.jsonl.gz`` -> ``(".jsonl",
    "gzip")``, ``x.csv`` -> ``(".csv", None)``. The suffix may be unsupported; see
    :func:`check_type`."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        return (suffixes[-2] if len(suffixes) > 1 else ""), COMPRESSIONS[suffixes[-1]]
    return (suffixes[-1] if suffixes else ""), None


def check_type(name: str, suffix: str, compression: str | None) -> None:
    """A clear error for a file type tamis cannot read."""
    if suffix in FORMATS:
        return
    packed = f" inside the {compression} file" if compression else ""
    raise TamisError(
        f"{name}: unsupported file type '{suffix or '(none)'}'{packed}; use one of: "
        f"{', '.join(FORMATS)}, optionally compressed ({', '.join(COMPRESSIONS)}: "
        "data.jsonl.gz), or a folder of such part files"
    )


def local_parts(path: Path, name: str) -> list[Part]:
    """The parts of a local file, folder or glob, in reading order (see the module's doc)."""
    text = str(path)
    if not path.exists() and any(c in text for c in GLOB_CHARS):
        matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not matches:
            raise TamisError(f"{name}: no file matches this pattern; check the path")
        return _typed(matches, name)
    if path.is_dir():
        return _folder_parts(path, name)
    if not path.is_file():
        raise TamisError(f"{name}: no such file or folder; check the path")
    suffix, compression = file_type(path.name)
    compression = magic(path) or compression
    check_type(name, suffix, compression)
    return [Part(path, name, suffix, compression)]


def _folder_parts(folder: Path, name: str) -> list[Part]:
    if (folder / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in folder.iterdir() if (p / "state.json").is_file())
        raise TamisError(
            f"{name}: a saved DatasetDict with splits {', '.join(splits) or '(none)'}; point "
            f"tamis at one split's folder, e.g. {folder / (splits[0] if splits else 'train')}"
        )
    state = folder / "state.json"
    if state.is_file():  # datasets.save_to_disk
        try:
            files = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        except (ValueError, KeyError, TypeError):
            raise TamisError(
                f"{state}: not a datasets.save_to_disk state file (no _data_files list); "
                "save the dataset again"
            ) from None
        return [Part(folder / f, str(folder / f), ARROW) for f in files]
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    if not files:
        raise TamisError(f"{name}: the folder has no data files; point tamis at another folder")
    return _typed(files, name)


def _typed(files: list[Path], name: str) -> list[Part]:
    """Parts of a folder or glob: every readable file, all of one format."""
    parts = []
    for p in files:
        suffix, compression = file_type(p.name)
        if suffix not in FORMATS:
            raise TamisError(
                f"{p}: not a data file of {name} (type '{suffix or '(none)'}'); move it out, "
                f"or name the parts with a pattern such as {Path(name) / '*.parquet'}"
            )
        parts.append(Part(p, str(p), suffix, magic(p) or compression))
    kinds = sorted({p.suffix for p in parts})
    if len(kinds) > 1:
        raise TamisError(
            f"{name}: parts of several formats ({', '.join(kinds)}); keep one format per "
            "folder, or name the parts with a pattern"
        )
    return parts


def magic(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(6)
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)


@contextlib.contextmanager
def opened(part: Part) -> Iterator[Path]:
    """A plain file with ``part``'s content: the file itself, or a temporary decompressed copy
    (removed afterwards). A damaged or cut-short stream is a :class:`TamisError` naming it."""
    if part.compression is None:
        yield part.path
        return
    with tempfile.TemporaryDirectory(prefix="tamis-") as tmp:
        plain = Path(tmp) / f"part{part.suffix}"
        try:
            with _decompressing(part) as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
            raise TamisError(
                f"{part.name}: the {part.compression} data is damaged or cut short ({e}); "
                "check the file, or decompress it yourself to see how much is readable"
            ) from None
        yield plain


def _decompressing(part: Part):
    if part.compression == "gzip":
        return gzip.open(part.path, "rb")
    if part.compression == "bz2":
        return bz2.open(part.path, "rb")
    if part.compression == "xz":
        return lzma.open(part.path, "rb")
    import pyarrow as pa  # zstd: pyarrow's codec (the standard library has none before 3.14)

    return pa.input_stream(str(part.path), compression="zstd")


def source_sha256(path: Path) -> str:
    """One sha256 for a file (its bytes' hash, as before parts) or for all parts of a folder or
    glob (over each part's name and hash), so that a changed, added or removed part changes it."""
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for part in local_parts(path, str(path)):
        h.update(f"{part.path.name}\0{file_sha256(part.path)}\n".encode())
    return h.hexdigest()


def exists(path: Path) -> bool:
    """Whether a local file, folder or glob names something to read."""
    if path.exists():
        return True
    return any(c in str(path) for c in GLOB_CHARS) and bool(glob.glob(str(path)))


def input_schema(where: str) -> Any:
    """The Arrow schema of a local Parquet input (a file, or the first of its parts; ``where`` as
    a manifest names it), without pandas' metadata: what ``--output-format parquet`` keeps. None
    for any other input, and for a URL (its object is not kept locally)."""
    from tamis.data.remote import is_url

    path = Path(where)
    if is_url(where) or not exists(path):
        return None
    parts = local_parts(path, str(path))
    if parts[0].suffix != ".parquet" or parts[0].compression:
        return None
    import pyarrow.parquet as pq

    return pq.read_schema(parts[0].path).remove_metadata()
