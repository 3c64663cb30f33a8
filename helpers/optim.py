"""AdamW with a one-cycle schedule, ``fit``'s default recipe, without torch.optim's fixed costs.

The maths is exactly ``torch.optim.AdamW`` + ``torch.optim.lr_scheduler.OneCycleLR`` with their
defaults (warm-up over the first 30 % of the steps from max_lr/25 to max_lr, cosine annealing
down to max_lr/25e4, beta1 cycled 0.95 -> 0.85 -> 0.95); the update is PyTorch's own fused AdamW
kernel, and a test checks the result step for step against torch.optim.

Why not torch.optim itself: building ``torch.optim.AdamW`` imports ``torch._dynamo`` (about 1 s
of CPU) and ``AdamW.step`` plus ``OneCycleLR.step`` cost about 0.1 ms more per step than this
class; with ``AdamW(fused=True)`` the CLI ``python -m helpers.train 128`` took 23-29 % more CPU
time and 31-37 % more wall time on 2 cores (``benchmarks/bench_optimizer.py``, BENCHMARKS.md).

The kernel is private, so another PyTorch may rename it, change its arguments or its maths. Before
its first use on a device, ``fused_kernel_works`` runs two steps of it on three numbers and checks
them against AdamW's formula; if the call fails or the numbers differ (or the parameters are not
dense float32 on one CPU or CUDA device), ``torch.optim.AdamW`` does the update and this class
only sets its learning rate and beta1 every step.
"""
from __future__ import annotations

import functools
import math
from typing import Iterable

import torch

__all__ = ["one_cycle", "OneCycleAdamW", "fused_kernel_works"]


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


def _fused_adamw_step(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                      exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], *, lr: float, beta1: float,
                      beta2: float, weight_decay: float, eps: float) -> None:
    """One AdamW step in place through PyTorch's private fused kernel (the call that torch.optim makes)."""
    torch._foreach_add_(steps, 1)
    torch._fused_adamw_(
        params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=lr, beta1=beta1, beta2=beta2,
        weight_decay=weight_decay, eps=eps, maximize=False, grad_scale=None, found_inf=None,
    )


def _adamw_by_formula(param: torch.Tensor, grads: list[torch.Tensor], lr: float, beta1: float, beta2: float,
                      weight_decay: float, eps: float) -> torch.Tensor:
    """AdamW (decoupled weight decay, bias-corrected moments) written out, for checking the kernel."""
    exp_avg, exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)
    for t, grad in enumerate(grads, start=1):
        param = param * (1 - lr * weight_decay)
        exp_avg = beta1 * exp_avg + (1 - beta1) * grad
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
        param = param - lr / (1 - beta1**t) * exp_avg / ((exp_avg_sq / (1 - beta2**t)).sqrt() + eps)
    return param


@functools.lru_cache(maxsize=None)
def fused_kernel_works(device: torch.device) -> bool:
    """Whether this PyTorch's private fused AdamW kernel accepts our call and computes AdamW on ``device``.

    Two steps on three float32 numbers, compared with ``_adamw_by_formula``; checked once per device.

    Args:
        device: where the parameters live.

    Returns:
        False when the kernel is missing, refuses the call (renamed or changed arguments) or computes
        something else; True when ``OneCycleAdamW`` may use it.
    """
    if not hasattr(torch, "_fused_adamw_") or device.type not in ("cpu", "cuda"):
        return False
    settings = dict(lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.01, eps=1e-8)
    start = torch.tensor([1.0, -2.0, 0.5])
    grads = [torch.tensor([0.5, 0.25, -4.0]), torch.tensor([-0.5, 1.0, 3.0])]
    param = start.to(device, copy=True)  # the kernel updates it in place
    state = [torch.zeros_like(param), torch.zeros_like(param), torch.zeros((), device=device)]
    try:
        for grad in grads:
            _fused_adamw_step([param], [grad.to(device)], [state[0]], [state[1]], [state[2]], **settings)
        return bool(torch.allclose(param.cpu(), _adamw_by_formula(start, grads, **settings), rtol=1e-5, atol=1e-6))
    except Exception:  # noqa: BLE001 - any failure of a private function means: do not use it
        return False


def _fused_kernel_fits(params: list[torch.Tensor]) -> bool:
    """Dense float32 tensors on one CPU or CUDA device, where the kernel passed ``fused_kernel_works``."""
    return (
        len({p.device for p in params}) == 1
        and all(p.dtype == torch.float32 and p.layout == torch.strided for p in params)
        and fused_kernel_works(params[0].device)
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

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients, as ``torch.optim.Optimizer.zero_grad`` does (same argument, so a
        training loop written for torch.optim works unchanged)."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

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
        _fused_adamw_step(params, [p.grad for p in params], pick(self.exp_avg), pick(self.exp_avg_sq), steps,
                          lr=self.lr, beta1=self.beta1, beta2=self.beta2, weight_decay=self.weight_decay, eps=self.eps)
