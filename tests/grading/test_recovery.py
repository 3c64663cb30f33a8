"""grading/recovery.py: a scratch run folder is removed only once the run that made it has ended."""
import os
import subprocess
import sys
from pathlib import Path

from mnist_grader.grading.recovery import mark_owner, remove_dead_runs

HOLD_LOCK = ("import sys, time; from pathlib import Path; from mnist_grader.grading.recovery import mark_owner; "
             "mark_owner(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)")


def test_a_run_folder_is_removed_only_after_its_owner_ends(tmp_path):
    run = tmp_path / "grading-run"
    run.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "locked"
        assert remove_dead_runs(tmp_path) == [] and run.is_dir(), "a live run's folder stays"
    finally:
        owner.kill()  # SIGKILL: no clean-up code runs, the kernel drops the lock
        owner.wait()
    assert remove_dead_runs(tmp_path) == [run] and not run.exists()


def test_folders_without_an_owner_file_or_with_a_linked_one_are_left_alone(tmp_path):
    (tmp_path / "grading-other").mkdir()
    linked = tmp_path / "grading-linked"
    linked.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.close(mark_owner(target))  # an unlocked owner file, reachable only through a link
    (linked / "owner").symlink_to(target / "owner")
    (tmp_path / "unrelated").mkdir()
    os.close(mark_owner(tmp_path / "unrelated"))  # not a grading-* folder
    assert remove_dead_runs(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "grading-linked", "grading-other", "unrelated"]
