"""`python -m mnist_grader roster students.csv`: names into the gradebook; bad files refused whole."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from mnist_grader.examples import example_roster


def _roster(course: Path, csv_text: str) -> subprocess.CompletedProcess:
    (course / "students.csv").write_text(csv_text)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    return subprocess.run([sys.executable, "-m", "mnist_grader", "roster", "students.csv"], cwd=course,
                          env=env, capture_output=True, text=True, timeout=120)


def _names(course: Path) -> dict[str, tuple]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.id: (s.first_name, s.last_name, s.email) for s in gradebook.students}


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    # nbgrader runs `alembic` from PATH when it creates a gradebook
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    (tmp_path / "nbgrader_config.py").write_text(
        f'c = get_config()\nc.CourseDirectory.course_id = "roster"\nc.CourseDirectory.root = {str(tmp_path)!r}\n')
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        gradebook.add_student("grace")  # known before, without a name: what autograde leaves
    return tmp_path


def test_roster_names_new_and_known_students(course):
    proc = _roster(course, "id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.org\n"
                           "grace,Grace,Hopper,\n\n")
    assert proc.returncode == 0, proc.stderr
    assert "1 students added, 1 updated" in proc.stdout
    assert _names(course) == {"ada": ("Ada", "Lovelace", "ada@example.org"), "grace": ("Grace", "Hopper", None)}

    proc = _roster(course, "id,last_name\nada,King\n")  # a correction: only the given column changes
    assert proc.returncode == 0, proc.stderr
    assert _names(course)["ada"] == ("Ada", "King", "ada@example.org")


@pytest.mark.parametrize("csv_text, says", [
    ("first_name,last_name\nAda,Lovelace\n", "'id' column"),
    ("id,first_name,surname\nada,Ada,Lovelace\n", "unknown columns ['surname']"),
    ("id,first_name\nzoe,Zoe\nada,Ada\nada,Ada again\n", "line 4: id 'ada' is already on line 3"),
    ("id,first_name\n../etc,Eve\n", "line 2: id '../etc' is not a usable student id"),
    ("id,first_name\n,Nobody\n", "line 2: id '' is not a usable student id"),
])
def test_a_bad_roster_is_refused_whole_with_the_line(course, csv_text, says):
    before = _names(course)
    proc = _roster(course, csv_text)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert says in proc.stderr, proc.stderr
    assert _names(course) == before, "a refused roster changed the gradebook"


def test_a_missing_roster_says_what_to_write(course):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([sys.executable, "-m", "mnist_grader", "roster", "nope.csv"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "id,first_name,last_name,email" in proc.stderr, proc.stderr


def test_example_students_are_named_by_what_they_are():
    rows = {r["id"]: (r["first_name"], r["last_name"]) for r in example_roster(
        ["example-reference", "example-blank", "mistake-softmax-overflow", "cheat-read-secrets"])}
    assert rows == {"example-reference": ("Example", "Reference"), "example-blank": ("Example", "Blank"),
                    "mistake-softmax-overflow": ("Mistake", "Softmax overflow"),
                    "cheat-read-secrets": ("Cheat", "Read secrets")}
