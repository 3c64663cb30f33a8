"""Runs in the grading command (the parent): starts and watches the nbgrader process of each submission.

Each submission's nbgrader process (a fresh one, or a child of the fork server,
``mnist_grader.grading.zygote``) runs under a wall clock; its whole process tree (nbgrader and the
student's kernel) is sampled for its memory and killed when it holds far more processes than the
kernel may start. Every process started here dies with the grading command (``die_with_parent``),
so no grading outlives it, even after a SIGKILL.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from mnist_grader.grading.sandbox import Limits

if TYPE_CHECKING:  # the fork server imports ``die_with_parent`` from here
    from mnist_grader.grading.zygote import ForkServer

#: prctl option: the signal a process gets when its parent dies
PR_SET_PDEATHSIG = 1


class Supervisor:
    """The nbgrader processes of one grading run: each under a wall clock and a process watchdog.

    Args:
        limits: ``wall_seconds`` bounds each submission, ``processes`` its kernel.
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def run(self, command: list[str], cwd: Path, env: dict[str, str],
            log_path: Path) -> tuple[int, float, bool]:
        """Run a command with a wall clock; returns (exit status, peak RSS in KiB, timed out)."""
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=die_with_parent)
        with self._lock:
            self._running.add(proc)
        deadline = time.monotonic() + self.limits.wall_seconds
        timed_out = False
        peak_kb = 0
        next_sample = 0.0
        try:
            while True:
                pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    return proc.returncode, peak_kb, timed_out
                now = time.monotonic()
                if now > deadline and not timed_out:
                    timed_out = True
                    kill_group(proc.pid)
                if now >= next_sample:
                    peak_kb = max(peak_kb, self.watch(proc.pid))
                    next_sample = now + 0.25
                time.sleep(0.05)
        finally:
            with self._lock:
                self._running.discard(proc)

    def run_forked(self, zygote: ForkServer, job: str, scratch: Path, env: dict[str, str],
                   argv: list[str], log_path: Path) -> tuple[int, float, bool]:
        """Like ``run``, as a child of the fork server (``nbgrader autograde ARGV`` in
        ``scratch/course``)."""
        zygote.submit(job, str(scratch / "course"), str(log_path), env, argv)
        pid = zygote.pid(job, timeout=60)
        if pid is None:
            raise RuntimeError("the grading fork server is not answering (see zygote.log)")
        deadline = time.monotonic() + self.limits.wall_seconds
        timed_out, peak_kb = False, 0
        while True:
            status = zygote.status(job, timeout=0.25)
            if status is not None:
                return status, peak_kb, timed_out
            if zygote.dead:
                raise RuntimeError("the grading fork server died")
            peak_kb = max(peak_kb, self.watch(pid))
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                kill_group(pid)

    def watch(self, pid: int) -> int:
        """Sample one submission's process tree: returns its RSS (KiB); kills the tree when it holds
        far more processes than the kernel may start (RLIMIT_NPROC is not enforced for root, which
        matters when there is no bubblewrap to run the kernel as its own uid)."""
        rss_kb, tree = tree_stats(pid)
        if len(tree) > self.limits.processes + 16:
            for member in tree:
                try:
                    member.kill()
                except psutil.NoSuchProcess:
                    pass
        return rss_kb

    def kill_all(self) -> None:
        """Kill every process group started by ``run`` that is still running."""
        with self._lock:
            for proc in list(self._running):
                kill_group(proc.pid)


def tree_stats(root_pid: int) -> tuple[int, list[psutil.Process]]:
    """Resident memory (KiB) of a process and all its descendants, and those processes (the
    nbgrader process and the student's kernel together: what one worker uses)."""
    try:
        root = psutil.Process(root_pid)
        tree = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, []
    total = 0
    for process in tree:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # ended (or not ours to read) between the listing and the sample
            continue
    return total // 1024, tree


def die_with_parent() -> None:
    """In a child (before exec, or in a forked child): get SIGKILL when its parent dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl (not Linux): the grading command cleans up itself
        pass


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (started with a session of its own), if any."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
