"""`python -m deploy`: the refusals that protect students and the machine, before anything is built."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.hub import HubError, HubSettings
from deploy.student_env import usable_by_everyone

REPO = Path(__file__).resolve().parent.parent


def _deploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("inside", ["student-work", "source/student-work", "."])
def test_a_student_workspace_inside_the_course_is_refused(tmp_path, inside):
    workspace = REPO / inside
    proc = _deploy("student", "--dir", str(workspace), "--env", str(tmp_path / "env"))
    assert proc.returncode == 2, proc.stderr
    assert "is inside the course" in proc.stderr and "choose a folder outside it" in proc.stderr
    assert not (tmp_path / "env").exists(), "an environment was built before the refusal"
    assert inside == "." or not workspace.exists()


def test_a_folder_holding_the_course_is_refused_as_workspace(tmp_path):
    proc = _deploy("student", "--dir", str(REPO.parent), "--env", str(tmp_path / "env"))
    assert proc.returncode == 2 and "contains the course" in proc.stderr, proc.stderr


@pytest.mark.parametrize("prefix, says", [("", "prefix"), ("9abc-", "prefix"), ("a b", "prefix"),
                                          ("x" * 30, "longer than 32")])
def test_hub_user_names_are_checked(tmp_path, prefix, says):
    with pytest.raises(HubError, match=says):
        HubSettings.create(hub_dir=tmp_path, course_root=REPO, assignment="mnist_mlp", course_id="c",
                           env=tmp_path, proxy=tmp_path, prefix=prefix, n_students=2, port=0)


def test_usable_by_everyone_sees_a_closed_folder(tmp_path):
    folder = tmp_path / "closed"
    folder.mkdir()
    program = folder / "python"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    folder.chmod(0o755)
    open_parents = all(p.stat().st_mode & 0o001 for p in program.parents)
    assert usable_by_everyone(program) == open_parents
    folder.chmod(0o700)
    assert not usable_by_everyone(program)
    folder.chmod(0o755)
