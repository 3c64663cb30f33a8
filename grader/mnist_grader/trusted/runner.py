"""The trusted run: hidden tests against the student's definitions (runs inside its own sandbox).

Started fresh for each submission by ``mnist_grader.trusted.launch`` as
``python -m mnist_grader.trusted.runner RESULTS_FD``, inside a sandbox with no student files, no
network and an unprivileged uid. It reads one job (JSON) from stdin, then:

1. imports numpy, torch and the hidden tests' checks (``mnist_grader.trusted.harness``) and installs the
   switch of every function a hidden test puts off limits, BEFORE any student code is loaded;
2. per notebook, in a fresh namespace, goes through the source notebook's cells in order: an
   instructor's locked cell runs as written in ``source/``; a student's solution cell contributes
   only its definitions (``mnist_grader.trusted.policy.loadable``); a test cell runs whole, visible
   and hidden parts, exactly as the instructor wrote it;
3. writes one verdict per test cell to the results pipe (file descriptor RESULTS_FD), each line
   carrying the job's nonce, which student code has no way to read.

Student code can print (that goes to stdout, which the grader keeps only as a capped log), but it
cannot write to the results pipe: the policy allows ``open`` for reading only and no ``os``/``sys``.
"""
from __future__ import annotations

import ast
import json
import os
import signal
import sys
import time

#: Longest message kept from a failing test.
MAX_MESSAGE = 600


class CellTimeout(BaseException):
    """A cell ran longer than the job's per-cell limit (BaseException: ``except Exception`` in
    student code does not swallow it)."""


#: Seconds a cell gets after its time limit to let the CellTimeout end it.
GRACE = 5.0
#: The cell running now and how to report it, for a cell that swallows CellTimeout.
_current: dict = {}


def _on_alarm(signum, frame):
    if _current.get("timed_out"):
        # the cell caught CellTimeout and went on: report it, and end the run (the cells after it
        # get no verdict, so they score 0 with the reason in the grader's summary)
        _current["emit"](dict(_current["verdict"], ok=False, failed_in="visible", line=None,
                              message="the cell ran longer than the grader's limit and ignored "
                                      "the interruption; the tests after it were not run"))
        os._exit(3)
    _current["timed_out"] = True
    signal.setitimer(signal.ITIMER_REAL, GRACE)
    raise CellTimeout()


def switched_names(test_sources: list[str]) -> list[str]:
    """Every string literal passed to an ``off_limits(...)`` call in the tests."""
    names: list[str] = []
    for source in test_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else \
                    func.id if isinstance(func, ast.Name) else ""
                if called == "off_limits":
                    names += [a.value for a in node.args
                              if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return list(dict.fromkeys(names))


def _ipython_free(source: str) -> str:
    """Turn IPython syntax (``%magic``, ``!cmd``) of an instructor's cell into plain Python."""
    if not any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        return source
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _failure(err: BaseException, filename: str) -> tuple[int | None, str]:
    """(line of the cell where it failed, message) for an exception raised while running a cell."""
    line = None
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(err, CellTimeout):
        message = "the cell ran longer than the grader's limit (an endless loop?)"
    elif isinstance(err, AssertionError) and str(err):
        message = str(err)
    elif isinstance(err, AssertionError):
        message = "a check failed"
    else:
        message = f"{type(err).__name__}: {err}"
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ..."
    return line, message


def run_job(job: dict, emit) -> None:
    """Run every notebook of ``job``; ``emit(dict)`` sends a verdict."""
    import numpy  # noqa: F401  (imported before student code, like everything the checks use)
    import torch

    from mnist_grader.trusted import harness, policy

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    tests = [c["source"] for nb in job["notebooks"] for c in nb["cells"] if c["kind"] == "test"]
    for name in switched_names(tests):
        try:
            harness.install_switch(name)
        except Exception as err:  # an instructor's typo: say so, the test will fail on it too
            emit({"kind": "setup", "ok": False, "message": f"off_limits({name!r}): {err}"})
    for name in job.get("stub_calls", []):
        try:
            owner, attr = harness._resolve(name)
            setattr(owner, attr, _stub)
        except Exception as err:
            emit({"kind": "setup", "ok": False, "message": f"stub_calls {name!r}: {err}"})
    signal.signal(signal.SIGALRM, _on_alarm)
    limit = float(job.get("cell_timeout", 120))
    for notebook in job["notebooks"]:
        namespace = {"__name__": "__main__", "display": lambda *a, **k: None}
        for cell in notebook["cells"]:
            kind, cell_id = cell["kind"], cell["id"]
            filename = f"<{kind} cell {cell_id}>"
            start = time.monotonic()
            verdict = {"notebook": notebook["name"], "cell": cell_id, "kind": kind}
            try:
                if kind == "student":
                    code = policy.loadable(cell["source"], filename)
                    if code is None:
                        raise SyntaxError("the cell is not valid Python: nothing of it was loaded")
                else:
                    code = compile(_ipython_free(cell["source"]), filename, "exec")
                _current.update(timed_out=False, emit=emit, verdict=dict(verdict))
                signal.setitimer(signal.ITIMER_REAL, limit)
                try:
                    exec(code, namespace)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                verdict.update(ok=True)
            except BaseException as err:  # student code may raise anything, SystemExit included
                signal.setitimer(signal.ITIMER_REAL, 0)
                line, message = _failure(err, filename)
                hidden = line in set(cell.get("hidden_lines", []))
                verdict.update(ok=False, line=line, message=message,
                               failed_in="hidden" if hidden else "visible")
            verdict["seconds"] = round(time.monotonic() - start, 3)
            if kind == "lab":
                _close_figures()
            emit(verdict)


def _stub(*args, **kwargs):
    """Stands in for a function that only shows something (``TrustedRun.stub_calls``)."""
    return None


def _close_figures() -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def _not_dumpable() -> None:
    """Make /proc/self/* (mem, fd/) root-only, so student code that may open files for reading
    cannot read this process's memory (the nonce, the hidden tests) or reopen its pipes."""
    import ctypes

    PR_SET_DUMPABLE = 4
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m mnist_grader.trusted.runner RESULTS_FD  (job as JSON on stdin)")
    results_fd = int(argv[0])
    _not_dumpable()
    job = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    os.close(0)
    nonce = job.pop("nonce")

    def emit(verdict: dict) -> None:
        line = json.dumps(dict(verdict, nonce=nonce)).encode() + b"\n"
        os.write(results_fd, line)

    emit({"kind": "start", "ok": True})
    run_job(job, emit)
    emit({"kind": "done", "ok": True})


if __name__ == "__main__":
    main()
