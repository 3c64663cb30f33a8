"""mnist_grader.grading.intake: a submission is copied as plain data, links and special files are refused.

Small generated submissions (links, FIFOs, sockets, hard links, caps) for the unit tests; one end to
end run with the real grader on the tiny fixture course shows that a submission full of links is
graded on its own work only, with every link flagged, and that the honest work keeps its points.
"""
from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import nbformat
import pytest

from mnist_grader.grading.intake import (IntakeError, IntakeLimits, check_submission, copy_submission,
                                        replace_with_copy)


def submission(tmp_path: Path) -> Path:
    """``submitted/alice/hw/`` with a notebook, a data file and a sub-folder."""
    folder = tmp_path / "submitted" / "alice" / "hw"
    (folder / "data").mkdir(parents=True)
    (folder / "hw.ipynb").write_text('{"cells": []}')
    (folder / "data" / "numbers.txt").write_text("1 2 3\n")
    return folder


def take(tmp_path: Path, limits: IntakeLimits | None = None):
    dest = tmp_path / "copy"
    report = copy_submission(tmp_path / "submitted", ["alice", "hw"], dest, limits)
    return dest, report


def files_under(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): ("dir" if p.is_dir() else p.read_text())
            for p in sorted(folder.rglob("*"))}


def test_honest_submission_is_copied_whole(tmp_path):
    folder = submission(tmp_path)
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "hw-checkpoint.ipynb").write_text("{}")
    dest, report = take(tmp_path)
    assert report.refused == []
    assert files_under(dest) == {"hw.ipynb": '{"cells": []}', "data": "dir",
                                 "data/numbers.txt": "1 2 3\n"}
    assert report.files == 3 and report.bytes == len('{"cells": []}') + 6
    assert not stat.S_ISLNK(os.lstat(dest / "hw.ipynb").st_mode)


@pytest.mark.parametrize("target", ["/etc/shadow", "/dev/zero", "..", "../../bob/hw",
                                    "../../../gradebook.db", "/nonexistent"])
def test_symlinks_are_refused_and_reported(tmp_path, target):
    folder = submission(tmp_path)
    (tmp_path / "gradebook.db").write_text("SECRET GRADEBOOK")
    (tmp_path / "submitted" / "bob" / "hw").mkdir(parents=True)
    (tmp_path / "submitted" / "bob" / "hw" / "bob.ipynb").write_text("BOB'S WORK")
    os.symlink(target, folder / "data" / "link")
    dest, report = take(tmp_path)
    assert len(report.refused) == 1
    assert report.refused[0].startswith("data/link: a symbolic link")
    assert repr(target) in report.refused[0]
    assert not os.path.lexists(dest / "data" / "link")
    assert files_under(dest)["data/numbers.txt"] == "1 2 3\n"  # the rest is still there
    assert report.bytes < 100  # nothing of /dev/zero, the gradebook or bob came in


def test_a_notebook_that_is_a_symlink_is_refused(tmp_path):
    folder = submission(tmp_path)
    source = tmp_path / "source" / "hw" / "hw.ipynb"
    source.parent.mkdir(parents=True)
    source.write_text("THE SOLUTION")
    (folder / "hw.ipynb").unlink()
    os.symlink("../../../source/hw/hw.ipynb", folder / "hw.ipynb")
    dest, report = take(tmp_path)
    assert [r.split(":")[0] for r in report.refused] == ["hw.ipynb"]
    assert "THE SOLUTION" not in str(files_under(dest))


def test_submission_folder_that_is_a_link_is_refused_whole(tmp_path):
    submission(tmp_path)
    (tmp_path / "submitted" / "mallory").mkdir()
    os.symlink("../alice/hw", tmp_path / "submitted" / "mallory" / "hw")
    with pytest.raises(IntakeError, match="mallory/hw is a symbolic link, not a folder"):
        copy_submission(tmp_path / "submitted", ["mallory", "hw"], tmp_path / "copy")
    os.symlink("alice", tmp_path / "submitted" / "eve")  # the student folder itself
    with pytest.raises(IntakeError, match="eve is a symbolic link"):
        copy_submission(tmp_path / "submitted", ["eve", "hw"], tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_fifo_socket_and_hard_link_are_refused(tmp_path):
    folder = submission(tmp_path)
    os.mkfifo(folder / "pipe")  # opening it for reading would block forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock"))
    outside = tmp_path / "outside.txt"
    outside.write_text("someone else's file")
    os.link(outside, folder / "hard.txt")
    try:
        dest, report = take(tmp_path)
    finally:
        server.close()
    reasons = dict(line.split(": ", 1) for line in report.refused)
    assert set(reasons) == {"pipe", "sock", "hard.txt"}
    assert reasons["pipe"].startswith("a FIFO")
    assert reasons["sock"].startswith("a socket")
    assert reasons["hard.txt"].startswith("a hard link (one of 2 names")
    assert sorted(os.listdir(dest)) == ["data", "hw.ipynb"]


def test_device_files_are_refused(tmp_path):
    folder = submission(tmp_path)
    try:
        os.mknod(folder / "zero", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    dest, report = take(tmp_path)
    assert report.refused == ["zero: a character device: refused, only regular files and folders "
                              "are graded"]
    assert not (dest / "zero").exists()


def test_check_reports_what_the_copy_leaves_out_and_copies_nothing(tmp_path):
    folder = submission(tmp_path)
    os.symlink("/etc/passwd", folder / "data" / "link")
    os.mkfifo(folder / "pipe")
    (tmp_path / "outside.txt").write_text("someone else's file")
    os.link(tmp_path / "outside.txt", folder / "hard.txt")
    (folder / ".ipynb_checkpoints").mkdir()  # the copy never takes it; the check looks inside
    os.symlink("/etc/passwd", folder / ".ipynb_checkpoints" / "hw-checkpoint.ipynb")
    before = sorted(p.name for p in tmp_path.iterdir())
    checked = check_submission(tmp_path / "submitted", ["alice", "hw"])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    _, copied = take(tmp_path)
    assert checked.refused == [".ipynb_checkpoints/hw-checkpoint.ipynb: a symbolic link (to "
                               "'/etc/passwd'): refused, links are never followed"] + copied.refused
    assert len(copied.refused) == 3
    assert (checked.files, checked.bytes) == (copied.files + 1, copied.bytes)  # + the checkpoints folder


def test_check_of_an_honest_submission_finds_nothing(tmp_path):
    submission(tmp_path)
    assert check_submission(tmp_path / "submitted", ["alice", "hw"]).refused == []
    os.symlink("alice", tmp_path / "submitted" / "eve")
    with pytest.raises(IntakeError, match="eve is a symbolic link"):
        check_submission(tmp_path / "submitted", ["eve", "hw"])


def test_replace_with_copy_replaces_an_older_copy_only_once_the_new_one_is_whole(tmp_path):
    submission(tmp_path)
    dest = tmp_path / "collected"
    dest.mkdir()
    (dest / "old.ipynb").write_text("the older submission")
    report = replace_with_copy(tmp_path / "submitted", ["alice", "hw"], dest)
    assert report.refused == [] and sorted(os.listdir(dest)) == ["data", "hw.ipynb"]
    os.symlink("alice", tmp_path / "submitted" / "eve")
    with pytest.raises(IntakeError):
        replace_with_copy(tmp_path / "submitted", ["eve", "hw"], dest)
    assert sorted(os.listdir(dest)) == ["data", "hw.ipynb"]  # the failed copy changed nothing
    assert sorted(os.listdir(tmp_path)) == ["collected", "submitted"]  # and left nothing behind


def test_caps_on_bytes_files_and_depth(tmp_path):
    folder = submission(tmp_path)
    (folder / "big.bin").write_bytes(b"x" * 5000)
    dest, report = take(tmp_path, IntakeLimits(max_bytes=4000))
    assert [r.split(":")[0] for r in report.refused] == ["big.bin"]
    assert "over the cap" in report.refused[0]
    assert (dest / "hw.ipynb").is_file()  # the notebook comes first and stays in

    for i in range(5):
        (folder / f"extra{i}.txt").write_text("x")
    dest2 = tmp_path / "copy2"
    report = copy_submission(tmp_path / "submitted", ["alice", "hw"], dest2,
                             IntakeLimits(max_files=4))
    assert (dest2 / "hw.ipynb").is_file()
    assert sum("over the cap of 4 files" in r for r in report.refused) >= 4

    deep = folder
    for i in range(5):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    dest3 = tmp_path / "copy3"
    report = copy_submission(tmp_path / "submitted", ["alice", "hw"], dest3,
                             IntakeLimits(max_depth=3))
    assert "d0/d1/d2/d3: nested deeper than 3 folders" in " ".join(report.refused)
    assert (dest3 / "d0" / "d1" / "d2").is_dir() and not (dest3 / "d0" / "d1" / "d2" / "d3").exists()


def test_loop_link_does_not_recurse(tmp_path):
    folder = submission(tmp_path)
    os.symlink("..", folder / "data" / "loop")
    os.symlink(".", folder / "self")
    dest, report = take(tmp_path)
    assert sorted(r.split(":")[0] for r in report.refused) == ["data/loop", "self"]
    assert report.files == 3


# --------------------------------------------------------------------------------------------------
# end to end: the real grader on the tiny fixture course
# --------------------------------------------------------------------------------------------------
def test_grader_refuses_links_and_grades_the_rest(tmp_path):
    from tests.grader_course import grader_cli, needs_bwrap, tiny_course

    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", "example-reference",
               "example-blank")
    submitted = course / "submitted"
    honest = submitted / "example-reference" / "tiny"
    # an honest reference beside links to secrets: the links are left out and flagged, the work
    # keeps its points
    os.symlink(str(course / "gradebook.db"), honest / "gradebook.db")
    os.symlink("/etc/shadow", honest / "shadow")
    os.symlink("..", honest / "loop")
    os.symlink("/dev/zero", honest / "zero")
    # a blank submission whose notebook is a link to the instructor's solution: no points
    blank = submitted / "example-blank" / "tiny"
    (blank / "tiny.ipynb").unlink()
    os.symlink("../../../source/tiny/tiny.ipynb", blank / "tiny.ipynb")
    proc = grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress",
                      check=False)
    out = proc.stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith("example-")}
    assert rows["example-reference"][1].startswith("5/"), out + proc.stderr[-2000:]  # full marks
    assert "FLAGGED example-reference" in out
    for name in ("gradebook.db", "shadow", "loop", "zero"):
        assert f"left out {name}: a symbolic link" in out
    assert rows["example-blank"][1].startswith("0/") and rows["example-blank"][2] == "FAILED", out
    assert "left out tiny.ipynb: a symbolic link" in out and "No notebooks were matched" in out
    graded = course / "autograded" / "example-reference" / "tiny"
    names = {p.name for p in graded.iterdir()}
    assert "tiny.ipynb" in names and names <= {"tiny.ipynb", "timestamp.txt"}, names
    text = (graded / "tiny.ipynb").read_text()
    assert "root:" not in text
    nbformat.read(str(graded / "tiny.ipynb"), as_version=4)
