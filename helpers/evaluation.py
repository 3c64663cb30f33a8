"""Evaluate a classifier on a dataset: accuracy, per-class accuracy, confusion matrix, predictions.

It relies only on the model protocol's eval mode: ``model(batch)`` returns ``"probs"`` (N, C) and ``"pred"`` (N,).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .batching import make_batches, resolve_device, to_device
from .protocol import ModelProtocolError, check_batch, check_eval_output

__all__ = ["Evaluation", "evaluate", "cross_entropy_from_probs"]

# Probabilities are clamped to this before the log, so one confident mistake does not make the loss infinite.
MIN_PROB = 1e-12


@dataclass
class Evaluation:
    """What ``evaluate`` measured.

    Attributes:
        accuracy: fraction of correct predictions, in [0, 1].
        per_class_accuracy: (C,) accuracy among the images of each true class (NaN for a class
            with no image).
        confusion: (C, C) int counts; rows are true labels, columns predicted labels.
        labels: (N,) true labels.
        preds: (N,) predicted labels (the model's "pred").
        probs: (N, C) predicted probabilities (the model's "probs").
        loss: mean cross entropy -log p(true label), computed from ``probs``.
    """

    accuracy: float
    per_class_accuracy: np.ndarray
    confusion: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    probs: np.ndarray
    loss: float

    @property
    def mistakes(self) -> np.ndarray:
        """Indices of the wrongly classified images."""
        return np.flatnonzero(self.preds != self.labels)

    def __repr__(self) -> str:
        return f"Evaluation(accuracy={self.accuracy:.4f}, loss={self.loss:.4f}, n={len(self.labels)})"


def cross_entropy_from_probs(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean of -log(probs[i, labels[i]]), probabilities clamped at MIN_PROB."""
    if len(labels) == 0:
        return float("nan")
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, MIN_PROB, None)).mean())


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: Any,
    *,
    collate_fn: Callable | None = None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
) -> Evaluation:
    """Run the model in eval mode over a dataset and measure it.

    Args:
        model: follows the model protocol (eval mode returns "probs" and "pred").
        data: a Dataset (batched with its ``collate_func``) or an iterable of batch dicts.
        collate_fn: overrides ``data.collate_func``.
        batch_size: images per forward pass.
        device: "auto" (CUDA when present), "cpu", "cuda", ...; the model is moved there.

    Returns:
        An Evaluation. The model is left in eval mode.

    Raises:
        ModelProtocolError, BatchProtocolError: the model or the batches break the protocol.
    """
    device = resolve_device(device)
    batches, _ = make_batches(data, collate_fn, batch_size=batch_size, cache_samples=False)
    model.to(device)
    model.eval()
    all_labels, all_preds, all_probs = [], [], []
    for batch in batches:
        images, labels = check_batch(batch)
        probs, pred = check_eval_output(model(to_device(batch, device)), len(labels))
        all_labels.append(labels.cpu())
        all_preds.append(pred.detach().cpu())
        all_probs.append(probs.detach().float().cpu())
    return summarize(
        torch.cat(all_labels).numpy() if all_labels else np.zeros(0, np.int64),
        torch.cat(all_preds).numpy().astype(np.int64) if all_preds else np.zeros(0, np.int64),
        torch.cat(all_probs).numpy() if all_probs else np.zeros((0, 10), np.float32),
    )


def summarize(labels: np.ndarray, preds: np.ndarray, probs: np.ndarray) -> Evaluation:
    """Accuracy, per-class accuracy, confusion matrix and loss from labels, predictions and probabilities."""
    if len(preds) and preds.min() < 0:
        raise ModelProtocolError(f'output["pred"] must hold class indices 0..9, got {int(preds.min())}.')
    n_classes = max(probs.shape[1], int(labels.max(initial=-1)) + 1, int(preds.max(initial=-1)) + 1)
    confusion = np.bincount(labels * n_classes + preds, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    per_class_total = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / per_class_total
    return Evaluation(
        accuracy=float((preds == labels).mean()) if len(labels) else float("nan"),
        per_class_accuracy=per_class,
        confusion=confusion,
        labels=labels,
        preds=preds,
        probs=probs,
        loss=cross_entropy_from_probs(probs, labels),
    )
