"""The notebook benchmark runs (smoke mode), so it cannot rot."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_notebooks_dry_run_prints_its_figures(real_mnist_root):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_notebooks.py"), "--dry-run"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "machine:" in done.stdout
    assert "Restart & Run All (grading mode)" in done.stdout and " s " in done.stdout


def test_bench_notebooks_rejects_a_bad_repeat():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_notebooks.py"), "--repeat", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--repeat must be at least 1" in done.stderr
