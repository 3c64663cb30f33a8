"""Benchmark the training helpers: prints the figures recorded in BENCHMARKS.md ("Training").

    python benchmarks/bench_training.py            # full: about 3-5 minutes on 2 cores
    python benchmarks/bench_training.py --smoke    # seconds: a dry run of each part (CI runs it)

1. End to end: ``python -m helpers.train 128`` for seeds 0-4, timed from outside (interpreter
   start to exit), with its test accuracy and peak resident memory (targets: >= 98.0 % on every
   seed, <= 10 s, <= 1 GiB).
2. Epoch time of ``fit`` fed by a students'-style per-sample Dataset + collate_func + DataLoader
   versus batches sliced from whole tensors (target: <= 1.6x), and what each knob does: the
   sample cache, DataLoader worker processes, PyTorch threads; plus the cost of __getitem__ and
   of collate_func alone.

Timings on a shared machine are noisy: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the students'-style Dataset and model the tests use

from helpers._reference_model import ReferenceMLP, TensorBatches, images_to_inputs  # noqa: E402
from helpers.data import load_mnist  # noqa: E402
from helpers.training import fit  # noqa: E402
from student_style import MNISTDataset  # noqa: E402


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = re.findall(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def run_cli(args: list[str], launcher: tuple[str, ...] = ("-m", "helpers.train")) -> dict:
    """Run python -m helpers.train (or another launcher of its main) in a fresh interpreter.

    Returns:
        wall seconds, CPU seconds (user + system), test accuracy (%), peak RSS (MiB) of that
        process, and its output.
    """
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *launcher, *args], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"python {' '.join(launcher)} {' '.join(args)} failed:\n{output}")
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", output).group(1))
    return dict(wall=wall, accuracy=accuracy, peak_mib=usage.ru_maxrss / 1024, cpu=usage.ru_utime + usage.ru_stime,
                output=output)


def bench_cli(seeds: list[int], smoke: bool) -> None:
    print(f"## python -m helpers.train 128{' --dry-run' if smoke else ''}, seeds {seeds}")
    print("| seed | wall (s) | CPU (s) | test accuracy (%) | peak RSS (MiB) | load before |")
    print("| --- | --- | --- | --- | --- | --- |")
    runs = []
    for seed in seeds:
        before = load()
        run = run_cli(["128", "--seed", str(seed)] + (["--dry-run"] if smoke else []))
        runs.append(run)
        print(f"| {seed} | {run['wall']:.2f} | {run['cpu']:.2f} | {run['accuracy']:.2f} | {run['peak_mib']:.0f} "
              f"| {before} |", flush=True)
    walls, accs = [r["wall"] for r in runs], [r["accuracy"] for r in runs]
    print(f"wall: median {statistics.median(walls):.2f} s, min {min(walls):.2f}, max {max(walls):.2f}; "
          f"accuracy: min {min(accs):.2f} %, max {max(accs):.2f} %; peak RSS max {max(r['peak_mib'] for r in runs):.0f} MiB\n")


def epoch_seconds(make_data, epochs: int, **fit_kwargs) -> tuple[float, float, float, bool]:
    """(mean epoch s, first epoch s, mean of the later epochs s, samples cached) of fit without validation."""
    torch.manual_seed(0)
    history = fit(ReferenceMLP(128), make_data(), epochs=epochs, progress=False, **fit_kwargs)
    seconds = history.column("train_seconds")
    later = statistics.mean(seconds[1:]) if len(seconds) > 1 else float("nan")
    return statistics.mean(seconds), seconds[0], later, history.cached_samples


def bench_data_paths(n_train: int, epochs: int, repeats: int) -> None:
    images, labels = load_mnist("train")
    images, labels = images[:n_train], labels[:n_train]
    inputs, targets = images_to_inputs(images), torch.from_numpy(labels)
    slicing = lambda: TensorBatches(inputs, targets, 128, shuffle=True)  # noqa: E731
    students = lambda: MNISTDataset(images, labels)  # noqa: E731
    configs = [
        ("slicing whole tensors (the reference)", slicing, {}),
        ("students' Dataset, fit defaults (cache auto, 0 workers, 1 thread)", students, {}),
        ("students' Dataset, no cache", students, dict(cache_samples=False)),
        # Worker processes and torch's default threads: one run each, they are slow and slow everyone down.
        ("students' Dataset, no cache, 1 worker process (1 run)", students, dict(cache_samples=False, num_workers=1)),
        ("students' Dataset, no cache, 2 worker processes (1 run)", students, dict(cache_samples=False, num_workers=2)),
        ("slicing, torch's default threads (1 epoch, 1 run)", slicing, dict(num_threads=None, epochs=1)),
    ]
    epoch_seconds(lambda: MNISTDataset(images[:2000], labels[:2000]), 1)  # warm-up: first calls, allocator
    print(f"## epoch time of fit, {n_train} images, batch 128, {epochs} epoch(s), H=128, no validation; "
          f"{repeats} rounds over the paths, the best run of each counts (other jobs only ever add time)")
    print(f"torch's default intra-op threads here: {torch.get_num_threads()}; load average before: {load()}")
    best: dict[str, tuple[float, float, float, bool]] = {}
    for round_ in range(repeats):
        for name, make_data, kwargs in configs:
            if round_ and "1 run" in name:
                continue
            best[name] = min(best.get(name, (float("inf"),)), epoch_seconds(make_data, **{"epochs": epochs, **kwargs}))
    print("| data path | first epoch (s) | later epochs (s) | mean epoch (s) | x slicing (mean) |")
    print("| --- | --- | --- | --- | --- |")
    reference = best[configs[0][0]][0]
    for name, _, _ in configs:
        mean, first, later, cached = best[name]
        print(f"| {name}{' [cached]' if cached else ''} | {first:.3f} | {later:.3f} | {mean:.3f} "
              f"| {mean / reference:.2f} |")
    print(f"load average after: {load()}")

    # Where the students' per-epoch time goes, measured without training.
    dataset = students()
    started = time.perf_counter()
    samples = [dataset[i] for i in range(len(dataset))]
    getitem = time.perf_counter() - started
    order = torch.randperm(len(samples)).tolist()
    started = time.perf_counter()
    for start in range(0, len(samples), 128):
        dataset.collate_func([samples[i] for i in order[start:start + 128]])
    collate = time.perf_counter() - started
    print(f"\nper epoch, no training: __getitem__ x {len(dataset)}: {getitem:.3f} s; "
          f"collate_func x {len(order) // 128 + 1} batches: {collate:.3f} s\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a quick pass of every part (CI): dry runs, small subsets")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of the CLI runs")
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs per data-path measurement (default: 10, fit's and the CLI's recipe)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the data paths, the best run counts (default: 2)")
    args = parser.parse_args()
    print(f"# bench_training {'--smoke ' if args.smoke else ''}on {machine()}; load average {load()}\n")
    bench_cli(args.seeds[:1] if args.smoke else args.seeds, args.smoke)
    bench_data_paths(2000 if args.smoke else 60000, 2 if args.smoke else args.epochs, 1 if args.smoke else args.repeats)
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
