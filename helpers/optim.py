"""AdamW with a one-cycle schedule, ``fit``'s default recipe, without torch.optim's fixed costs.

The maths is exactly ``torch.optim.AdamW`` + ``torch.optim.lr_scheduler.OneCycleLR`` with their
defaults (warm-up over the first 30 % of the steps from max_lr/25 to max_lr, cosine annealing
down to max_lr/25e4, beta1 cycled 0.95 -> 0.85 -> 0.95); the update is PyTorch's own fused AdamW
kernel, and a test checks the result step for step against torch.optim.

Why not torch.optim itself: its first use imports ``torch._dynamo`` (about 1.2 s of CPU) and
``Optimizer.step`` plus the scheduler cost about 0.3 ms of Python per step; together about a
quarter of ``python -m helpers.train 128`` on 2 cores (BENCHMARKS.md). Where the fused kernel
is not available (another device or dtype, a PyTorch without it), ``torch.optim.AdamW`` does
the update and this class only sets its learning rate and beta1 every step.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

__all__ = ["one_cycle", "OneCycleAdamW"]


def _cosine(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def one_cycle(
    step: int,
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> tuple[float, float]:
    """(learning rate, beta1) for a 0-based step, as torch's OneCycleLR computes them."""
    initial_lr = max_lr / div_factor
    phases = (  # (last step of the phase, lr from, lr to, beta1 from, beta1 to)
        (float(pct_start * total_steps) - 1, initial_lr, max_lr, max_momentum, base_momentum),
        (total_steps - 1, max_lr, initial_lr / final_div_factor, base_momentum, max_momentum),
    )
    start = 0.0
    for i, (end, lr_from, lr_to, beta_from, beta_to) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            pct = (step - start) / (end - start)
            return _cosine(lr_from, lr_to, pct), _cosine(beta_from, beta_to, pct)
        start = end
    raise AssertionError("unreachable")


def _fused_kernel_fits(params: list[torch.Tensor]) -> bool:
    """torch._fused_adamw_ takes dense float32 tensors on one CPU or CUDA device."""
    return (
        hasattr(torch, "_fused_adamw_")
        and len({p.device for p in params}) == 1
        and params[0].device.type in ("cpu", "cuda")
        and all(p.dtype == torch.float32 and p.layout == torch.strided for p in params)
    )


class OneCycleAdamW:
    """AdamW stepped along a one-cycle schedule of ``total_steps`` steps.

    Args:
        params: the parameters to train (those without requires_grad are skipped).
        max_lr: the peak learning rate.
        total_steps: the planned number of steps; steps beyond it keep the final learning rate.
        weight_decay: AdamW's decoupled weight decay (torch's default 0.01).
        beta2, eps: as torch.optim.AdamW.
        use_torch_optim: force the torch.optim.AdamW path (what other devices get).
    """

    def __init__(self, params: Iterable[torch.Tensor], max_lr: float, total_steps: int, weight_decay: float = 0.01,
                 beta2: float = 0.999, eps: float = 1e-8, use_torch_optim: bool = False):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("no parameters to optimise")
        self.max_lr, self.total_steps = max_lr, total_steps
        self.weight_decay, self.beta2, self.eps = weight_decay, beta2, eps
        self.steps_taken = 0
        self.lr, self.beta1 = one_cycle(0, total_steps, max_lr)
        self.torch_optimizer: torch.optim.Optimizer | None = None
        if use_torch_optim or not _fused_kernel_fits(self.params):
            self.torch_optimizer = torch.optim.AdamW(self.params, lr=self.lr, betas=(self.beta1, beta2), eps=eps,
                                                     weight_decay=weight_decay)
        else:
            self.exp_avg = [torch.zeros_like(p) for p in self.params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
            self.state_steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @property
    def fused(self) -> bool:
        return self.torch_optimizer is None

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update at the schedule's current (lr, beta1), then advance the schedule."""
        self.lr, self.beta1 = one_cycle(min(self.steps_taken, self.total_steps - 1), self.total_steps, self.max_lr)
        self.steps_taken += 1
        if self.torch_optimizer is not None:
            for group in self.torch_optimizer.param_groups:
                group["lr"], group["betas"] = self.lr, (self.beta1, self.beta2)
            self.torch_optimizer.step()
            return
        # Like torch.optim, a parameter without a gradient this step is left alone, its step count too.
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not have:
            return
        pick = (lambda xs: xs) if len(have) == len(self.params) else (lambda xs: [xs[i] for i in have])  # noqa: E731
        params, steps = pick(self.params), pick(self.state_steps)
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            params, [p.grad for p in params], pick(self.exp_avg), pick(self.exp_avg_sq), [], steps,
            amsgrad=False, lr=self.lr, beta1=self.beta1, beta2=self.beta2, weight_decay=self.weight_decay,
            eps=self.eps, maximize=False, grad_scale=None, found_inf=None,
        )
