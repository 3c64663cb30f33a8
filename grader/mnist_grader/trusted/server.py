"""A fork server for trusted runs: import numpy, torch and the course's packages once, fork per job.

Runs inside the trusted sandbox (``mnist_grader.trusted.launch.trusted_view``), started once per
grading run by ``mnist_grader.trusted.launch.TrustedServer``. Importing torch and the helpers costs
about 2.5 s of CPU, as much as the rest of a trusted run; the server pays it once and forks a child
for each submission. Before the child loads any student code it gets a private 0700 folder in /tmp,
the job's rlimits and the submission's own unprivileged uid (so children cannot touch each other,
and /proc/self is closed to them), and its stdout/stderr go to a log in that folder.

Protocol (JSON lines): the grader writes ``{"id", "uid", "rlimits", "wall_seconds", "job"}`` on
stdin; children write verdict lines (``mnist_grader.trusted.runner``'s, with the job's nonce and
``id``) on the server's stdout; the server writes ``{"id", "kind": "exit", "status", "log_tail"}``
when a child ends or is killed at its wall-clock limit.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

from mnist_grader.grading.fork_loop import serve_forks

#: Bytes of a child's output kept for the instructor.
LOG_TAIL = 20_000


def _child(request: dict, results_fd: int) -> None:
    """In the forked child: become the trusted run of one submission (never returns)."""
    from mnist_grader.trusted import runner

    code = 1
    try:
        folder = f"/tmp/trusted-{request['id']}"
        os.mkdir(folder, 0o700)
        log = os.open(os.path.join(folder, "log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        uid = request.get("uid")
        if os.getuid() == 0 and uid is not None:
            os.chown(folder, uid, uid)
            os.fchown(log, uid, uid)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for name, value in request["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        if os.getuid() == 0 and uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)  # also makes the process non-dumpable: /proc/self is root's
        runner._not_dumpable()
        os.chdir(folder)
        os.environ["TMPDIR"] = folder
        tempfile.tempdir = None
        job = request["job"]
        nonce = job.pop("nonce")

        def emit(verdict: dict) -> None:
            while True:  # below PIPE_BUF, so that lines of children never interleave
                line = json.dumps(dict(verdict, nonce=nonce, id=request["id"])).encode() + b"\n"
                if len(line) < select.PIPE_BUF or len(verdict.get("message", "")) < 20:
                    break
                verdict = dict(verdict, message=verdict["message"][:len(verdict["message"]) // 2])
            os.write(results_fd, line)

        emit({"kind": "start", "ok": True})
        runner.run_job(job, emit)
        emit({"kind": "done", "ok": True})
        code = 0
    except BaseException:  # report to the log; the grader sees an early exit
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - LOG_TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def serve(preload: list[str], threads: int) -> None:
    """Import once, then fork a child per job read from stdin until stdin closes."""
    import numpy  # noqa: F401
    import torch

    from mnist_grader.trusted import harness, policy, runner  # noqa: F401

    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # not a module (a name imported from one), or broken: the cell that
            pass           # imports it will say so in the child
    if threads:
        torch.set_num_threads(threads)
    results_fd = os.dup(1)
    out = os.fdopen(os.dup(1), "wb", buffering=0)

    def say(message: dict) -> None:
        # one write below PIPE_BUF is atomic: the children write verdict lines on the same pipe
        tail = message.pop("log_tail", "")
        while True:
            line = json.dumps(dict(message, log_tail=tail)).encode() + b"\n"
            if len(line) < select.PIPE_BUF or not tail:
                break
            tail = tail[len(tail) // 2:]
        out.write(line)

    children: dict[int, tuple[str, float, str]] = {}  # pid -> (id, deadline, folder)

    def forked(pid: int, request: dict) -> None:
        children[pid] = (request["id"], time.monotonic() + request["wall_seconds"],
                         f"/tmp/trusted-{request['id']}")

    def kill_late() -> None:
        now = time.monotonic()
        for pid, (_job_id, deadline, _folder) in list(children.items()):
            if now > deadline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def ended(pid: int, status: int) -> None:
        job_id, deadline, folder = children.pop(pid)
        say({"id": job_id, "kind": "exit", "status": status,
             "timed_out": time.monotonic() > deadline,
             "log_tail": _tail(os.path.join(folder, "log"))})
        shutil.rmtree(folder, ignore_errors=True)

    serve_forks(lambda request: _child(request, results_fd), forked, ended, tick=kill_late)


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    serve(settings.get("preload", []), int(settings.get("threads", 1)))
