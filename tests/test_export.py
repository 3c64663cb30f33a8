"""Grades out of the gradebook (``python -m mnist_grader export``) as CSV."""
from __future__ import annotations

from tests.grader_course import grader_cli, private_jupyter_dirs  # noqa: F401 (autouse fixture)


def test_export_csv(checked_tiny, tmp_path):
    course, _ = checked_tiny
    out = tmp_path / "grades.csv"
    grader_cli(course, "export", "--assignment", "tiny", "--output", str(out))
    rows = {line.split(",")[3]: line.split(",") for line in out.read_text().splitlines()[1:]}
    assert float(rows["example-reference"][9]) == 5.0
    assert float(rows["example-blank"][9]) == 0.0
    assert float(rows["mistake-squares-abs"][9]) == 3.0
