"""Grading throughput: our parallel sandboxed grading vs plain sequential ``nbgrader autograde``.

Both grade the same generated submissions (reference, blank and the mistake library: honest work,
no cheats) of the same assignment, in two separate copies of the course, in the same run:

* baseline: ``nbgrader autograde ASSIGNMENT`` once for all students (nbgrader grades one after the
  other, in one process, no sandbox);
* ours: ``mnist_grader.grading.pool`` with N workers (one nbgrader process per submission, each in its
  bubblewrap sandbox with rlimits, merged into the gradebook one transaction at a time).

Both run the same notebook the same way: nbgrader sets NBGRADER_EXECUTION in either kernel, so the
lab trains its short grading epoch and the helpers draw no figures (``helpers.grading_mode``).
Then one reference submission is executed cell by cell with nbclient to show what dominates.

    python benchmarks/bench_grading.py                 # mnist_mlp, >= 20 submissions
    python benchmarks/bench_grading.py --smoke         # the tiny fixture course, 4 submissions
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "tiny_course"


def make_course(dest: Path, smoke: bool) -> tuple[Path, str]:
    """A released copy of the course (mnist_mlp, or the tiny fixture in smoke mode)."""
    if smoke:
        shutil.copytree(FIXTURE, dest)
        assignment = "tiny"
    else:
        dest.mkdir()
        for name in ("source", "release"):
            shutil.copytree(REPO / name, dest / name)
        shutil.copy(REPO / "nbgrader_config.py", dest)
        assignment = "mnist_mlp"
    run([sys.executable, "-m", "mnist_grader", "release", "--assignment", assignment], dest)
    return dest, assignment


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of every finished descendant."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(command: list[str], cwd: Path) -> float:
    """Run a command, fail loudly, return its wall-clock seconds."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def submissions(course: Path, assignment: str, count: int) -> list[str]:
    """Write ``count`` honest example submissions (reference copies fill up the set)."""
    from mnist_grader.course import load_course
    from mnist_grader.examples import REFERENCE, honest_students, write_examples

    c = load_course(course)
    students = honest_students(c, assignment)[:count]
    write_examples(c, assignment, only=students)
    for k in range(len(students), count):
        copy = f"{REFERENCE}-copy-{k}"
        shutil.copytree(c.folder("submitted", assignment, REFERENCE),
                        c.folder("submitted", assignment, copy))
        students.append(copy)
    return students


def profile_cells(course: Path, assignment: str, top: int = 4) -> list[tuple[float, str]]:
    """Seconds per cell of the reference submission run as nbgrader runs it (NBGRADER_EXECUTION)."""
    import nbformat
    from nbclient import NotebookClient

    folder = course / "submitted" / "example-reference" / assignment
    timings = []
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        for path in sorted(folder.glob("*.ipynb")):
            nb = nbformat.read(str(path), as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": str(folder)}})
            start = time.perf_counter()
            with client.setup_kernel():
                startup = time.perf_counter() - start
                timings.append((startup, "kernel start"))
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    t0 = time.perf_counter()
                    client.execute_cell(cell, index)
                    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
                    timings.append((time.perf_counter() - t0, grade_id))
    finally:
        del os.environ["NBGRADER_EXECUTION"]
    return sorted(timings, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=21,
                        help="number of submissions (default: %(default)s; smoke: 4)")
    parser.add_argument("--workers", "-j", type=int, default=os.cpu_count() or 2,
                        help="our grading workers (default: CPU cores)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny fixture course, 4 submissions: checks the script runs (CI)")
    args = parser.parse_args()
    count = 4 if args.smoke else args.submissions
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]

    from mnist_grader.grading.pool import GradingOptions, grade_assignment
    from mnist_grader.course import load_course
    from mnist_grader.jupyter_env import private_dirs
    from mnist_grader.grading.sandbox import find_bwrap

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        os.environ.update(private_dirs(tmp / "env"))
        base_course, assignment = make_course(tmp / "baseline", args.smoke)
        ours_course, _ = make_course(tmp / "ours", args.smoke)
        students = submissions(base_course, assignment, count)
        submissions(ours_course, assignment, count)

        env_note = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        print(f"grading {len(students)} submissions of {assignment} ({env_note}; "
              f"bubblewrap: {'yes' if find_bwrap() else 'NO'}); both kernels run with "
              f"NBGRADER_EXECUTION set: short training, no figures drawn")

        n = len(students)
        load = os.getloadavg()[0]
        cpu0 = cpu_seconds()
        baseline = run([sys.executable, "-m", "nbgrader", "autograde", assignment], base_course)
        baseline_cpu = cpu_seconds() - cpu0
        print(f"plain nbgrader autograde (sequential):   {baseline:7.1f} s  "
              f"{baseline / n:5.1f} s/submission  (CPU {baseline_cpu / n:4.1f} s/submission)")

        options = GradingOptions(workers=args.workers, progress=False)
        start = time.perf_counter()
        results = grade_assignment(load_course(ours_course), assignment, options)
        ours = time.perf_counter() - start
        # (no CPU figure for ours: a sandboxed kernel dies with its pid namespace, unreaped by us,
        # so its CPU time never reaches our RUSAGE_CHILDREN)
        failed = [r for r in results if not r.ok]
        print(f"mnist_grader autograde, {args.workers} workers (sandboxed): {ours:7.1f} s  "
              f"{ours / n:5.1f} s/submission  -> speedup {baseline / ours:.2f}x"
              + (f"  ({len(failed)} FAILED)" if failed else ""))
        print(f"  load average before/after (other work on the machine): {load:.1f} / "
              f"{os.getloadavg()[0]:.1f}")
        latency = sorted(r.seconds for r in results)
        print(f"  one submission, start to merge: median {latency[len(latency) // 2]:.1f} s, "
              f"max {latency[-1]:.1f} s")
        trusted = sorted(r.trusted.seconds for r in results if r.trusted is not None)
        if trusted:
            print(f"  the trusted run (hidden tests, own sandboxed process, beside nbgrader): median "
                  f"{trusted[len(trusted) // 2]:.1f} s, max {trusted[-1]:.1f} s per submission")
        peak = max(r.peak_rss_mb for r in results)
        print(f"  peak memory of one worker (nbgrader + sandboxed kernel, RSS): {peak:.0f} MiB")

        print("what dominates one submission (reference, cell by cell, NBGRADER_EXECUTION set):")
        for seconds, what in profile_cells(ours_course, assignment):
            print(f"  {seconds:6.2f} s  {what}")
        startup = run([sys.executable, "-m", "nbgrader", "--version"], ours_course)
        print(f"  {startup:6.2f} s  starting an nbgrader process (paid once per submission by ours, "
              f"once in total by the baseline)")


if __name__ == "__main__":
    main()
