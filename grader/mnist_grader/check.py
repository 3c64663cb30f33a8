"""Grader QA: generate the example submissions, grade them in parallel, and judge the grader.

Prints one table: each mistake -> the test cells that lost points -> caught or MISSED; each cheat ->
its outcome (no gain over the honest work it sits on, or failed-and-flagged at 0; HARM if it managed
to read secrets or write outside its folder); the reference -> full marks on every autograded cell
(graded several times, all the same); the blank release -> 0. Then global checks: the gradebook's
integrity, no process left running by a sandboxed kernel, no file written into the course, and at
least two mistakes per graded task. Any failure gives a non-zero exit status.
"""
from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from mnist_grader.grading.pool import GradeResult, GradingOptions, grade_assignment
from mnist_grader.cheats import CHEAT_MARK, MUST_BE_FLAGGED, MUST_BE_HELD
from mnist_grader.course import Course
from mnist_grader.examples import (ALTERNATIVE_PREFIX, BLANK, CHEAT_PREFIX, MISTAKE_PREFIX,
                                   REFERENCE, base_student, example_students, write_examples)
from mnist_grader.library import Library, load_library
from mnist_grader.report import format_table
from mnist_grader.grading.uids import processes_of

REGRADE = REFERENCE + "-regrade-"
#: Copies of the reference under ids that command lines and shells misread: each must be graded
#: (full marks) without stopping the run.
ODD_IDS = ["--help", "ünï cødé $(id);x"]
#: The largest autograded notebook a submission may leave (output is capped while it runs).
MAX_AUTOGRADED_MB = 25


@dataclass
class AutoScore:
    """A submission's autograded test cells: score per cell, and the maximum per cell."""

    cells: dict[str, float]
    maxima: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.cells.values())

    @property
    def maximum(self) -> float:
        return sum(self.maxima.values())

    def lost(self) -> list[str]:
        return sorted(c for c, s in self.cells.items() if s < self.maxima[c])


def auto_scores(course: Course, assignment: str, student: str) -> AutoScore | None:
    """Scores of the autograded (code) test cells of a submission, None when it has none."""
    with Gradebook(course.db_url) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        cells, maxima = {}, {}
        for nb in submission.notebooks:
            for grade in nb.grades:
                if grade.cell.cell_type != "code":
                    continue  # written answers are graded by hand
                cells[grade.name] = grade.score
                maxima[grade.name] = grade.max_score
    return AutoScore(cells, maxima)


def cheat_marks(course: Course, assignment: str, student: str) -> list[str]:
    """Lines in a graded notebook's outputs where a cheat reports success."""
    marks = []
    for path in sorted(course.folder("autograded", assignment, student).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            for output in cell.get("outputs", []):
                text = output.get("text", "") + "".join(output.get("traceback", []))
                marks += [line.strip() for line in text.splitlines() if CHEAT_MARK in line]
    return marks


def sandbox_leftovers(uids: set[int]) -> list[str]:
    """Processes still running as one of the sandbox uids of this run (none may outlive its
    kernel). Only this run's uids: other grading runs on the machine have kernels of their own."""
    return processes_of(set(uids))


def run_check(course: Course, assignment: str, options: GradingOptions, repeat_reference: int = 3,
              only: list[str] | None = None) -> int:
    """Generate, grade and judge the examples (see the module docstring); returns the exit status."""
    library = load_library(course.root, assignment)
    students = select_students(library, only)
    write_examples(course, assignment, only=students, clean=only is None)
    regrades = [f"{REGRADE}{k}" for k in range(2, repeat_reference + 1)]
    if only is None:
        regrades += ODD_IDS
    for copy in regrades:  # the same submission again, graded independently
        dest = course.folder("submitted", assignment, copy)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(course.folder("submitted", assignment, REFERENCE), dest)
    results = {r.student: r for r in grade_assignment(course, assignment, options,
                                                      students=students + regrades)}
    rows, problems = judge(course, assignment, library, results, [REFERENCE] + regrades)
    problems += global_problems(course, library, students,
                                {r.sandbox_uid for r in results.values() if r.sandbox_uid})
    for student in results:
        for notebook in course.folder("autograded", assignment, student).glob("*.ipynb"):
            size = notebook.stat().st_size / 2**20
            if size > MAX_AUTOGRADED_MB:
                problems.append(f"{student}: {notebook.name} is {size:.0f} MB after grading "
                                f"(output is not capped)")
    print(format_table(["example", "expected", "cells that lost points", "verdict"], rows))
    for problem in problems:
        print("PROBLEM:", problem)
    print(f"grader check: {len(results)} submissions graded, "
          f"{'OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


def lost_cells(score: AutoScore) -> str:
    """The cells that lost points, short: "all" when every autograded cell did."""
    lost = score.lost()
    if lost and len(lost) == len(score.cells):
        return f"all {len(lost)}"
    text = ", ".join(lost) or "-"
    return text if len(text) <= 70 else text[:67] + "..."


def select_students(library: Library, only: list[str] | None) -> list[str]:
    """The example students to grade: all, or ``only`` plus what they need to be judged."""
    everything = example_students(library)
    if only is None:
        return everything
    wanted = {REFERENCE, BLANK, *only}
    for cheat in library.cheats:
        if CHEAT_PREFIX + cheat.name in wanted:
            wanted.add(base_student(cheat))
    return [s for s in everything if s in wanted]


def judge(course: Course, assignment: str, library: Library, results: dict[str, GradeResult],
          references: list[str]) -> tuple[list[list[str]], list[str]]:
    """One table row per example, and the problems found."""
    rows, problems = [], []
    scores = {s: auto_scores(course, assignment, s) for s in results}

    def failed(student: str) -> str:
        return f"FAILED to grade: {results[student].reason}"

    # reference: full marks, every time
    totals = []
    for student in references:
        score = scores.get(student)
        if not results[student].ok or score is None:
            problems.append(f"{student}: {failed(student)}")
            continue
        totals.append(score.total)
        verdict = "full" if score.total == score.maximum else "BELOW FULL"
        if verdict != "full":
            problems.append(f"{student} scored {score.total:g}/{score.maximum:g}: lost "
                            f"{', '.join(score.lost())}")
        rows.append([student, f"full {score.maximum:g}", ", ".join(score.lost()) or "-",
                     f"{verdict} ({score.total:g})"])
    if len(set(totals)) > 1:
        problems.append(f"the reference scored differently when graded again: {totals}")

    blank = scores.get(BLANK)
    if blank is None or not results[BLANK].ok:
        problems.append(f"{BLANK}: {failed(BLANK)}")
    else:
        verdict = "0" if blank.total == 0 else "NOT ZERO"
        rows.append([BLANK, "0", "all" if not blank.total else ", ".join(blank.lost()),
                     f"{verdict} ({blank.total:g})"])
        if blank.total != 0:
            problems.append(f"{BLANK} scored {blank.total:g}, expected 0")

    for mistake in library.mistakes:
        student = MISTAKE_PREFIX + mistake.name
        if student not in results:
            continue
        score = scores.get(student)
        if not results[student].ok or score is None:
            rows.append([student, "lose " + ", ".join(mistake.must_lose), "-", "MISSED (failed)"])
            problems.append(f"{student}: {failed(student)}")
            continue
        lost = score.lost()
        missed = [c for c in mistake.must_lose if c not in lost]
        verdict = "caught" if not missed else "MISSED " + ", ".join(missed)
        if missed:
            problems.append(f"{student} ({mistake.why}) did not lose points on {', '.join(missed)}")
        rows.append([student, "lose " + ", ".join(mistake.must_lose), lost_cells(score), verdict])

    for alternative in library.alternatives:
        student = ALTERNATIVE_PREFIX + alternative.name
        if student not in results:
            continue
        score, result = scores.get(student), results[student]
        if not result.ok or score is None:
            problems.append(f"{student}: {failed(student)}")
            rows.append([student, "full, no hold", "-", "FAILED"])
            continue
        verdict = "full" if score.total == score.maximum else "BELOW FULL"
        if result.held or result.flags:
            verdict = "HELD" if result.held else "FLAGGED"
        if verdict != "full":
            problems.append(f"{student} ({alternative.why}): {verdict.lower()} "
                            f"{score.total:g}/{score.maximum:g}; {'; '.join(result.flags)[:300]}")
        rows.append([student, f"full {score.maximum:g}, no hold", lost_cells(score),
                     f"{verdict} ({score.total:g})"])

    for cheat in library.cheats:
        student = CHEAT_PREFIX + cheat.name
        if student not in results:
            continue
        verdict, problem = judge_cheat(course, assignment, cheat, results, scores)
        if problem:
            problems.append(f"{student}: {problem}")
        score = scores.get(student)
        rows.append([student, f"<= {base_student(cheat)}",
                     lost_cells(score) if score and results[student].ok else "-", verdict])
    return rows, problems


def judge_cheat(course: Course, assignment: str, cheat, results: dict[str, GradeResult],
                scores: dict[str, AutoScore | None]) -> tuple[str, str]:
    """(verdict, problem or "") for one cheat."""
    student = CHEAT_PREFIX + cheat.name
    result = results[student]
    marks = cheat_marks(course, assignment, student)
    if marks:
        return "HARM", "; ".join(marks[:3])
    base = scores.get(base_student(cheat))
    score = scores.get(student)
    base_total = base.total if base else 0.0
    if not result.ok:
        total = score.total if score else 0.0
        if not cheat.may_fail:
            return f"FAILED ({result.reason})", f"grading failed unexpectedly: {result.reason}"
        if total > 0:
            return "FAILED, NOT ZERO", f"failed to grade but kept {total:g} points"
        return "failed to grade -> 0, flagged", ""
    gain = score.total - base_total
    flagged = bool(result.flags)
    if cheat.name in MUST_BE_HELD:
        if result.held and score.total == 0:
            return "held at 0, flagged for review", ""
        return (f"NOT HELD ({score.total:g})",
                "code that reaches for the machinery in an answer must be held at 0 and flagged")
    if cheat.name in MUST_BE_FLAGGED and not flagged and gain <= 0:
        return f"NOT FLAGGED ({score.total:g})", "code that reaches for IPython must be flagged"
    if gain > 0:
        return f"GAINED {gain:g}", f"scored {score.total:g}, more than its base ({base_total:g})"
    return f"no gain ({score.total:g} <= {base_total:g})" + (", flagged" if flagged else ""), ""


def global_problems(course: Course, library: Library, students: list[str],
                    uids: set[int]) -> list[str]:
    problems = []
    with sqlite3.connect(course.gradebook_path) as db:
        status = db.execute("PRAGMA integrity_check").fetchone()[0]
    if status != "ok":
        problems.append(f"gradebook integrity check: {status}")
    for leftover in sandbox_leftovers(uids):
        problems.append(f"a sandboxed process outlived grading: {leftover}")
    for path in [course.root / "CHEATED.txt", course.root / course.directories["submitted"] /
                 "CHEATED.txt", Path("/CHEATED.txt"), Path("/usr/CHEATED.txt")]:
        if path.exists():
            problems.append(f"a submission wrote {path}")
    if set(students) >= {MISTAKE_PREFIX + m.name for m in library.mistakes}:
        for task in library.tasks:
            count = sum(m.cell == task for m in library.mistakes)
            if count < 2:
                problems.append(f"task {task!r} has {count} mistake(s) in {library.path}; "
                                f"write at least 2")
    return problems
