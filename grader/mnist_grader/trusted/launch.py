"""Start one trusted run in its sandbox and collect its verdicts (runs in the grading parent).

The runner (``mnist_grader.trusted.runner``) executes student definitions, so it gets the same kind
of wall as the student's kernel (``mnist_grader.grading.sandbox``): a bubblewrap view built from a whitelist
(system folders, the Python install, the course's packages, the data; all read-only), a private
size-limited /tmp, no network, its own pid namespace, rlimits and an unprivileged uid. Unlike the
kernel it sees no student file at all: the definitions arrive on stdin with the job. Verdicts come
back on a pipe, each line carrying a fresh random nonce; lines without it are ignored.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import select
import signal
import subprocess
import threading
import time
from itertools import count
from dataclasses import dataclass, field
from pathlib import Path

from traitlets import Float, List, Unicode, default
from traitlets.config import Configurable

from mnist_grader.grading.sandbox import DROP_PRIVILEGES, KernelSettings, Limits, _SYSTEM_DIRS, \
    kernel_environment
from mnist_grader.trusted.job import NotebookJob

#: Longest stdout+stderr of a trusted run kept for the instructor (the tail).
LOG_TAIL = 20_000


@dataclass
class Verdict:
    """What the trusted run said about one cell."""

    ok: bool
    message: str = ""
    failed_in: str | None = None  # "visible" or "hidden" (the part of a test cell that failed)
    seconds: float = 0.0


@dataclass
class TrustedReport:
    """All verdicts of one submission's trusted run.

    Args:
        tests: {(notebook, test grade_id): Verdict}.
        lab_errors: "notebook/cell: message" for instructor cells that failed with this student's code.
        finished: the runner got through every cell.
        reason: why it did not finish (time limit, crash), for the instructor.
        seconds: wall time of the whole run.
    """

    tests: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    student_errors: list[str] = field(default_factory=list)
    lab_errors: list[str] = field(default_factory=list)
    finished: bool = False
    reason: str = ""
    seconds: float = 0.0
    log_tail: str = ""

    def verdict(self, notebook: str, cell: str) -> Verdict:
        """The verdict on a test cell; a cell the run never reached failed."""
        found = self.tests.get((notebook, cell))
        if found is not None:
            return found
        why = self.reason or "the trusted run did not reach this test"
        return Verdict(ok=False, message=f"not graded: {why}")


class TrustedRun(Configurable):
    """Course settings of the trusted run (``c.TrustedRun.<name>`` in nbgrader_config.py)."""

    skip_cells = List(Unicode(), help="grade ids of locked instructor cells the trusted run leaves "
                      "out: cells that only show things (widgets, figures) and that no test "
                      "needs").tag(config=True)
    stub_calls = List(Unicode(), help="functions (module.function or module.Class.method) that "
                      "only draw or display; the trusted run replaces them with a function that "
                      "does nothing and returns None, to save time").tag(config=True)
    cell_timeout = Float(help="seconds one cell may run in the trusted run (default: the "
                         "course's Execute.timeout)").tag(config=True)

    @default("cell_timeout")
    def _default_cell_timeout(self):
        return float(self.config.get("Execute", {}).get("timeout", 120) or 120)


def trusted_view(bwrap: str, readonly: list[str], tmp_mb: int, env: dict[str, str]) -> list[str]:
    """bwrap argv (without the command) for a trusted run: no student files, nothing writable but
    a private tmpfs /tmp."""
    argv = [bwrap, "--size", str(tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp",
            "--dev", "/dev", "--proc", "/proc"]
    shown = [p for p in _SYSTEM_DIRS + readonly if os.path.exists(p)]
    parents = sorted({str(a) for p in shown for a in Path(p).parents if str(a) != "/"},
                     key=lambda a: a.count("/"))
    for parent in parents:
        argv += ["--perms", "0755", "--dir", parent]
    for path in shown:
        argv += ["--ro-bind", path, path]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--chdir", "/tmp", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


@dataclass
class TrustedRunSettings:
    """How to start a trusted run.

    Args:
        python: the interpreter (the course's venv).
        readonly: what the runner may read besides system folders (Python, packages, data).
        bwrap: bubblewrap, or None (then only the uid, rlimits and wall clock apply).
        uid: unprivileged uid to run as (when the grader is root).
        limits: rlimits; ``wall_seconds`` bounds the whole run.
        threads: torch/BLAS threads.
        cell_timeout: seconds per cell.
        stub_calls: functions replaced by a no-op (see ``TrustedRun.stub_calls``).
    """

    python: str
    readonly: list[str]
    bwrap: str | None
    uid: int | None
    limits: Limits
    threads: int = 1
    cell_timeout: float = 120.0
    stub_calls: list[str] = field(default_factory=list)


def _environment(settings: TrustedRunSettings) -> dict[str, str]:
    """The runner's whole environment: the kernel's (nothing of the grader's), on the notebook's
    grading path (shorter training)."""
    env = kernel_environment(KernelSettings(
        python=settings.python, uid=settings.uid or 0, limits=settings.limits,
        readonly=settings.readonly, workdir="/tmp", submitted_dir="", ipc_dir="",
        bwrap=settings.bwrap, threads=settings.threads))
    env["NBGRADER_EXECUTION"] = "autograde"
    return env


def _job(jobs: list[NotebookJob], settings: TrustedRunSettings, nonce: str) -> dict:
    """What the runner reads (``mnist_grader.trusted.runner.run_job``)."""
    return {"nonce": nonce, "threads": settings.threads, "cell_timeout": settings.cell_timeout,
            "stub_calls": settings.stub_calls,
            "notebooks": [{"name": j.name, "cells": j.cells} for j in jobs]}


def run_trusted(jobs: list[NotebookJob], settings: TrustedRunSettings,
                extra_env: dict[str, str] | None = None) -> TrustedReport:
    """Run the hidden tests of every notebook against the student's definitions; see the module
    docstring."""
    nonce = secrets.token_hex(16)
    job = _job(jobs, settings, nonce)
    env = _environment(settings)
    env.update(extra_env or {})
    read_end, write_end = os.pipe()
    shim = {"rlimits": settings.limits.rlimits(),
            "uid": settings.uid if os.getuid() == 0 else None,
            "argv": [settings.python, "-m", "mnist_grader.trusted.runner", str(write_end)]}
    command = [settings.python, "-c", DROP_PRIVILEGES, json.dumps(shim)]
    if settings.bwrap:
        command = trusted_view(settings.bwrap, settings.readonly, settings.limits.tmp_mb, env) \
            + command
        popen_env = None
    else:
        popen_env = env
    report = TrustedReport()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=popen_env, cwd="/",
                                pass_fds=(write_end,), start_new_session=True)
    except OSError as err:
        os.close(read_end)
        os.close(write_end)
        report.reason = f"the trusted run could not start: {err}"
        return report
    os.close(write_end)
    try:
        _feed_and_collect(proc, json.dumps(job).encode(), read_end, nonce, report,
                          deadline=start + settings.limits.wall_seconds)
    finally:
        os.close(read_end)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        report.seconds = time.monotonic() - start
    if not report.finished and not report.reason:
        tail = report.log_tail.strip().splitlines()[-1:] or ["no output"]
        report.reason = f"the trusted run stopped early (exit status {proc.returncode}): {tail[0][:200]}"
    return report


def _feed_and_collect(proc: subprocess.Popen, job: bytes, results: int, nonce: str,
                      report: TrustedReport, deadline: float) -> None:
    """Write the job to the runner's stdin, then read verdicts and its output until it ends."""
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    out = proc.stdout.fileno()
    buffers = {results: b"", out: b""}
    tail = b""
    open_fds = {results, out}
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            report.reason = "the trusted run reached the wall-clock limit (an endless loop?)"
            return
        ready, _, _ = select.select(list(open_fds), [], [], min(remaining, 1.0))
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            if fd == out:
                tail = (tail + chunk)[-LOG_TAIL:]
                continue
            buffers[fd] += chunk
            while b"\n" in buffers[fd]:
                line, buffers[fd] = buffers[fd].split(b"\n", 1)
                _take(line, nonce, report)
            if len(buffers[fd]) > 1_000_000:  # a verdict line is small: this is not one
                buffers[fd] = b""
    report.log_tail = tail.decode(errors="replace")


def _take(line: bytes, nonce: str, report: TrustedReport) -> None:
    try:
        message = json.loads(line)
    except ValueError:
        return
    if not isinstance(message, dict) or message.get("nonce") != nonce:
        return
    kind = message.get("kind")
    where = f"{message.get('notebook')}/{message.get('cell')}"
    if kind == "done":
        report.finished = True
    elif kind == "test":
        report.tests[(message["notebook"], message["cell"])] = Verdict(
            ok=bool(message.get("ok")), message=str(message.get("message", "")),
            failed_in=message.get("failed_in"), seconds=float(message.get("seconds", 0.0)))
    elif kind == "lab" and not message.get("ok"):
        report.lab_errors.append(f"{where}: {message.get('message', '')}")
    elif kind == "student" and not message.get("ok"):
        report.student_errors.append(f"{where}: {message.get('message', '')}")
    elif kind == "setup" and not message.get("ok"):
        report.lab_errors.append(f"setup: {message.get('message', '')}")


class TrustedServer:
    """The grader's side of ``mnist_grader.trusted.server``: one sandboxed server per grading run,
    one forked trusted run per submission (same verdicts as ``run_trusted``, without paying the
    imports each time).

    Args:
        settings: as for ``run_trusted`` (``uid`` is given per run).
        preload: modules the server imports once (the course's packages).
    """

    def __init__(self, settings: TrustedRunSettings, preload: list[str]):
        self.settings = settings
        env = _environment(settings)
        command = [settings.python, "-m", "mnist_grader.trusted.server",
                   json.dumps({"preload": preload, "threads": settings.threads})]
        if settings.bwrap:
            command = trusted_view(settings.bwrap, settings.readonly, settings.limits.tmp_mb,
                                   env) + command
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd="/",
                                     env=None if settings.bwrap else env,
                                     start_new_session=True)
        self._ids = count()
        self._lock = threading.Lock()
        self._inboxes: dict[str, queue.Queue] = {}
        self.dead = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
                inbox = self._inboxes.get(str(message.get("id")))
            except (ValueError, AttributeError):
                continue
            if inbox is not None:
                inbox.put(message)
        self.dead = True
        for inbox in list(self._inboxes.values()):
            inbox.put(None)

    def run(self, jobs: list[NotebookJob], uid: int | None) -> TrustedReport:
        """One submission's trusted run, in a child of the server (blocks until it ends)."""
        job_id = str(next(self._ids))
        nonce = secrets.token_hex(16)
        inbox: queue.Queue = queue.Queue()
        self._inboxes[job_id] = inbox
        settings = self.settings
        request = {"id": job_id, "uid": uid if os.getuid() == 0 else None,
                   "rlimits": settings.limits.rlimits(), "wall_seconds": settings.limits.wall_seconds,
                   "job": _job(jobs, settings, nonce)}
        report = TrustedReport()
        start = time.monotonic()
        try:
            with self._lock:
                self.proc.stdin.write(json.dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.dead = True
        deadline = start + settings.limits.wall_seconds + 30
        try:
            while not self.dead or not inbox.empty():
                try:
                    message = inbox.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    report.reason = "the trusted run server did not answer in time"
                    break
                if message is None:
                    break
                if message.get("kind") == "exit" and "nonce" not in message:
                    report.log_tail = str(message.get("log_tail", ""))
                    if message.get("timed_out"):
                        report.reason = ("the trusted run reached the wall-clock limit "
                                         "(an endless loop?)")
                    elif not report.finished:
                        tail = report.log_tail.strip().splitlines()[-1:] or ["no output"]
                        report.reason = (f"the trusted run stopped early (exit status "
                                         f"{message.get('status')}): {tail[0][:200]}")
                    break
                _take(json.dumps(message).encode(), nonce, report)
            else:
                report.reason = report.reason or "the trusted run server died"
        finally:
            self._inboxes.pop(job_id, None)
            report.seconds = time.monotonic() - start
        return report

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
