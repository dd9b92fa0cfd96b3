"""Atomic writes: all or nothing, normal permissions, clear errors."""

import os
import stat

import pytest

from tamis.base.errors import TamisError
from tamis.base.files import atomic_open, write_json


def test_atomic_write_replaces_in_one_step_with_normal_permissions(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert path.read_text().strip() == '{\n  "a": 1\n}'


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_output_path_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TamisError, match="cannot write here"), atomic_open(blocker / "out.json"):
        pass


def test_process_lock_excludes_a_second_holder_until_released(tmp_path):
    import fcntl

    from tamis.base.files import process_lock

    lock = tmp_path / "sub" / ".x.lock"  # its folder is made

    def free() -> bool:
        with lock.open("a") as f:  # a second open file, as another process would hold
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return True

    with process_lock(lock):
        assert not free()
    assert free()
