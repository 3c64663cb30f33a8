"""The fork servers' loop: a child per request line, each child's end reported, done when the input
closes and the last child has ended."""
from __future__ import annotations

import json
import subprocess
import sys

SERVER = """
import json, os, sys
from mnist_grader.grading.fork_loop import serve_forks

def say(message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()

jobs = {}
def start_child(request):
    say({"child_of": os.getppid(), "job": request["job"]})
    return request["exit"]
def forked(pid, request):
    jobs[pid] = request["job"]
def ended(pid, status):
    say({"ended": jobs.pop(pid), "status": status})

serve_forks(start_child, forked, ended)
say({"server": "done", "left": len(jobs)})
"""


def test_a_child_per_request_and_every_end_reported():
    requests = "".join(json.dumps({"job": name, "exit": code}) + "\n"
                       for name, code in [("a", 0), ("b", 3), ("c", 0)])
    proc = subprocess.run([sys.executable, "-c", SERVER], input=requests, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    children = [m for m in lines if "child_of" in m]
    ended = {m["ended"]: m["status"] for m in lines if "ended" in m}
    assert sorted(m["job"] for m in children) == ["a", "b", "c"]
    assert ended == {"a": 0, "b": 3, "c": 0}  # each child's own exit status
    assert lines[-1] == {"server": "done", "left": 0}  # only after the last child ended
