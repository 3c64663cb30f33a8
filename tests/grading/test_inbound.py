"""mnist_grader.grading.inbound: which inbound folders may be taken as whose submission.

Real folders under tmp_path, owned by the user running the tests; the Unix users named are real
ones of this machine (a folder in their name owned by someone else is refused). Folders owned by
another user are tested end to end, as root, in tests/test_exchange_collect.py.
"""
from __future__ import annotations

import datetime
import os
import pwd
import uuid
from pathlib import Path

from mnist_grader.grading.inbound import (InboundSubmission, ownership_problem, parse_inbound_name,
                                          submission_problem)

WHEN = "2026-01-02 03:04:05.678901 UTC"


def test_names_nbgrader_submit_writes_are_read():
    parsed = parse_inbound_name(f"alice+hw+{WHEN}+x1y2", "hw")
    assert parsed == InboundSubmission("alice", f"alice+hw+{WHEN}+x1y2",
                                       datetime.datetime(2026, 1, 2, 3, 4, 5, 678901))
    assert parse_inbound_name(f"alice+hw+{WHEN}", "hw").student == "alice"  # without the random part
    assert parse_inbound_name(f"a+b+hw+{WHEN}", "hw").student == "a+b"
    assert parse_inbound_name(f"alice+other+{WHEN}", "hw") is None
    assert parse_inbound_name("alice+hw+not a time", "hw") is None
    assert parse_inbound_name("alice+hw", "hw") is None


def _folder(inbound: Path, student: str) -> InboundSubmission:
    name = f"{student}+hw+{WHEN}"
    (inbound / name).mkdir(parents=True)
    return InboundSubmission(student, name, datetime.datetime(2026, 1, 2))


def _some_other_user() -> str:
    me = os.getuid()
    return next(u.pw_name for u in pwd.getpwall() if u.pw_uid != me)


def test_a_folder_of_a_student_who_is_no_user_counts_only_when_the_collector_owns_it(tmp_path):
    ghost = _folder(tmp_path, f"ghost-{uuid.uuid4().hex[:8]}")
    assert ownership_problem(tmp_path, ghost, collector_uid=os.getuid()) == ""
    assert "who is no user of this machine: refused" in ownership_problem(tmp_path, ghost)
    other = pwd.getpwnam(_some_other_user()).pw_uid
    assert "not to" in ownership_problem(tmp_path, ghost, collector_uid=other)


def test_a_folder_in_a_real_users_name_must_be_theirs(tmp_path):
    me = pwd.getpwuid(os.getuid()).pw_name
    mine, theirs = _folder(tmp_path, me), _folder(tmp_path, _some_other_user())
    assert ownership_problem(tmp_path, mine) == ""
    assert ownership_problem(tmp_path, theirs, collector_uid=os.getuid()) == (
        f"claims to be by {theirs.student} but belongs to {me}: refused (a submission in another "
        f"student's name)")


def test_links_files_and_names_that_are_no_student_are_refused(tmp_path):
    me = pwd.getpwuid(os.getuid()).pw_name
    real = _folder(tmp_path, me)
    link = InboundSubmission(me, f"{me}+hw+link", real.timestamp)
    os.symlink(real.name, tmp_path / link.name)
    file = InboundSubmission(me, f"{me}+hw+file", real.timestamp)
    (tmp_path / file.name).write_text("")
    for entry in (link, file):
        assert "not a folder (a link or a file): refused" in submission_problem(tmp_path, entry, os.getuid())
    for name in ("..", ".", "a*", " alice"):
        problem = submission_problem(tmp_path, _folder(tmp_path / uuid.uuid4().hex, name), os.getuid())
        assert "refused" in problem, name


def test_a_folder_that_vanished_is_refused(tmp_path):
    entry = InboundSubmission("alice", f"alice+hw+{WHEN}", datetime.datetime(2026, 1, 2))
    assert "cannot be read" in ownership_problem(tmp_path, entry)
