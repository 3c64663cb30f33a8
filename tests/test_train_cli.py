"""`python -m helpers.train` (dry run, plot, errors), the reference model's privacy, the benchmark's smoke mode."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import helpers

REPO = Path(__file__).resolve().parent.parent


def run(*args, cwd=REPO, **env):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg", **env})


def test_dry_run_trains_one_epoch_and_saves_the_plot(real_mnist_root, tmp_path):
    plot = tmp_path / "curves.png"
    result = run("-m", "helpers.train", "16", "--dry-run", "--plot", str(plot), "--seed", "1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2048 training, 1024 test images (dry run)" in out
    assert "epoch  1/1  train loss" in out and "test loss" in out
    assert "epoch  2/" not in out
    accuracy = float(out.split("test accuracy: ")[1].split("%")[0])
    assert 40 < accuracy <= 100, "16 steps of training beat chance (10 %)"
    assert "wall time:" in out and plot.read_bytes().startswith(b"\x89PNG")


def test_cli_rejects_bad_arguments_and_missing_data(tmp_path):
    result = run("-m", "helpers.train", "0", "--dry-run")
    assert result.returncode == 2 and "N_HIDDEN must be a positive" in result.stderr
    result = run("-m", "helpers.train", "--help")
    assert result.returncode == 0 and all(flag in result.stdout for flag in
                                          ("--epochs", "--batch-size", "--lr", "--seed", "--device", "--data-dir",
                                           "--plot", "--dry-run"))
    # A damaged data file: the loader's message (which file, what to do) reaches the user, no traceback.
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not MNIST")
    result = run("-m", "helpers.train", "16", "--dry-run", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in result.stderr and "md5" in result.stderr


def test_reference_model_is_not_public():
    assert not {"ReferenceMLP", "TensorBatches"} & (set(dir(helpers)) | set(helpers.__all__))
    importers = []
    for path in (REPO / "helpers").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        names += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        if any("_reference_model" in name for name in names):
            importers.append(path.name)
    assert importers == ["train.py"], "only the CLI may use the private reference model"


def test_benchmark_smoke_mode_prints_every_figure(real_mnist_root):
    result = run("benchmarks/bench_training.py", "--smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "python -m helpers.train 128 --dry-run" in out and "peak RSS" in out
    for row in ("slicing whole tensors", "students' Dataset, fit defaults", "1 worker process", "__getitem__ x 2000"):
        assert row in out


def test_optimizer_benchmark_smoke_mode_runs_both_variants(real_mnist_root):
    result = run("benchmarks/bench_optimizer.py", "--smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "| 0 | torch.optim |" in out and "| 0 | private |" in out
    assert "same test accuracy on every seed: yes" in out, "both variants compute the same AdamW + one-cycle"
    assert "decision: " in out
