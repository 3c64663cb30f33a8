"""Students' names in the gradebook, from a roster CSV: ``python -m mnist_grader roster students.csv``.

The CSV has a header row and the columns of nbgrader's own ``nbgrader db student import``: ``id``
(required: the student's nbgrader id, their user name on a hub), ``first_name``, ``last_name`` and
``email`` (optional). Formgrader then shows the names instead of "None, None". Students are added or
updated (only in the columns the file has), never removed; the whole file is checked before anything
is written.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from nbgrader.api import Gradebook

from mnist_grader.course import Course, CourseError

COLUMNS = ("id", "first_name", "last_name", "email")
# nbgrader uses the id as a folder name (submitted/<id>/...) and, on a hub, it is a user name.
_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def read_roster(path: Path) -> list[dict[str, str]]:
    """The roster's rows, checked.

    Raises:
        CourseError: the file is missing, has no ``id`` column, unknown columns, an empty or
            unusable id, or an id twice; the message names the line.
    """
    if not path.is_file():
        raise CourseError(f"no roster at {path}: write a CSV with the header "
                          f"{','.join(COLUMNS)} and one line per student")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        if "id" not in header:
            raise CourseError(f"{path}: the first line must be a header with an 'id' column "
                              f"(columns: {','.join(COLUMNS)}); found {header or 'nothing'}")
        unknown = sorted(set(header) - set(COLUMNS))
        if unknown:
            raise CourseError(f"{path}: unknown columns {unknown}; the columns are {','.join(COLUMNS)}")
        rows, seen = [], {}
        for line, raw in enumerate(reader, start=2):
            row = {key.strip(): (value or "").strip() for key, value in raw.items() if key is not None}
            if not any(row.values()):
                continue  # a blank line
            student = row.get("id", "")
            if not _VALID_ID.match(student):
                raise CourseError(f"{path}, line {line}: id {student!r} is not a usable student id "
                                  f"(letters, digits, '.', '_', '-'; not empty)")
            if student in seen:
                raise CourseError(f"{path}, line {line}: id {student!r} is already on line {seen[student]}")
            seen[student] = line
            rows.append({column: row[column] for column in COLUMNS if column in row})
    return rows


def write_roster(path: Path, rows: list[dict[str, str]]) -> None:
    """Write ``rows`` as a roster CSV, merged with the rows already in ``path`` (same id: replaced)."""
    merged = {row["id"]: row for row in (read_roster(path) if path.is_file() else [])}
    merged.update({row["id"]: {column: row.get(column, "") for column in COLUMNS} for row in rows})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(merged[student] for student in sorted(merged))


def import_roster(course: Course, path: Path) -> tuple[int, int]:
    """Add or update every student of the roster in the course's gradebook (the file is checked first).

    Returns:
        (students added, students updated).
    """
    rows = read_roster(path)
    added = updated = 0
    with Gradebook(course.db_url) as gradebook:
        known = {student.id for student in gradebook.students}
        for row in rows:
            # only the roster's columns: a file with just id,last_name keeps the first names
            names = {key: (value or None) for key, value in row.items() if key != "id"}
            gradebook.update_or_create_student(row["id"], **names)
            if row["id"] in known:
                updated += 1
            else:
                added += 1
    return added, updated
