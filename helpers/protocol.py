"""The lab's protocol between the student's code and the helpers, and the checks that enforce it.

A batch (from the student's ``collate_func``)::

    {"images": float32 tensor (N, 784), "labels": int64 tensor (N,)}

The model's ``forward(batch)`` returns a dict: in training mode with ``"loss"`` (a scalar tensor
with a gradient) and usually ``"logits"`` (N, C); in eval mode with ``"probs"`` (N, C) and
``"pred"`` (N,). The helpers rely on nothing else, so every check below names what the protocol
expects and what it received: a student reads the error, not the helpers' source.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "ProtocolError",
    "BatchProtocolError",
    "ModelProtocolError",
    "BATCH_PROTOCOL",
    "check_batch",
    "check_train_output",
    "check_eval_output",
]

N_CLASSES = 10  # MNIST and Fashion-MNIST alike
BATCH_PROTOCOL = '{"images": float tensor (N, 784), "labels": int64 tensor (N,)}'
TRAIN_PROTOCOL = 'in training mode (model.train()) model(batch) must return a dict with "loss" (a scalar tensor)'
EVAL_PROTOCOL = 'in eval mode (model.eval()) model(batch) must return a dict with "probs" (N, 10) and "pred" (N,)'


class ProtocolError(TypeError, ValueError):
    """Student code returned something the course's protocol does not allow (a wrong type or value)."""


class BatchProtocolError(ProtocolError):
    """A batch (what collate_func returns) does not follow the batch protocol."""


class ModelProtocolError(ProtocolError):
    """The model's forward(batch) does not follow the model protocol."""


def describe(value: Any) -> str:
    """A short description of a value for error messages: type, dtype and shape of arrays."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"a {type(value).__name__} of dtype {value.dtype} and shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def check_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Check one batch against the protocol and return (images, labels).

    Raises:
        BatchProtocolError: saying what the protocol expects and what was received.
    """
    if not isinstance(batch, Mapping):
        raise BatchProtocolError(f"a batch must be a dict {BATCH_PROTOCOL}, but got {describe(batch)}.")
    missing = [key for key in ("images", "labels") if key not in batch]
    if missing:
        raise BatchProtocolError(
            f"a batch must be a dict {BATCH_PROTOCOL}; this one has keys {sorted(batch)} (missing {missing})."
        )
    images, labels = batch["images"], batch["labels"]
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 2:
        raise BatchProtocolError(f'batch["images"] must be a float tensor of shape (N, 784), got {describe(images)}.')
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.ndim != 1:
        raise BatchProtocolError(f'batch["labels"] must be an int64 tensor of shape (N,), got {describe(labels)}.')
    if len(images) != len(labels):
        raise BatchProtocolError(
            f'batch["images"] holds {len(images)} rows but batch["labels"] holds {len(labels)} labels; '
            f"they must match, one label per image."
        )
    return images, labels


def _check_dict(output: Any, protocol: str) -> Mapping:
    if not isinstance(output, Mapping):
        raise ModelProtocolError(f"{protocol}, but it returned {describe(output)}.")
    return output


def _check_rows(output: Mapping, key: str, n: int, ndim: int, protocol: str) -> torch.Tensor:
    """output[key] must be a tensor with ``ndim`` dimensions and one row per image of the batch."""
    value = output[key]
    shape = f"(N, {N_CLASSES})" if ndim == 2 else "(N,)"
    wrong_columns = ndim == 2 and isinstance(value, torch.Tensor) and value.ndim == 2 and value.shape[1] != N_CLASSES
    if not isinstance(value, torch.Tensor) or value.ndim != ndim or value.shape[0] != n or wrong_columns:
        raise ModelProtocolError(
            f'{protocol}; output["{key}"] must be a tensor of shape {shape} with N = {n} (the batch size), '
            f"got {describe(value)}."
        )
    return value


def check_train_output(output: Any, n: int, step: int) -> tuple[torch.Tensor, float]:
    """Check a training-mode output for a batch of ``n`` images; return (loss tensor, loss value).

    Args:
        output: what model(batch) returned.
        n: the batch size.
        step: the optimisation step (0-based), for the message.

    Raises:
        ModelProtocolError: not a dict, no "loss", loss not a scalar tensor with a gradient,
            loss NaN or infinite, "logits" of the wrong shape.
    """
    output = _check_dict(output, TRAIN_PROTOCOL)
    if "loss" not in output:
        raise ModelProtocolError(f'{TRAIN_PROTOCOL}; it returned keys {sorted(output)}, with no "loss".')
    loss = output["loss"]
    if not isinstance(loss, torch.Tensor):
        raise ModelProtocolError(
            f'{TRAIN_PROTOCOL}; output["loss"] is {describe(loss)}. Return the tensor itself '
            f"(not loss.item() or a float), so that loss.backward() can compute gradients."
        )
    if loss.numel() != 1:
        raise ModelProtocolError(
            f'{TRAIN_PROTOCOL}; output["loss"] has shape {tuple(loss.shape)}: one loss per sample? '
            f"Average it over the batch (.mean()) to get a single number."
        )
    if not loss.requires_grad:
        raise ModelProtocolError(
            f'{TRAIN_PROTOCOL}; output["loss"] does not require a gradient, so training cannot change the '
            f"weights. Compute it from the model's outputs with torch operations, without .detach(), "
            f"torch.no_grad() or a detour through numpy."
        )
    if "logits" in output:
        _check_rows(output, "logits", n, 2, TRAIN_PROTOCOL)
    if "pred" in output:
        _check_rows(output, "pred", n, 1, TRAIN_PROTOCOL)
    value = loss.item()
    if not math.isfinite(value):
        raise ModelProtocolError(
            f"the loss became {value} at step {step + 1}. Common causes: log(0) in a cross entropy (use "
            f"log-softmax, or clamp probabilities), an exp() that overflows (subtract the max before exp), "
            f"or a learning rate that is too high."
        )
    return loss, value


def check_eval_output(output: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check an eval-mode output for a batch of ``n`` images; return (probs (n, C), pred (n,)).

    Raises:
        ModelProtocolError: not a dict, "probs" or "pred" missing or of the wrong shape.
    """
    output = _check_dict(output, EVAL_PROTOCOL)
    missing = [key for key in ("probs", "pred") if key not in output]
    if missing:
        raise ModelProtocolError(f"{EVAL_PROTOCOL}; it returned keys {sorted(output)} (missing {missing}).")
    probs = _check_rows(output, "probs", n, 2, EVAL_PROTOCOL)
    pred = _check_rows(output, "pred", n, 1, EVAL_PROTOCOL)
    return probs, pred
