"""The CUDA path of the helpers: training, evaluation, the optimiser and the CLI on a GPU.

These run only where PyTorch sees a CUDA device (they skip elsewhere, CI included: CI has no GPU).
Each compares the GPU against the CPU path with an explicit tolerance, or checks that the work
really happened on the GPU.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.evaluation import evaluate
from helpers.optim import OneCycleAdamW, fused_kernel_works
from helpers.training import fit, seed_everything
from student_style import MNISTClassifier, datasets

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def data(real_mnist_root):
    return datasets()


def test_fit_trains_on_the_gpu_by_default(data):
    seed_everything(0)
    model = MNISTClassifier(32)
    history = fit(model, data[0], data[1], epochs=4, lr=1e-2, progress=False)
    assert history.device.startswith("cuda"), "device='auto' picks the GPU when there is one"
    assert all(p.is_cuda for p in model.parameters()), "the model stays where it was trained"
    first, last = history.epochs[0], history.epochs[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["val_acc"] > 0.83, "as on the CPU: a 32-unit MLP reaches ~87 % on 1000 test images"


def test_gpu_and_cpu_training_agree_within_tolerance(data):
    """Same seed, same data order: the GPU's float32 rounding differs, the curves must not."""
    results = {}
    for device in ("cpu", "cuda"):
        seed_everything(1)
        model = MNISTClassifier(32)
        history = fit(model, data[0], data[1], epochs=2, lr=1e-2, seed=1, device=device, progress=False)
        results[device] = history.epochs[-1]
    assert abs(results["cpu"]["train_loss"] - results["cuda"]["train_loss"]) < 0.05
    assert abs(results["cpu"]["val_acc"] - results["cuda"]["val_acc"]) < 0.03


def test_evaluate_on_the_gpu_matches_the_cpu(data):
    seed_everything(2)
    model = MNISTClassifier(32)
    fit(model, data[0], None, epochs=1, lr=1e-2, device="cpu", progress=False)
    on_cpu = evaluate(model, data[1], device="cpu")
    on_gpu = evaluate(model, data[1], device="cuda")
    assert on_cpu.accuracy == pytest.approx(on_gpu.accuracy, abs=2 / len(data[1]))
    assert torch.allclose(torch.as_tensor(on_cpu.probs), torch.as_tensor(on_gpu.probs).cpu(), atol=1e-4)


@pytest.mark.parametrize("use_torch_optim", [False, True])
def test_one_cycle_adamw_on_the_gpu_matches_the_cpu(use_torch_optim):
    """Ten steps on the same parameters and gradients: the GPU's update equals the CPU's to 1e-6."""
    if not use_torch_optim:
        assert fused_kernel_works(torch.device("cuda")), "the private fused kernel should work on CUDA"
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(64, 32, generator=generator)
    grads = [torch.randn(64, 32, generator=generator) for _ in range(10)]
    finals = {}
    for device in ("cpu", "cuda"):
        param = torch.nn.Parameter(start.to(device, copy=True))  # the CPU's .to() would alias start
        optimizer = OneCycleAdamW([param], max_lr=3e-3, total_steps=10, use_torch_optim=use_torch_optim)
        for grad in grads:
            param.grad = grad.to(device)
            optimizer.step()
        finals[device] = param.detach().cpu()
    assert torch.allclose(finals["cpu"], finals["cuda"], atol=1e-6, rtol=1e-5)
    assert not torch.equal(finals["cpu"], start), "the steps moved the parameters"


def test_the_cli_trains_on_cuda(real_mnist_root):
    result = subprocess.run([sys.executable, "-m", "helpers.train", "64", "--dry-run", "--device", "cuda"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MNIST_ROOT": str(real_mnist_root)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device cuda" in result.stdout
    accuracy = float(result.stdout.split("test accuracy: ")[1].split("%")[0])
    assert accuracy > 40, "16 steps beat chance (10 %) on the GPU as on the CPU"
