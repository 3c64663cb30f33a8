"""Instructor tooling: ``python -m mnist_grader <command> --help``.

Commands (each one concept, each its own module):
  release     nbgrader generate_assignment (the gradebook learns the assignment)   mnist_grader.release
  examples    generate example submissions (reference, blank, mistakes, cheats)   mnist_grader.examples
  autograde   grade every submission in parallel, sandboxed                       mnist_grader.grading.pool
  feedback    per-student HTML feedback without hidden tests                      mnist_grader.feedback
  export      grades to CSV                                                        mnist_grader.export
  table       print the gradebook                                                  mnist_grader.export
  check       grader QA: examples -> grading -> caught/MISSED table                mnist_grader.check
  roster      students' names into the gradebook from a CSV (id,first_name,...)    mnist_grader.roster
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_ASSIGNMENT = "mnist_mlp"


def _course_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--course-dir", default=".",
                        help="course folder holding nbgrader_config.py (default: current folder)")
    parser.add_argument("--assignment", default=DEFAULT_ASSIGNMENT,
                        help=f"nbgrader assignment id (default: {DEFAULT_ASSIGNMENT})")


def _grading_args(parser: argparse.ArgumentParser) -> None:
    from mnist_grader.grading.sandbox import Limits

    default = Limits()
    parser.add_argument("--workers", "-j", type=int, default=os.cpu_count() or 1,
                        help="submissions graded at once (default: number of CPU cores)")
    parser.add_argument("--wall-seconds", type=int, default=default.wall_seconds,
                        help="wall-clock limit per submission (default: %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=default.memory_mb,
                        help="address-space limit of a student's kernel (default: %(default)s)")
    parser.add_argument("--cpu-seconds", type=int, default=default.cpu_seconds,
                        help="CPU-time limit of a student's kernel (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=default.processes,
                        help="process limit of a student's kernel (default: %(default)s)")
    parser.add_argument("--max-submission-mb", type=int, default=50,
                        help="size cap of one submission's files; what is over is left out and "
                             "flagged (default: %(default)s)")
    parser.add_argument("--max-submission-files", type=int, default=1000,
                        help="cap on a submission's files and folders (default: %(default)s)")
    parser.add_argument("--gradebook-wait", type=float, default=60.0,
                        help="seconds to wait for another program's lock on gradebook.db before "
                             "stopping with an error (default: %(default)s)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="do not use bubblewrap (limits still apply); for comparisons only")
    parser.add_argument("--no-fork-server", action="store_true",
                        help="one fresh nbgrader process per submission (own sandbox view and pid "
                             "namespace; about 3 s more CPU each) instead of forking a warm one")
    parser.add_argument("--keep-scratch", action="store_true",
                        help="keep each submission's scratch course for inspection")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def grading_options(args: argparse.Namespace):
    from mnist_grader.grading.pool import GradingOptions
    from mnist_grader.grading.intake import IntakeLimits
    from mnist_grader.grading.sandbox import Limits

    limits = Limits(cpu_seconds=args.cpu_seconds, memory_mb=args.memory_mb,
                    processes=args.processes, wall_seconds=args.wall_seconds)
    return GradingOptions(workers=max(1, args.workers), limits=limits,
                          use_sandbox=not args.no_sandbox, keep_scratch=args.keep_scratch,
                          progress=not args.no_progress, fork_server=not args.no_fork_server,
                          intake=IntakeLimits(max_bytes=args.max_submission_mb * 2**20,
                                              max_files=args.max_submission_files),
                          gradebook_wait=args.gradebook_wait)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_grader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="run nbgrader generate_assignment for the assignment")
    _course_args(p)

    p = sub.add_parser("examples", help="generate example submissions into submitted/")
    _course_args(p)
    p.add_argument("--only", nargs="*", default=None,
                   help="generate only these example students (default: all)")
    p.add_argument("--clean", action="store_true",
                   help="first remove every generated example student from submitted/")
    p.add_argument("--kind", choices=["all", "honest"], default="all",
                   help="all examples, or only the honest ones (reference, blank, mistakes)")
    p.add_argument("--roster", type=Path, default=None,
                   help="also add the written example students, named, to this roster CSV "
                        "(import it with: python -m mnist_grader roster FILE)")

    p = sub.add_parser("autograde", help="grade every submission in parallel, sandboxed")
    _course_args(p)
    _grading_args(p)
    p.add_argument("--student", nargs="*", default=None, help="grade only these students")

    p = sub.add_parser("feedback", help="per-student HTML feedback without hidden tests")
    _course_args(p)
    p.add_argument("--student", nargs="*", default=None, help="only these students")
    p.add_argument("--all", action="store_true",
                   help="also for submissions still waiting for a hand grade (their feedback then "
                        "shows 0 for what is not graded yet); default: only fully graded ones")

    p = sub.add_parser("export", help="write the gradebook's grades to a CSV file")
    _course_args(p)
    p.add_argument("--output", default="grades.csv", help="CSV file (default: %(default)s)")

    p = sub.add_parser("table", help="print the gradebook's scores for the assignment")
    _course_args(p)

    p = sub.add_parser("check", help="grader QA: examples, parallel grading, caught/MISSED table")
    _course_args(p)
    _grading_args(p)
    p.add_argument("--repeat-reference", type=int, default=3,
                   help="grade the reference this many times; all scores must agree (default: 3)")
    p.add_argument("--only", nargs="*", default=None,
                   help="check only these example students (default: all)")

    p = sub.add_parser("roster", help="students' names into the gradebook from a roster CSV")
    p.add_argument("--course-dir", default=".",
                   help="course folder holding nbgrader_config.py (default: current folder)")
    p.add_argument("csv", type=Path, help="CSV with a header: id,first_name,last_name,email "
                                          "(id required; nbgrader's `db student import` format)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mnist_grader.course import CourseError, load_course

    try:
        course = load_course(args.course_dir)
        if args.command == "release":
            from mnist_grader.release import release
            release(course, args.assignment)
            return 0
        if args.command == "examples":
            from mnist_grader.examples import write_examples
            only = args.only
            if args.kind == "honest":
                from mnist_grader.examples import honest_students
                only = [s for s in honest_students(course, args.assignment)
                        if only is None or s in only]
            written = write_examples(course, args.assignment, only=only, clean=args.clean)
            print(f"wrote {len(written)} example submissions to "
                  f"{course.root / course.directories['submitted']}")
            if args.roster is not None:
                from mnist_grader.examples import example_roster
                from mnist_grader.roster import write_roster
                write_roster(args.roster, example_roster(written))
                print(f"named them in {args.roster}")
            return 0
        if args.command == "autograde":
            from mnist_grader.grading.pool import grade_assignment
            from mnist_grader.report import print_results
            results = grade_assignment(course, args.assignment, grading_options(args),
                                       students=args.student)
            print_results(results)
            return 0 if all(r.ok for r in results) else 1
        if args.command == "feedback":
            from mnist_grader.feedback import generate_feedback
            paths, waiting = generate_feedback(course, args.assignment, students=args.student,
                                               include_ungraded=args.all)
            print(f"wrote feedback for {len(paths)} students to "
                  f"{course.root / course.directories['feedback']}")
            if waiting:
                print(f"no feedback yet for {len(waiting)} students whose submission still needs a "
                      f"hand grade or review: {', '.join(waiting)}\n  grade them in Formgrader "
                      f"(Manual Grading), then run this again")
            return 0
        if args.command == "export":
            from mnist_grader.export import export_csv
            rows = export_csv(course, args.assignment, Path(args.output))
            print(f"wrote {rows} rows to {args.output}")
            return 0
        if args.command == "table":
            from mnist_grader.export import print_gradebook
            print_gradebook(course, args.assignment)
            return 0
        if args.command == "roster":
            from mnist_grader.roster import import_roster
            added, updated = import_roster(course, args.csv)
            print(f"roster {args.csv}: {added} students added, {updated} updated in {course.gradebook_path}")
            return 0
        if args.command == "check":
            from mnist_grader.check import run_check
            return run_check(course, args.assignment, grading_options(args),
                             repeat_reference=args.repeat_reference, only=args.only)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
