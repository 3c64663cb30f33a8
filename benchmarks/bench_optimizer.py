"""Benchmark fit's optimiser: torch.optim against PyTorch's private fused AdamW kernel, end to end.

    python benchmarks/bench_optimizer.py            # seeds 0-4, both variants: about 2-4 minutes on 2 cores
    python benchmarks/bench_optimizer.py --smoke    # one dry run of each variant (seconds; CI runs it)

Each variant runs the training CLI ``python -m helpers.train 128 --seed S`` in a fresh interpreter,
timed from outside (interpreter start to exit, wall and CPU time of that process). The variants
take turns seed by seed (round-robin, the order alternating), so the load of other jobs on a
shared machine falls on both alike. The private path is worth its maintenance only if it wins by
more than 15 % end to end; the last line says whether it does.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 0.15  # the private path must save more than this share of the time to be kept
TORCH_OPTIM_MARK = "optimiser: torch.optim.AdamW(fused=True) + OneCycleLR"  # printed by the child that uses it

VARIANTS = {
    "torch.optim": "torch.optim.AdamW(fused=True) + OneCycleLR",
    "private": "helpers.optim (torch._fused_adamw_ called directly)",
}


class TorchOptimOneCycle:
    """The ``helpers.optim.OneCycleAdamW`` interface on top of torch.optim: AdamW(fused=True) + OneCycleLR."""

    def __init__(self, params, max_lr: float, total_steps: int, weight_decay: float = 0.01):
        import torch

        print(TORCH_OPTIM_MARK, flush=True)
        self.optimizer = torch.optim.AdamW(list(params), lr=max_lr, weight_decay=weight_decay, fused=True)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=max_lr, total_steps=total_steps)
        self.total_steps, self.steps_taken, self.fused = total_steps, 0, True

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self.optimizer.step()
        self.steps_taken += 1
        if self.steps_taken < self.total_steps:
            self.schedule.step()


def train(variant: str, cli_args: list[str]) -> int:
    """Run the training CLI in this process with the variant's optimiser."""
    import helpers.train
    import helpers.training

    if variant == "torch.optim":
        if not hasattr(helpers.training, "OneCycleAdamW"):
            raise SystemExit("helpers.training no longer builds its optimiser with OneCycleAdamW: update this benchmark")
        helpers.training.OneCycleAdamW = TorchOptimOneCycle
    return helpers.train.main(cli_args)


def run_variant(variant: str, cli_args: list[str]) -> dict:
    """Time one CLI run of a variant in a fresh interpreter (see bench_training.run_cli)."""
    from bench_training import run_cli

    run = run_cli(cli_args, launcher=(__file__, "--train", variant, "--"))
    if (TORCH_OPTIM_MARK in run["output"]) != (variant == "torch.optim"):
        raise SystemExit(f"{variant}: the run did not use the optimiser it is named after:\n{run['output']}")
    return run


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f})"


def compare(seeds: list[int], smoke: bool) -> None:
    from bench_training import load, machine  # the same machine line as the other training figures

    extra = ["--dry-run"] if smoke else []
    print(f"# bench_optimizer {'--smoke ' if smoke else ''}on {machine()}; load average {load()}\n")
    print(f"## python -m helpers.train 128{' --dry-run' if smoke else ''}, seeds {seeds}, variants in turn")
    print("| seed | variant | wall (s) | CPU (s) | test accuracy (%) | load before |")
    print("| --- | --- | --- | --- | --- | --- |")
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for round_, seed in enumerate(seeds):
        order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            before = load()
            run = run_variant(variant, ["128", "--seed", str(seed), *extra])
            runs[variant].append(run)
            print(f"| {seed} | {variant} | {run['wall']:.2f} | {run['cpu']:.2f} | {run['accuracy']:.2f} | {before} |",
                  flush=True)
    print()
    for variant, description in VARIANTS.items():
        walls, cpus = [r["wall"] for r in runs[variant]], [r["cpu"] for r in runs[variant]]
        accs = [r["accuracy"] for r in runs[variant]]
        print(f"{variant} ({description}): wall {summary(walls)}; CPU {summary(cpus)}; "
              f"accuracy {min(accs):.2f}-{max(accs):.2f} %")
    same = [a["accuracy"] for a in runs["torch.optim"]] == [b["accuracy"] for b in runs["private"]]
    print(f"same test accuracy on every seed: {'yes' if same else 'NO'}")
    saved = {}
    for measure in ("wall", "cpu"):
        public = statistics.median(r[measure] for r in runs["torch.optim"])
        private = statistics.median(r[measure] for r in runs["private"])
        saved[measure] = (public - private) / public
    print(f"the private path saves {100 * saved['wall']:.1f} % of the median wall time and "
          f"{100 * saved['cpu']:.1f} % of the median CPU time (threshold: {100 * THRESHOLD:.0f} %)")
    keep = all(share > THRESHOLD for share in saved.values())
    print(f"decision: {'keep the private path' if keep else 'use torch.optim'}; load average at the end: {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one dry run of each variant (CI)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of the CLI runs")
    parser.add_argument("--train", choices=list(VARIANTS), help=argparse.SUPPRESS)  # one timed run, in the child
    parser.add_argument("cli_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.train:
        sys.exit(train(args.train, args.cli_args))
    sys.path.insert(0, str(REPO / "benchmarks"))
    compare(args.seeds[:1] if args.smoke else args.seeds, args.smoke)


if __name__ == "__main__":
    main()
