"""Process supervision: memory of a whole process tree, the wall clock, the process watchdog, and
children that die with the grading command."""
from __future__ import annotations

import subprocess
import sys
import time

import psutil

from mnist_grader.grading.sandbox import Limits
from mnist_grader.grading.supervise import Supervisor, tree_stats

#: a process that starts a child holding 64 MiB, prints the child's pid, and waits
PARENT_OF_A_HOG = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import time; hog = bytearray(64 * 2**20); time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n")


def wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_tree_stats_counts_the_children_too():
    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_A_HOG], stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(parent.stdout.readline())
        assert wait_for(lambda: tree_stats(parent.pid)[0] >= 64 * 1024)
        rss_kb, tree = tree_stats(parent.pid)
        assert {p.pid for p in tree} >= {parent.pid, child}
        assert rss_kb >= 64 * 1024 > psutil.Process(parent.pid).memory_info().rss // 1024
    finally:
        for process in psutil.Process(parent.pid).children(recursive=True) + [parent]:
            process.kill()
        parent.wait()
    assert tree_stats(parent.pid) == (0, [])  # gone: nothing to count


def test_wall_clock_kills_the_whole_group(tmp_path):
    supervisor = Supervisor(Limits(wall_seconds=5))
    started = time.monotonic()
    status, peak_kb, timed_out = supervisor.run(
        [sys.executable, "-c", PARENT_OF_A_HOG], tmp_path, {}, tmp_path / "log")
    assert timed_out and status < 0 and time.monotonic() - started < 40
    assert peak_kb > 0
    child = int((tmp_path / "log").read_text().split()[0])
    assert wait_for(lambda: not psutil.pid_exists(child) or
                    psutil.Process(child).status() == psutil.STATUS_ZOMBIE)

    # the other side: a command within its time is not touched
    status, _, timed_out = supervisor.run([sys.executable, "-c", "print('ok')"], tmp_path, {},
                                          tmp_path / "log")
    assert (status, timed_out) == (0, False) and (tmp_path / "log").read_text() == "ok\n"


def test_watchdog_kills_a_tree_of_far_too_many_processes(tmp_path):
    many = ("import subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) "
            "for _ in range(30)]\n"
            "time.sleep(60)\n")
    supervisor = Supervisor(Limits(processes=4, wall_seconds=120))
    started = time.monotonic()
    status, _, timed_out = supervisor.run([sys.executable, "-c", many], tmp_path, {},
                                          tmp_path / "log")
    assert status < 0 and not timed_out and time.monotonic() - started < 60

    # the other side: a tree within the limit runs to its end
    few = many.replace("range(30)", "range(2)").replace("time.sleep(60)", "time.sleep(1)")
    status, _, timed_out = Supervisor(Limits(processes=4, wall_seconds=120)).run(
        [sys.executable, "-c", few], tmp_path, {}, tmp_path / "log")
    assert (status, timed_out) == (0, False)


def test_a_child_dies_with_its_parent():
    middle = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time\n"
         "from mnist_grader.grading.supervise import die_with_parent\n"
         "flag = sys.argv[1] == 'yes'\n"
         "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],\n"
         "                         preexec_fn=die_with_parent if flag else None)\n"
         "print(child.pid, flush=True)\n"
         "time.sleep(60)\n", "yes"], stdout=subprocess.PIPE, text=True)
    orphan = subprocess.Popen(middle.args[:-1] + ["no"], stdout=subprocess.PIPE, text=True)
    children = [int(middle.stdout.readline()), int(orphan.stdout.readline())]
    for process in (middle, orphan):
        process.kill()
        process.wait()
    try:
        assert wait_for(lambda: not psutil.pid_exists(children[0]) or
                        psutil.Process(children[0]).status() == psutil.STATUS_ZOMBIE)
        # the other side: without it, the child outlives its parent
        assert psutil.Process(children[1]).status() != psutil.STATUS_ZOMBIE
    finally:
        for pid in children:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
