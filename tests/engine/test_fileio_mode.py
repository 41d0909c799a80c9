"""atomic_write gives the file the mode a plain open() would (mkstemp's is private)."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from app.engine.fileio import atomic_write


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_new_files_follow_the_umask_and_existing_files_keep_their_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "new.bin"
        atomic_write(path, lambda fh: fh.write(b"x"))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.chmod(path, 0o640)
        atomic_write(path, lambda fh: fh.write(b"y"))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and path.read_bytes() == b"y"
    finally:
        os.umask(old)
