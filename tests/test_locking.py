"""The apply lock: exclusive, waits up to the timeout, names the holder, fails clearly."""
from __future__ import annotations

import os
import threading

import pytest

from promptops.locking import LockError, file_lock


def test_second_holder_is_refused_then_admitted_after_release(tmp_path):
    path = tmp_path / "r.db.lock"
    with file_lock(path, timeout=0, what="registry r.db"):
        with pytest.raises(LockError, match=rf"registry r.db is locked by another promptops apply \(process {os.getpid()}\)"):
            with file_lock(path, timeout=0.2, what="registry r.db"):
                pass
    with file_lock(path, timeout=0, what="registry r.db"):
        pass


def test_waits_for_the_holder_within_the_timeout(tmp_path):
    path = tmp_path / "r.db.lock"
    held, release = threading.Event(), threading.Event()

    def holder():
        with file_lock(path, timeout=0, what="r"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    with file_lock(path, timeout=10, what="r"):  # admitted once the holder lets go
        assert release.is_set()
    t.join()


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(LockError, match=r"cannot lock registry x: .*check the file and folder permissions"):
        with file_lock(blocker / "r.db.lock", timeout=0, what="registry x"):
            pass
