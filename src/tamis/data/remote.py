"""Inputs given as a URL: ``s3://``, ``gs://``, ``hdfs://``, ``file://`` through pyarrow, any other
scheme fsspec knows (``memory://``, ``https://`` ...) through fsspec.

The object is streamed, 1 MiB at a time, into a local temporary file that the local readers then
read, so every format and every check of bad input behaves as for a file; the readers name the
URL, not the copy, in their messages. A missing object, refused credentials or an unreachable
server is a one-line :class:`~tamis.base.errors.TamisError` naming the URL and the fix.

S3 takes its credentials from the usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``...) and its options from the query: an S3-compatible server on another host is
``s3://bucket/key.jsonl?endpoint_override=HOST:PORT&scheme=http``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tamis.base.errors import TamisError

# Two letters at least, so a Windows drive ("C://data") is not a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
# "s3://KEY:SECRET@bucket/...": the secret is never printed.
_SECRET = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+://[^/?#@:]*:)[^/?#@]*@")
CHUNK = 1 << 20
_DENIED = (
    "ACCESS_DENIED",
    "AccessDenied",
    "Forbidden",
    "Unauthorized",
    "InvalidAccessKeyId",
    "INVALID_ACCESS_KEY_ID",
    "SignatureDoesNotMatch",
    "SIGNATURE_DOES_NOT_MATCH",
    "credentials",
    "authenticate",
)
_UNREACHABLE = (
    "NETWORK_CONNECTION",
    "connect to",
    "Could not connect",
    "Couldn't connect",
    "Cannot connect",
    "Connection refused",
    "Could not resolve",
    "Name or service not known",
)
_SCHEMES_HINT = "s3://, gs://, hdfs://, file://, a scheme fsspec knows (memory://, https://...)"


def is_url(path: Any) -> bool:
    """Whether ``path`` is a ``scheme://...`` string (a :class:`~pathlib.Path` never is: it would
    have collapsed the ``//``). Prefix a local file named like a URL with ``./``."""
    return isinstance(path, str) and _SCHEME.match(path) is not None


def data_arg(text: str) -> str | Path:
    """The argparse type of DATA: a URL stays text (a Path would collapse its ``//``), anything
    else is a :class:`~pathlib.Path`, as before URLs were read."""
    return text if is_url(text) else Path(text)


def shown(url: str) -> str:
    """``url`` as messages print it: a password in it replaced by ``***``."""
    return _SECRET.sub(r"\1***@", url)


def url_suffix(url: str) -> str:
    """The extension of the URL's path, lower case, its ``?query`` ignored:
    ``url_suffix("s3://b/Data.JSONL?scheme=http") == ".jsonl"``."""
    rest = url.split("://", 1)[1].split("?", 1)[0]
    return PurePosixPath(rest).suffix.lower()


def url_name(url: str) -> str:
    """The object's name, the last part of the URL's path without its ``?query``:
    ``url_name("s3://b/d/x.jsonl?scheme=http") == "x.jsonl"``."""
    return PurePosixPath(url.split("://", 1)[1].split("?", 1)[0]).name


@dataclass
class Copy:
    """A local copy of a URL's object and the sha256 of its bytes."""

    path: Path
    sha256: str


@contextlib.contextmanager
def fetch(url: str) -> Iterator[Copy]:
    """Stream the object at ``url`` into a temporary file (in ``$TMPDIR``, with the URL's
    extension), deleted on exit. Raises :class:`TamisError` naming the URL when the object cannot
    be read or copied."""
    copy = _copy(url)
    try:
        yield copy
    finally:
        with contextlib.suppress(OSError):
            copy.path.unlink()


def _copy(url: str) -> Copy:
    # The object is opened first, so a server that never answers leaves no file behind.
    with _open(url) as stream:
        try:
            fd, tmp = tempfile.mkstemp(prefix="tamis-input-", suffix=url_suffix(url))
        except OSError as e:
            raise _no_copy(url, e) from None
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                while chunk := _read(url, stream):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):  # writing the copy (a full disk): reads raise TamisError
                raise _no_copy(url, e) from None
            raise
    return Copy(Path(tmp), digest.hexdigest())


def _no_copy(url: str, e: OSError) -> TamisError:
    return TamisError(
        f"{shown(url)}: cannot copy it to a temporary file in {tempfile.gettempdir()} "
        f"({e.strerror or e}); free some disk space there or set TMPDIR to a larger disk"
    )


def _read(url: str, stream) -> bytes:
    try:
        return stream.read(CHUNK)
    except Exception as e:  # file systems raise their own types (OSError, aiohttp's...)
        raise read_error(url, e) from None


def _open(url: str):
    """A binary stream of the object at ``url``: pyarrow when it knows the scheme, else fsspec."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(url)
    except pa.ArrowNotImplementedError:  # a scheme this pyarrow build lacks
        return _open_fsspec(url)
    except pa.ArrowInvalid as e:
        if "Unrecognized filesystem type" in str(e):
            return _open_fsspec(url)
        raise TamisError(
            f"{shown(url)}: not a valid URL ({_one_line(e)}); fix it, e.g. "
            "s3://bucket/key.jsonl or file:///absolute/path.jsonl"
        ) from None
    except OSError as e:  # hdfs without Java, an S3 bucket whose region cannot be found...
        raise read_error(url, e) from None
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(path)
        if info.type == pafs.FileType.Directory:
            raise IsADirectoryError(path)
        return fs.open_input_stream(path)
    except OSError as e:
        raise read_error(url, e) from None


def _open_fsspec(url: str):
    import fsspec

    scheme = _SCHEME.match(url).group(1)
    try:
        return fsspec.open(url, "rb").open()
    except ImportError as e:  # a known scheme whose package is missing: "install gcsfs..."
        raise TamisError(
            f"{shown(url)}: the filesystem for '{scheme}://' is not installed "
            f"({_one_line(e)}); install it, or use {_SCHEMES_HINT}"
        ) from None
    except ValueError as e:
        if "Protocol not known" in str(e):
            raise TamisError(
                f"{shown(url)}: unknown URL scheme '{scheme}://'; use a local path or "
                f"{_SCHEMES_HINT}"
            ) from None
        raise read_error(url, e) from None
    except Exception as e:  # each fsspec filesystem raises its own types
        raise read_error(url, e) from None


def read_error(url: str, e: BaseException) -> TamisError:
    """What went wrong reading ``url``, as a one-line :class:`TamisError` with the fix."""
    detail = _one_line(e)
    if isinstance(e, FileNotFoundError):
        return TamisError(f"{shown(url)}: not found; check the bucket and key (or path) in the URL")
    if isinstance(e, IsADirectoryError):
        return TamisError(f"{shown(url)}: is a folder, not a file; name one file in it")
    if isinstance(e, PermissionError) or any(word in detail for word in _DENIED):
        return TamisError(
            f"{shown(url)}: access denied ({detail}); check the credentials (S3: "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; GCS: "
            "GOOGLE_APPLICATION_CREDENTIALS) and that they may read this object"
        )
    if isinstance(e, ConnectionError) or any(word in detail for word in _UNREACHABLE):
        return TamisError(
            f"{shown(url)}: cannot connect ({detail}); check the host, the port and the "
            "network (an S3-compatible server takes ?endpoint_override=HOST:PORT&scheme=http)"
        )
    return TamisError(f"{shown(url)}: cannot read it ({detail}); check the URL and your access")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."
