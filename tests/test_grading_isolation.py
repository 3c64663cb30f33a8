"""Grading runs are isolated from each other, from bad folder names, a busy gradebook and killed runs;
a student's output and disk writes are capped.

End to end with the real grader (nbgrader, bubblewrap) on the tiny fixture course, which grades in
seconds. Each test shows both sides: honest work keeps its points while the attack or the accident
beside it gains nothing, is refused with a reason, or fails alone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from tests.grader_course import grader_cli, needs_bwrap, tiny_course

REFERENCE = "example-reference"


def auto_score(course: Path, student: str) -> float | None:
    """The autograded (code cell) score of a student in the gradebook, None when not there."""
    with sqlite3.connect(course / "gradebook.db") as db:
        rows = db.execute(
            "SELECT grade.auto_score FROM grade JOIN grade_cells ON grade.cell_id = grade_cells.id "
            "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
            "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
            "WHERE submitted_assignment.student_id = ? AND grade_cells.cell_type = 'code'",
            (student,)).fetchall()
    return sum(r[0] or 0 for r in rows) if rows else None


def with_code(course: Path, student: str, code: str, base: str = REFERENCE) -> None:
    """A submission: ``base`` with ``code`` appended to its ``squares`` answer cell."""
    src = course / "submitted" / base / "tiny"
    dest = course / "submitted" / student / "tiny"
    shutil.copytree(src, dest)
    nb = nbformat.read(str(dest / "tiny.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "squares")
    cell.source += "\n\n" + code
    nbformat.write(nb, str(dest / "tiny.ipynb"))


def kernel_uids(scratch: Path) -> list[int]:
    return [json.loads(p.read_text())["uid"] for p in scratch.glob("grading-*/*/kernel-settings.json")]


# --------------------------------------------------------------------------------------------------
# two grading runs at once on one machine
# --------------------------------------------------------------------------------------------------
def test_two_grading_runs_at_once_grade_correctly(tmp_path):
    """Two ``python -m mnist_grader autograde`` processes at the same time, one grading a fork bomb:
    each kernel has a uid of its own, so the bomb exhausts only its own process budget."""
    needs_bwrap()
    courses, scratches = [], []
    for name in ("a", "b"):
        course = tiny_course(tmp_path / name)
        grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE,
                   "example-blank", "mistake-squares-abs", "cheat-fork-bomb")
        courses.append(course)
        scratches.append(tmp_path / name / "scratch")
        scratches[-1].mkdir()
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    procs = [subprocess.Popen([sys.executable, "-m", "mnist_grader", "autograde", "--assignment",
                               "tiny", "-j", "2", "--no-progress", "--keep-scratch",
                               "--wall-seconds", "120", "--course-dir", str(course)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(env, TMPDIR=str(scratch)))
             for course, scratch in zip(courses, scratches)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for course, (out, err) in zip(courses, outputs):
        assert auto_score(course, REFERENCE) == 5.0, out + err[-3000:]
        assert auto_score(course, "example-blank") == 0.0, out
        assert auto_score(course, "mistake-squares-abs") == 3.0, out
        assert (auto_score(course, "cheat-fork-bomb") or 0.0) <= 3.0, out  # its base: a mistake
        assert "FAILED to grade example-reference" not in out, out
    uids = kernel_uids(scratches[0]) + kernel_uids(scratches[1])
    assert len(uids) == 8 and len(set(uids)) == 8  # one uid per submission, across both runs
    assert all(uid >= 2**20 for uid in uids)
    from mnist_grader.check import sandbox_leftovers
    assert sandbox_leftovers(set(uids)) == []


def test_claimed_uids_are_unique_and_freed():
    from mnist_grader.grading.uids import claim_sandbox_uid, processes_of, uid_pool, uids_in_use

    claims = [claim_sandbox_uid() for _ in range(50)]
    uids = [c.uid for c in claims]
    assert len(set(uids)) == 50 and all(u in uid_pool() for u in uids)
    assert not set(uids) & uids_in_use()
    assert processes_of({os.getuid()})  # this very process
    for claim in claims:
        claim.release()


# --------------------------------------------------------------------------------------------------
# bad folder names fail alone
# --------------------------------------------------------------------------------------------------
GRADED_IDS = ["--help", "--", "-x", "a b", "ünïcødé", "$(touch PWNED)", "a;b", "'quoted'", "12345"]
REFUSED_IDS = {"x*": "file-glob", "[ab]": "file-glob", " lead": "white space",
               "tab\there": "control"}


def test_any_student_id_is_graded_or_refused_with_a_message(tmp_path):
    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE)
    src = course / "submitted" / REFERENCE
    for student in GRADED_IDS + list(REFUSED_IDS):
        shutil.copytree(src, course / "submitted" / student)
    proc = grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress",
                      check=False)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr[-3000:]  # some were refused
    for student in GRADED_IDS + [REFERENCE]:
        assert auto_score(course, student) == 5.0, (student, out + proc.stderr[-3000:])
        assert (course / "autograded" / student / "tiny" / "tiny.ipynb").is_file()
    for student, why in REFUSED_IDS.items():
        assert f"FAILED to grade {student}: not graded: the folder name {student!r}" in out
        assert why in out
        assert auto_score(course, student) is None
    assert f"{len(GRADED_IDS) + 1}/{len(GRADED_IDS) + 1 + len(REFUSED_IDS)} submissions graded" in out
    assert not list(course.rglob("PWNED")) and not Path("PWNED").exists()


# --------------------------------------------------------------------------------------------------
# a busy or read-only gradebook
# --------------------------------------------------------------------------------------------------
def start_autograde(course: Path, *args: str, stderr_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    with open(stderr_path, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "mnist_grader", "autograde", "--assignment",
                                 "tiny", "-j", "1", "--no-progress", "--course-dir", str(course),
                                 *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env)


def wait_for_text(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared; stderr:\n{path.read_text()[-3000:]}")


def test_locked_gradebook_is_waited_for_then_a_clear_error(tmp_path):
    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE)
    holder = sqlite3.connect(course / "gradebook.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writing, and not letting go
    try:
        # held past the wait: a clear error, nothing half-written
        err = tmp_path / "err1.txt"
        proc = start_autograde(course, "--gradebook-wait", "3", stderr_path=err)
        out, _ = proc.communicate(timeout=120)
        text = err.read_text()
        assert proc.returncode == 2, out + text
        assert "gradebook.db is locked by another program" in text and "waiting up to 3 s" in text
        assert "still locked by another program after 3 s" in text
        assert "Traceback" not in text

        # released while the grader waits: it goes on and grades
        err = tmp_path / "err2.txt"
        proc = start_autograde(course, "--gradebook-wait", "120", stderr_path=err)
        wait_for_text(err, "waiting up to 120 s", proc)
        time.sleep(1)
        holder.execute("ROLLBACK")
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err.read_text()[-3000:]
    finally:
        holder.close()
    assert auto_score(course, REFERENCE) == 5.0


def test_read_only_gradebook_is_an_error_before_grading(tmp_path):
    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE)
    db = course / "gradebook.db"
    before = db.read_bytes()
    command = [sys.executable, "-m", "mnist_grader", "autograde", "--assignment", "tiny",
               "--no-progress", "--course-dir", str(course)]
    if os.getuid() == 0:  # root writes read-only files: show the file on a read-only mount instead
        command = [shutil.which("bwrap"), "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                   "--ro-bind", str(db), str(db)] + command
    else:
        db.chmod(0o444)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot write the gradebook" in proc.stderr and "nothing was graded" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (course / "autograded").exists()  # it stopped before grading anybody
    assert db.read_bytes() == before
    db.chmod(0o644)
    # writable again: the same command grades
    grader_cli(course, "autograde", "--assignment", "tiny", "--no-progress")
    assert auto_score(course, REFERENCE) == 5.0


# --------------------------------------------------------------------------------------------------
# what a killed run leaves is repaired by the next
# --------------------------------------------------------------------------------------------------
def test_next_run_repairs_what_a_killed_run_left(tmp_path):
    from mnist_grader.grading.recovery import mark_owner

    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE, "example-blank")
    grader_cli(course, "autograde", "--assignment", "tiny", "--no-progress", "-j", "2",
               "--student", REFERENCE)
    autograded = course / "autograded"
    # killed after copying, before the commit: notebooks without a row (with a submission to grade)
    shutil.copytree(autograded / REFERENCE, autograded / "example-blank")
    # ... and for a student whose submission is gone meanwhile
    shutil.copytree(autograded / REFERENCE, autograded / "ghost")
    # killed while publishing: a staging folder of a dead process
    dead = subprocess.Popen(["true"])
    dead.wait()
    staging = autograded / REFERENCE / f".tiny.staging-{dead.pid}"
    shutil.copytree(autograded / REFERENCE / "tiny", staging)
    # scratch folders: one of a dead run (its owner file unlocked), one of a live run (this test
    # process holds its lock, as a run does), one not ours (no owner file)
    scratch = tmp_path / "scratch"
    for name in ("grading-dead", "grading-live", "grading-other"):
        (scratch / name / "000").mkdir(parents=True)
    os.close(mark_owner(scratch / "grading-dead"))  # its owner has ended: the lock is gone
    live_lock = mark_owner(scratch / "grading-live")

    proc = grader_cli(course, "autograde", "--assignment", "tiny", "--no-progress", "-j", "2",
                      "--student", "nobody-else", check=False, env={"TMPDIR": str(scratch)})
    err = proc.stderr
    assert "example-blank: autograded notebooks without a gradebook row" in err
    assert "graded again now" in err
    assert "ghost: autograded notebooks without a gradebook row" in err and "removed" in err
    assert f"{REFERENCE}: a grading run was killed while merging it" in err
    assert not (autograded / "ghost" / "tiny").exists() and not staging.exists()
    assert auto_score(course, "example-blank") == 0.0  # graded now: notebook and row agree
    assert (autograded / "example-blank" / "tiny" / "tiny.ipynb").is_file()
    assert auto_score(course, REFERENCE) == 5.0
    assert sorted(p.name for p in scratch.iterdir()) == ["grading-live", "grading-other"]
    os.close(live_lock)


# --------------------------------------------------------------------------------------------------
# output and disk caps
# --------------------------------------------------------------------------------------------------
def test_output_is_trimmed_while_running_and_grades_are_unchanged(tmp_path):
    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE,
               "mistake-mean-sum")
    flood = "for _ in range(60):\n    print('x' * 2**20)"
    with_code(course, "flood-reference", flood)
    with_code(course, "flood-mistake", flood, base="mistake-mean-sum")
    proc = grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress")
    assert auto_score(course, "flood-reference") == auto_score(course, REFERENCE) == 5.0
    assert auto_score(course, "flood-mistake") == auto_score(course, "mistake-mean-sum") == 3.0
    notebook = course / "autograded" / "flood-reference" / "tiny" / "tiny.ipynb"
    size = notebook.stat().st_size
    assert size < 4 * 2**20, size  # 60 MB printed, at most the 2 MB cell cap kept
    text = notebook.read_text()
    assert "[output trimmed: " in text and "bytes over the grader's limit]" in text
    honest = course / "autograded" / REFERENCE / "tiny" / "tiny.ipynb"
    assert "output trimmed" not in honest.read_text()
    print(f"\n60 MB printed -> autograded notebook of {size / 2**20:.1f} MB; summary:\n{proc.stdout}")


def test_capped_execute_keeps_what_decides_a_grade():
    from nbformat.notebooknode import NotebookNode

    from mnist_grader.grading.output_cap import CappedExecute, trim_note

    ex = CappedExecute(max_cell_output=100, max_notebook_output=1000)
    ex.reset_execution_trackers()
    ex.clear_before_next_output = False  # as nbclient sets it before each cell

    def msg(kind, **content):
        return {"msg_type": kind, "header": {"msg_type": kind}, "parent_header": {"msg_id": "m"},
                "content": content}

    outs: list[NotebookNode] = []
    ex.output(outs, msg("stream", name="stdout", text="a" * 90), None, 0)
    ex.output(outs, msg("stream", name="stdout", text="b" * 500), None, 0)  # over: dropped
    ex.output(outs, msg("execute_result", data={"text/plain": "0.5" + " " * 500}, metadata={},
                        execution_count=1), None, 0)  # over, but the grade reads it: kept, short
    ex.output(outs, msg("error", ename="AssertionError", evalue="e" * 5000, traceback=["t"] * 50),
              None, 0)  # over, but it makes the cell 0 points: kept, short
    kinds = [o.output_type for o in outs]
    assert kinds == ["stream", "stream", "execute_result", "error"], kinds
    # dropped: the 500 b's and what the shortened error lost (5000 + 50 - 2000 - 20)
    assert "b" not in outs[0].text and "output trimmed: 3530 bytes" in outs[1].text
    assert len(outs[3].evalue) <= 2000 and len(outs[3].traceback) <= 20
    # the notebook's cap is spent: another cell's output is trimmed too
    other: list[NotebookNode] = []
    ex.output(other, msg("stream", name="stdout", text="hello"), None, 1)
    assert [o.text for o in other] == [trim_note(5)]
    # the next notebook starts from zero: under the caps nothing changes
    ex.reset_execution_trackers()
    small: list[NotebookNode] = []
    ex.output(small, msg("stream", name="stdout", text="hello"), None, 1)
    assert [o.text for o in small] == ["hello"]


def test_kernel_writes_go_to_its_own_tmpfs_never_the_host_disk(tmp_path):
    needs_bwrap()
    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", REFERENCE)
    fill = """
import os
_written = 0
try:
    with open("big.bin", "wb") as _f:
        for _ in range(1024):
            _f.write(b"x" * 2**20)
            _written += 2**20
except OSError as _e:
    print("disk full after", _written // 2**20, "MB:", _e.strerror)
_files = 0
try:
    os.mkdir("many")
    for _i in range(100_000):
        open(f"many/{_i}", "w").close()
        _files += 1
except OSError as _e:
    print("stopped after", _files, "files:", _e.strerror)
print("WROTE", _written // 2**20, "MB AND", _files, "FILES")
import sys
_ipc = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])  # the folder shared with nbgrader
_written = 0
try:
    with open(os.path.join(_ipc, "big.bin"), "wb") as _f:
        for _ in range(200):
            _f.write(b"x" * 2**20)
            _f.flush()
            _written += 2**20
except OSError as _e:
    pass
print("IPC WROTE", _written // 2**20, "MB")
"""
    with_code(course, "disk-filler", fill)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    peak = {"du": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            size = subprocess.run(["du", "-sk", str(scratch)], capture_output=True,
                                  text=True).stdout.split()
            if size:
                peak["du"] = max(peak["du"], int(size[0]))
            time.sleep(0.3)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        proc = grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress",
                          "--wall-seconds", "300", env={"TMPDIR": str(scratch)})
    finally:
        done.set()
        watcher.join()
    assert auto_score(course, REFERENCE) == 5.0, proc.stdout  # the honest one beside it
    # (the filler is graded, or held for review where the course's policy forbids os/sys imports)
    assert "FAILED to grade disk-filler" not in proc.stdout, proc.stdout
    text = (course / "autograded" / "disk-filler" / "tiny" / "tiny.ipynb").read_text()
    written = re.search(r"WROTE (\d+) MB AND (\d+) FILES", text)
    assert written and "disk full after" in text  # its 256 MB working folder filled up
    assert 200 <= int(written.group(1)) <= 256
    assert re.search(r"IPC WROTE [01] MB", text), text[text.index("IPC"):][:100]
    assert peak["du"] < 50 * 1024, f"the scratch folder grew to {peak['du']} KiB"
    print(f"\nkernel tried 1 GB and 100,000 files; {text[text.index('WROTE'):][:80]!r}; "
          f"scratch folder peak {peak['du']} KiB")
