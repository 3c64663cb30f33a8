"""Grades out of the gradebook: nbgrader's own CSV export, and a table for the terminal."""
from __future__ import annotations

from pathlib import Path

from nbgrader.api import Gradebook

from mnist_grader.course import Course
from mnist_grader.release import run_nbgrader
from mnist_grader.report import format_table


def export_csv(course: Course, assignment: str, output: Path) -> int:
    """``nbgrader export`` of ``assignment`` to ``output``; returns the number of data rows."""
    output = output.resolve()
    run_nbgrader(course, ["export", "--to", str(output), "--assignment", assignment],
                 "exporting grades")
    return max(0, len(output.read_text().splitlines()) - 1)


def gradebook_rows(course: Course, assignment: str) -> list[list[object]]:
    """student, score, max, cells needing a manual grade, flagged, per submission."""
    rows = []
    with Gradebook(course.db_url) as gb:
        for sub in sorted(gb.assignment_submissions(assignment), key=lambda s: s.student.id):
            manual = sum(g.needs_manual_grade for nb in sub.notebooks for g in nb.grades)
            flagged = any(nb.flagged for nb in sub.notebooks)
            rows.append([sub.student.id, f"{sub.score:g}", f"{sub.max_score:g}", manual or "",
                         "FLAGGED" if flagged else ""])
    return rows


def print_gradebook(course: Course, assignment: str) -> None:
    rows = gradebook_rows(course, assignment)
    print(f"gradebook {course.gradebook_path}, assignment {assignment}: {len(rows)} submissions")
    print(format_table(["student", "score", "max", "needs manual grade", "flag"], rows))
