"""What a student writes in the lab, for the helpers' tests: a per-sample Dataset with collate_func and a
classifier following the model protocol. Deliberately plain (and deliberately NOT in helpers/: the
helpers must never ship a lab answer). Also the real MNIST subset the tests train on.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from helpers.data import load_mnist

N_TRAIN, N_TEST = 2000, 1000


class MNISTDataset(Dataset):
    """ds[i] -> (float32 (784,) in [0, 1], int label), converted per call as students do."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return torch.tensor(self.images[index], dtype=torch.float32).reshape(-1) / 255.0, int(self.labels[index])

    def collate_func(self, samples):
        return {
            "images": torch.stack([image for image, _ in samples]),
            "labels": torch.tensor([label for _, label in samples], dtype=torch.int64),
        }


class MNISTClassifier(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear; train: {"loss", "logits"}, eval: {"probs", "pred", "logits"}."""

    def __init__(self, n_hidden: int = 32):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(784, n_hidden), nn.BatchNorm1d(n_hidden), nn.Linear(n_hidden, 10)

    def forward(self, batch):
        logits = self.fc2(torch.relu(self.bn(self.fc1(batch["images"]))))
        if self.training:
            log_probs = logits.log_softmax(dim=1)
            loss = -log_probs.gather(1, batch["labels"][:, None]).mean()
            return {"loss": loss, "logits": logits}
        probs = logits.softmax(dim=1)
        return {"probs": probs, "pred": probs.argmax(dim=1), "logits": logits}


@functools.lru_cache(maxsize=None)
def mnist_subset(split: str, n: int):
    """The first n images and labels of a split of the real MNIST (read through $MNIST_ROOT)."""
    images, labels = load_mnist(split, download=False)
    return images[:n].copy(), labels[:n].copy()


def datasets(n_train: int = N_TRAIN, n_test: int = N_TEST) -> tuple[MNISTDataset, MNISTDataset]:
    return MNISTDataset(*mnist_subset("train", n_train)), MNISTDataset(*mnist_subset("test", n_test))
