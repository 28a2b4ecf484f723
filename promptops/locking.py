"""An advisory lock file, held by `apply` from planning to the last call (terraform's state lock).

Two applies to one target at once would both plan against the same remote state and both create
the same versions; with the lock, the second one stops with a clear message (or waits up to
``--lock-timeout`` seconds). The lock is released when the process ends, however it ends, because
it is an ``flock`` on an open file descriptor.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from .errors import PromptOpsError


class LockError(PromptOpsError):
    """Another promptops process holds the lock."""


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Waits up to ``timeout`` seconds (0: do not wait), then raises LockError naming ``what`` and the
    process id of the holder.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockError(f"cannot lock {what}: {exc.strerror} ({path}); applying needs write access to "
                        "its folder, so check the file and folder permissions") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(f"{what} is locked by another promptops apply{_holder(fd)}; wait for it to "
                                    "finish, or pass --lock-timeout SECONDS to wait for it") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (process {pid})" if pid.isdigit() else ""
