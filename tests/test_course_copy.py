"""deploy.course_copy: the one way a course folder is copied (hub, tests, benchmarks)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.course_copy import COURSE_FILES, CourseCopyError, copy_course

REPO = Path(__file__).resolve().parent.parent
# Files the copy must carry, one from each kind of part (what `make lab`, `make hub` and grading read).
SAMPLES = ("Makefile", "nbgrader_config.py", "source/mnist_mlp/mnist_mlp.ipynb", "helpers/data.py",
           "grader/mnist_grader/templates/course_feedback/index.html.j2", "hub/jupyterhub_config.py",
           "deploy/course_copy.py", "requirements/student.txt")


def _fake_course(root: Path) -> Path:
    """Every part of a course (tiny, files where the repository has files), plus the generated
    things a working folder collects."""
    root.mkdir()
    for name in COURSE_FILES:
        if (REPO / name).is_file():
            (root / name).write_text(f"{name}\n")
        else:
            (root / name).mkdir(parents=True)
            (root / name / "kept.txt").write_text("kept\n")
    for junk in ("helpers/__pycache__/data.cpython-311.pyc", "grader/build/lib/mnist_grader/x.py",
                 "grader/.venv/bin/python", "source/.ipynb_checkpoints/a-checkpoint.ipynb",
                 "grader/mnist_grader.egg-info/PKG-INFO", "hub/node_modules/proxy/index.js"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("generated\n")
    return root


def test_the_repository_copies_whole_with_its_times(tmp_path):
    dest = tmp_path / "course"
    copied = copy_course(REPO, dest)
    assert copied == [dest / name for name in COURSE_FILES]
    for sample in SAMPLES:
        source, copy = REPO / sample, dest / sample
        assert copy.read_bytes() == source.read_bytes(), sample
        # make compares times: a copy newer than the linked .venv's marker would rebuild it
        assert copy.stat().st_mtime == source.stat().st_mtime, sample
    assert not (dest / ".venv").exists() and not (dest / "build").exists()
    assert not list(dest.rglob("__pycache__"))


def test_generated_folders_are_left_out(tmp_path):
    src = _fake_course(tmp_path / "src")
    copy_course(src, tmp_path / "dest")
    copied = sorted(str(p.relative_to(tmp_path / "dest")) for p in (tmp_path / "dest").rglob("*") if p.is_file())
    expected = sorted(name if (src / name).is_file() else os.path.join(name, "kept.txt") for name in COURSE_FILES)
    assert copied == expected
    assert (src / "helpers" / "__pycache__").is_dir()  # the other side: it was there to copy


def test_a_missing_part_is_refused_and_nothing_copied(tmp_path):
    src = _fake_course(tmp_path / "src")
    (src / "nbgrader_config.py").unlink()
    with pytest.raises(CourseCopyError, match="nbgrader_config.py missing; copy from the course's repository"):
        copy_course(src, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_folder_already_holding_a_course_is_refused(tmp_path):
    src = _fake_course(tmp_path / "src")
    dest = tmp_path / "dest"
    (dest / "source").mkdir(parents=True)
    (dest / "source" / "mine.txt").write_text("my work\n")
    with pytest.raises(CourseCopyError, match="already holds source: copy into a new or empty folder"):
        copy_course(src, dest)
    assert sorted(p.name for p in dest.rglob("*")) == ["mine.txt", "source"]
