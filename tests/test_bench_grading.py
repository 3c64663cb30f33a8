"""The grading benchmark (benchmarks/bench_grading.py) runs and prints its figures."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.grader_course import REPO


def test_bench_grading_smoke():
    """The grading benchmark runs (tiny course, 4 submissions) and prints its figures."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_grading.py"), "--smoke"],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                   + os.environ["PATH"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for figure in ("plain nbgrader autograde (sequential)", "speedup", "s/submission",
                   "peak memory of one worker", "what dominates"):
        assert figure in proc.stdout, proc.stdout
