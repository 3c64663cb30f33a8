"""The scratch course one submission is graded in: the template gradebook, the copied submission, the
config and the kernelspec."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from mnist_grader.course import CourseError, load_course
from mnist_grader.grading.intake import IntakeLimits
from mnist_grader.grading.sandbox import KernelSettings, Limits
from mnist_grader.grading.scratch import (KERNEL_NAME, MAX_SOCKET_PATH_BYTES, build_scratch_course,
                                          socket_path_problem, template_gradebook, write_kernelspec)
from tests.grader_course import FIXTURE, grader_cli, tiny_course

HIDDEN = "BEGIN HIDDEN TESTS"


def test_template_gradebook_has_the_definitions_but_no_student_and_no_hidden_test(tmp_path):
    course = load_course(tiny_course(tmp_path))
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student("someone")
        real_notebook = gb.find_notebook("tiny", "tiny")
        real_sources = [c.source for c in real_notebook.source_cells]
        real_grade_cells = sorted(c.name for c in real_notebook.grade_cells)
    assert any(HIDDEN in source for source in real_sources)  # what the template must lose

    template = template_gradebook(course, "tiny", tmp_path / "template.db")
    with Gradebook(f"sqlite:///{template}") as gb:
        assert gb.students == []
        notebook = gb.find_notebook("tiny", "tiny")
        assert sorted(c.name for c in notebook.grade_cells) == real_grade_cells
        sources = [c.source for c in notebook.source_cells]
        assert sources and not any(HIDDEN in source for source in sources)
    with Gradebook(course.db_url) as gb:  # the real gradebook is left as it was
        assert [s.id for s in gb.students] == ["someone"]


def test_template_gradebook_of_an_unreleased_assignment_is_a_clear_error(tmp_path):
    course_dir = tmp_path / "unreleased"
    shutil.copytree(FIXTURE, course_dir)
    with pytest.raises(CourseError, match="release the assignment first"):
        template_gradebook(load_course(course_dir), "tiny", tmp_path / "template.db")


def test_scratch_course_holds_the_submission_as_data_and_no_source_notebook(tmp_path):
    course_dir = tiny_course(tmp_path)
    grader_cli(course_dir, "examples", "--assignment", "tiny", "--only", "example-reference")
    submitted = course_dir / "submitted" / "example-reference" / "tiny"
    os.symlink(course_dir / "gradebook.db", submitted / "gradebook.db")  # hostile: a link out
    course = load_course(course_dir)
    template = template_gradebook(course, "tiny", tmp_path / "template.db")

    scratch = tmp_path / "scratch"
    report = build_scratch_course(course, "tiny", "example-reference", scratch, template,
                                  IntakeLimits())
    copied = scratch / "course" / "submitted" / "example-reference" / "tiny"
    assert (copied / "tiny.ipynb").read_bytes() == (submitted / "tiny.ipynb").read_bytes()
    assert not (copied / "gradebook.db").exists() and any("gradebook.db" in r for r in report.refused)
    assert not list((scratch / "course" / "source").rglob("*.ipynb"))  # tests come from the gradebook
    config = (scratch / "course" / "nbgrader_config.py").read_text()
    assert "c.CourseDirectory.student_id = 'example-reference'" in config
    assert f"c.Execute.kernel_name = {KERNEL_NAME!r}" in config
    assert "RestoreDeletedCells" in config
    assert stat.S_IMODE((scratch / "course").stat().st_mode) == 0o700  # not the kernel's to read
    assert (scratch / "ipc").is_dir()


def test_kernelspec_starts_the_launcher_with_typed_settings(tmp_path):
    limits = Limits(memory_mb=1234, processes=7)
    settings = KernelSettings(python=sys.executable, uid=123456, limits=limits, readonly=[],
                              workdir=str(tmp_path / "work"), submitted_dir="", ipc_dir="",
                              bwrap=None)
    write_kernelspec(settings, tmp_path / "kernel-settings.json", tmp_path / "data")
    spec = json.loads((tmp_path / "data" / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][:2] == [sys.executable, "-m"]
    assert importlib.util.find_spec(spec["argv"][2]) is not None  # a module that exists
    assert spec["argv"][3:] == [str(tmp_path / "kernel-settings.json"), "{connection_file}"]
    loaded = KernelSettings.load(str(tmp_path / "kernel-settings.json"))
    assert loaded.limits == limits and loaded.limits.rlimits()["RLIMIT_NPROC"] == 7


def test_a_scratch_folder_too_deep_for_the_kernels_sockets_is_refused_before_grading(tmp_path):
    # the unit: a usual run folder passes, one 100 bytes deep cannot hold "000/ipc/k-99"
    assert socket_path_problem(Path("/tmp/grading-abcdefgh"), 50) == ""
    deep = Path("/tmp") / ("d" * 90) / "grading-abcdefgh"
    assert "TMPDIR" in socket_path_problem(deep, 1) and f"{MAX_SOCKET_PATH_BYTES} bytes" in socket_path_problem(deep, 1)

    # the real command with TMPDIR that deep: a clear error, nothing graded (nbgrader's own error
    # would be "File name too long" once per student, after starting each one's grading)
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", "example-reference")
    tmpdir = tmp_path / ("t" * max(1, MAX_SOCKET_PATH_BYTES - len(str(tmp_path))))
    tmpdir.mkdir()
    done = grader_cli(course, "autograde", "--assignment", "tiny", "--no-progress", check=False,
                      env={"TMPDIR": str(tmpdir)})
    assert done.returncode != 0 and "too long a path" in done.stderr and "TMPDIR" in done.stderr, \
        done.stdout + done.stderr
    assert not (course / "autograded").exists() or not any((course / "autograded").iterdir())
    assert not list(tmpdir.glob("grading-*")), "a scratch folder was made before the refusal"
