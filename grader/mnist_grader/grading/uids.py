"""Runs in the grading command (the parent): a uid of its own for every sandboxed kernel.

Unique on the machine, across every grading process.

RLIMIT_NPROC counts the processes of a uid, whoever started them; two kernels under the same uid
share one budget (a fork bomb in one kills the other), and a process left by one could be seen or
signalled by the other. So each running submission gets a uid drawn at random from a large range
(``SANDBOX_UIDS``, far above the uids that own files or run services) and claimed machine-wide: the
claim is an abstract unix socket named after the uid, which the kernel frees when the claiming
process exits or dies (no file to clean up, no fixed path), and a uid that any process runs as
(real, effective or saved uid) is never chosen.
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

import psutil

#: where sandbox uids are drawn from (no /etc/passwd entry needed: the kernel only becomes the uid)
SANDBOX_UIDS = range(2**20, 2**30)
_CLAIM_PREFIX = "\0instructor-sandbox-uid-"
_TRIES = 200


class UidClaim:
    """A sandbox uid held for one running submission; ``release`` (or process exit) frees it."""

    def __init__(self, uid: int, sock: socket.socket):
        self.uid = uid
        self._sock = sock

    def release(self) -> None:
        self._sock.close()


def uid_pool() -> range:
    """The sandbox uids this process can switch to: ``SANDBOX_UIDS`` as far as this (possibly
    user-namespaced) machine maps them, else its largest mapped range of unprivileged uids."""
    mapped = []
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, _outside, count = (int(x) for x in line.split())
            mapped.append(range(inside, inside + count))
    except (OSError, ValueError):
        mapped = [range(0, 2**32 - 1)]
    best = max((range(max(r.start, SANDBOX_UIDS.start), min(r.stop, SANDBOX_UIDS.stop))
                for r in mapped), key=len, default=range(0))
    if len(best) >= 1000:
        return best
    return max((range(max(r.start, 70000), r.stop) for r in mapped), key=len, default=range(0))


def uids_in_use() -> set[int]:
    """Every uid a process on this machine runs as (real, effective, saved)."""
    used = set()
    for process in psutil.process_iter(["uids"]):
        if process.info["uids"] is not None:  # None: it ended while being read
            used.update(process.info["uids"])
    return used


def claim_sandbox_uid(rng: random.Random | None = None) -> UidClaim:
    """Claim a uid that no process uses and no other grading process holds.

    Raises:
        RuntimeError: no free uid was found (only when almost the whole pool is taken).
    """
    rng = rng or random.SystemRandom()
    pool = uid_pool()
    if not pool:
        raise RuntimeError("no unprivileged uid range is mapped in this user namespace: "
                           "cannot give sandboxed kernels uids of their own")
    busy = uids_in_use()
    for _ in range(_TRIES):
        uid = rng.randrange(pool.start, pool.stop)
        if uid in busy:
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(f"{_CLAIM_PREFIX}{uid}")
        except OSError:  # another grading process holds it
            sock.close()
            continue
        if uid in uids_in_use():  # started running meanwhile under a non-claiming program
            sock.close()
            continue
        return UidClaim(uid, sock)
    raise RuntimeError(f"no free sandbox uid found in {_TRIES} tries from {pool}")


def processes_of(uids: set[int]) -> list[str]:
    """Processes running as any of ``uids``: ``"pid N: COMMAND"`` lines."""
    return [f"pid {p.pid}: {p.info['name']}" for p in psutil.process_iter(["uids", "name"])
            if p.info["uids"] is not None and uids.intersection(p.info["uids"])]
