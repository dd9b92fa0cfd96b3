"""File helpers: atomic writes (temporary file, then one rename), a lock between processes, and
content hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from tamis.base.errors import TamisError

# mkstemp creates files readable by the owner only; outputs get the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def process_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing) until the block ends, so
    that processes sharing a folder (pytest workers, Ray actors) do one piece of work one at a
    time. POSIX ``flock``; where there is none (Windows) or the file system refuses it (NFS
    without lockd, Lustre without ``-o flock``) it locks nothing, and callers must stay correct
    without it (only slower: the work may be done twice)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = path.open("a")
    except OSError as e:
        raise TamisError(f"{path.parent}: cannot write here ({e.strerror or e})") from None
    with f:
        locked = _flock(f, exclusive=True)
        try:
            yield
        finally:
            if locked:
                _flock(f, exclusive=False)


def _flock(f: IO, exclusive: bool) -> bool:
    """Lock (``exclusive``) or unlock ``f``; False where there are no locks to take."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return False
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_UN)
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise TamisError(f"{f.name}: cannot lock ({e.strerror or e})") from None
        return False  # no locks on this file system
    return True


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    A failed write (a full disk, a file size limit, ``path`` being a folder) raises a
    :class:`TamisError` and leaves the previous ``path``, if any, untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise TamisError(
            f"{path.parent}: cannot write here ({e.strerror}); choose another -o folder"
        ) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise TamisError(
                f"{path}: cannot write ({e.strerror or e}); the previous file, if any, is "
                "unchanged; free some disk space or choose another -o folder"
            ) from None
        raise


def write_json(path: Path, value: Any) -> None:
    with atomic_open(path) as f:
        json.dump(value, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")


def jsonl_line(row: Any) -> str:
    """``row`` as one line of JSON Lines, UTF-8 kept as is."""
    return json.dumps(row, ensure_ascii=False, default=str) + "\n"


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """One JSON value per line (UTF-8 kept as is), written atomically."""
    with atomic_open(path) as f:
        for row in rows:
            f.write(jsonl_line(row))


def read_jsonl(path: Path, fix: str = "fix the file") -> list[Any]:
    """Every JSON value of a JSON Lines file (blank lines skipped); an unreadable file is a
    :class:`TamisError` naming it and ``fix``."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise TamisError(f"{path}: cannot read it as JSON Lines ({e}); {fix}") from None


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
