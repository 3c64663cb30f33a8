"""Runs in the fork server (``serve``, in the grader's sandbox) and the parent (``ForkServer``).

A fork server for ``nbgrader autograde``: import nbgrader once, fork one child per submission.

Starting an nbgrader process costs about 3 s of CPU (it imports Jupyter's server stack), as much as
grading a small notebook; plain nbgrader pays it once for all students, one nbgrader process per
submission pays it every time. The zygote imports nbgrader once and forks a fresh child for each
submission, which runs nbgrader's own ``AutogradeApp`` exactly as the command line would, in that
submission's scratch course, with that submission's environment (its kernelspec puts the student's
kernel in its own sandbox, as before).

Protocol (one JSON object per line): the grader writes ``{"job", "course", "log", "env", "argv"}``;
the zygote answers ``{"job", "pid"}`` when the child started and ``{"job", "status"}`` when it ended
(status as ``os.waitstatus_to_exitcode``). The zygote is single-threaded, so forking is safe.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from mnist_grader.grading.fork_loop import serve_forks
from mnist_grader.grading.supervise import die_with_parent


def run_child(job: dict) -> int:
    """In the forked child: become the ``nbgrader autograde`` command for one submission."""
    import traceback

    os.setsid()  # its own process group: the grader kills the whole group on a timeout
    die_with_parent()  # with the zygote
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    os.chdir(job["course"])
    os.environ.clear()
    os.environ.update(job["env"])
    code = 1
    try:
        from nbgrader.apps.autogradeapp import AutogradeApp

        sys.argv = ["nbgrader-autograde", *job["argv"]]
        AutogradeApp.launch_instance(argv=job["argv"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def serve() -> None:
    """Read jobs from stdin until it closes; fork a child per job; report pids and exit statuses."""
    import nbgrader.apps.autogradeapp  # noqa: F401  (the expensive import, once)

    jobs: dict[int, str] = {}  # child pid -> job id

    def say(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def forked(pid: int, job: dict) -> None:
        jobs[pid] = job["job"]
        say({"job": job["job"], "pid": pid})

    def ended(pid: int, status: int) -> None:
        say({"job": jobs.pop(pid), "status": status})

    serve_forks(run_child, forked, ended, fd=sys.stdin.fileno())


class ForkServer:
    """The grader's side: starts the zygote (in the given sandbox prefix) and tracks its jobs."""

    def __init__(self, prefix: list[str], env: dict[str, str], log_path: str, preexec_fn=None):
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(prefix + [sys.executable, "-m", "mnist_grader.grading.zygote"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, env=env, start_new_session=True,
                                         preexec_fn=preexec_fn)
        self._lock = threading.Lock()
        self._pids: dict[str, int] = {}
        self._status: dict[str, int] = {}
        self._changed = threading.Condition()
        self.dead = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._pids[message["job"]] = message["pid"]
                else:
                    self._status[message["job"]] = message["status"]
                self._changed.notify_all()
        with self._changed:
            self.dead = True
            self._changed.notify_all()

    def submit(self, job: str, course: str, log: str, env: dict[str, str], argv: list[str]) -> None:
        line = json.dumps({"job": job, "course": course, "log": log, "env": env, "argv": argv})
        with self._lock:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()

    def pid(self, job: str, timeout: float) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: job in self._pids or self.dead, timeout)
            return self._pids.get(job)

    def status(self, job: str, timeout: float) -> int | None:
        """The job's exit status, or None if it has not ended within ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: job in self._status or self.dead, timeout)
            return self._status.get(job)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    serve()
