"""Private: the model and batching that ``python -m helpers.train`` and the benchmarks use.

NOT part of the course's API and not exported by ``helpers``: the lab asks students to write their
own dataset, collate function and classifier, and the assignment's hidden tests check that a
submission does not import this module. It uses PyTorch's built-in layers and losses, so it
is no answer to the lab's from-scratch tasks either.

The architecture: Linear(784, H) -> BatchNorm1d(H) -> ReLU -> Linear(H, 10).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__: list[str] = []  # nothing here is public


class ReferenceMLP(nn.Module):
    """The reference MLP, following the model protocol (train: loss, logits; eval: probs, pred, logits)."""

    def __init__(self, n_hidden: int = 128, n_inputs: int = 784, n_classes: int = 10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_inputs, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_classes)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.layers(batch["images"])
        if self.training:
            return {"loss": F.cross_entropy(logits, batch["labels"]), "logits": logits}
        probs = logits.softmax(dim=1)
        return {"logits": logits, "probs": probs, "pred": probs.argmax(dim=1)}


def images_to_inputs(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [0, 1], for the whole array at once."""
    return torch.from_numpy(np.ascontiguousarray(images)).reshape(len(images), -1).float().div_(255)


class TensorBatches:
    """Batches by slicing two whole tensors: the fast path that per-sample Datasets are compared to.

    Iterating yields ``{"images", "labels"}`` dicts; with ``shuffle``, a fresh permutation from a
    generator seeded once, so every run with the same seed sees the same order.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, shuffle: bool = False,
                 seed: int = 0):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def _count(self) -> int:
        """Images used per epoch: a last batch of one breaks BatchNorm in training, so it is dropped."""
        n = len(self.labels)
        return n - 1 if self.shuffle and n > 1 and n % self.batch_size == 1 else n

    def __len__(self) -> int:
        return -(-self._count() // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        n = self._count()
        order = torch.randperm(len(self.labels), generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield {"images": self.images[start:start + self.batch_size],
                       "labels": self.labels[start:start + self.batch_size]}
            else:
                index = order[start:start + self.batch_size]
                # index_select: 2.5x faster than self.images[index] for a batch of rows (measured)
                yield {"images": self.images.index_select(0, index), "labels": self.labels.index_select(0, index)}
