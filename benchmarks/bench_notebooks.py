"""Benchmark the course notebooks: Restart & Run All, and nbgrader autograde of one reference submission.

    python benchmarks/bench_notebooks.py            # the figures in BENCHMARKS.md (about 2 minutes)
    python benchmarks/bench_notebooks.py --dry-run  # CI smoke: one grading-mode run of the reference

Needs the real MNIST files (set MNIST_ROOT, or they are downloaded into data/mnist). Prints one line
per measurement: what, seconds (min / median over --repeat runs), and the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from assignment_runner import (ASSIGNMENT, LECTURE_NB, SOURCE_NB, errors, make_course, nbgrader,  # noqa: E402
                               run_notebook, scores, submit)


def machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def run_all(path: Path, grading: str | None) -> float:
    """Seconds of one Restart & Run All (fresh kernel); fails if any cell raised."""
    nb, seconds = run_notebook(path, grading=grading)
    failed = errors(nb)
    if failed:
        raise SystemExit(f"{path.name} raised in {sorted(failed)}: the benchmark needs a clean run")
    return seconds


def autograde_reference() -> tuple[float, float, float]:
    """(generate_assignment s, autograde s, score) for one reference submission in a fresh course copy."""
    with tempfile.TemporaryDirectory(prefix="bench-course-") as tmp:
        start = time.perf_counter()
        course = make_course(Path(tmp) / "course")  # copy of the course + generate_assignment
        generate_s = time.perf_counter() - start
        submit(course, "reference", SOURCE_NB)
        _, autograde_s = nbgrader(course, "autograde", ASSIGNMENT)
        score = sum(g["score"] or 0 for g in scores(course, "reference").values())
    return generate_s, autograde_s, score


def report(what: str, runs: list[float]) -> None:
    print(f"{what:<58} min {min(runs):6.1f} s   median {statistics.median(runs):6.1f} s   ({len(runs)} runs)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (default: 3)")
    parser.add_argument("--dry-run", action="store_true",
                        help="CI smoke: one grading-mode Restart & Run All of the reference, nothing else")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    print(f"machine: {machine()}")
    if args.dry_run:
        report("reference notebook, Restart & Run All (grading mode)", [run_all(SOURCE_NB, "autograde")])
        return
    report("reference notebook, Restart & Run All (as a student)",
           [run_all(SOURCE_NB, None) for _ in range(args.repeat)])
    report("reference notebook, Restart & Run All (NBGRADER_EXECUTION)",
           [run_all(SOURCE_NB, "autograde") for _ in range(args.repeat)])
    report("lecture notebook, Restart & Run All", [run_all(LECTURE_NB, None) for _ in range(args.repeat)])
    graded = [autograde_reference() for _ in range(args.repeat)]
    report("nbgrader generate_assignment (fresh course copy)", [g[0] for g in graded])
    report("nbgrader autograde, one reference submission", [g[1] for g in graded])
    print(f"reference score: {graded[0][2]:g} autograded points (+3 graded by hand)")


if __name__ == "__main__":
    main()
