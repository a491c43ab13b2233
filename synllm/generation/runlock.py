"""The per-run OS lock: one process at a time writes a run folder.

Two processes on one run (two notebooks, or a notebook and the command line) would both
append the same requests to ``raw.jsonl``. The writer of a run holds ``flock`` on the run
folder's ``.lock`` file and writes who it is into it; a second writer waits a bounded
time, saying who holds the lock, then stops with a :class:`~synllm.errors.GenerationError`.
The OS releases the lock when its holder ends, however it ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from synllm.errors import GenerationError
from synllm.files import LOCK, storage_error

log = logging.getLogger(__name__)

#: Seconds a run waits for another process that holds its lock before it gives up.
LOCK_WAIT_S = 10.0


def _lock_holder(fd: int) -> str:
    """Who holds a run lock, from what the holder wrote into the lock file."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        info = json.loads(os.pread(fd, 4096, 0))
        return f"process {int(info['pid'])} on {info['host']} (since {info['since']}: {info['command']})"
    return "another process"


@contextlib.contextmanager
def run_lock(run_dir: Path, *, wait_s: float | None = None, poll_s: float = 0.1) -> Iterator[None]:
    """Hold the OS lock of a run folder (``flock`` on ``.lock``), so one process at a time writes a run.

    A lock held elsewhere is waited for up to ``wait_s`` seconds (default :data:`LOCK_WAIT_S`),
    with one warning saying who holds it; after that, GenerationError names the folder, the
    holder and what to do. The OS releases the lock when its holder ends, even on ``kill -9``.
    Where ``fcntl`` does not exist (Windows), or the file system has no locks, runs are not locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    run_dir = Path(run_dir)
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise storage_error(run_dir / LOCK, exc, "create the run lock") from None
    try:
        deadline, told = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(fd)
                if time.monotonic() >= deadline:
                    raise GenerationError(
                        f"the run folder {run_dir} is being written by {holder}; two writers would cache the "
                        "same answers twice. Wait for it to finish (or stop it), then rerun: its answers are reused"
                    ) from None
                if not told:
                    log.warning("%s: waiting up to %g s for %s, which is writing this run", run_dir, wait_s, holder)
                    told = True
                time.sleep(poll_s)
            except OSError as exc:  # a file system without locks (some network mounts): go on, but say so
                log.warning("%s: cannot be locked (%s); make sure no other process writes this run", run_dir, exc)
                break
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300] or "python",
        }
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)
