"""From the student's data to batches on a device: loaders, the sample cache, devices, threads.

A batch is what the student's ``collate_func`` returns: ``{"images": float (N, 784), "labels":
int64 (N,)}``. ``fit`` and ``evaluate`` take either a map-style ``Dataset`` (wrapped here in a
``DataLoader`` with its ``collate_func``) or something that already yields batches (a
``DataLoader``, a list of batch dicts, ...).

Why a sample cache: a student's ``__getitem__`` typically converts one uint8 image to a float
tensor per call. Over 60,000 images that costs more per epoch than the training step itself on
a 2-core CPU (see BENCHMARKS.md, "Training"); worker processes do not help there, they add
inter-process copies and fight the training loop for the two cores. When ``__getitem__`` is a
pure function of the index, which the protocol's dataset is, its results can be kept after the
first epoch; the student's ``collate_func`` still builds every batch.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .protocol import BATCH_PROTOCOL, BatchProtocolError

__all__ = [
    "CachedSamples",
    "resolve_device",
    "make_batches",
    "to_device",
    "intra_op_threads",
]

# Samples are cached only while the whole dataset fits in this much memory.
CACHE_BUDGET_BYTES = 1 << 30


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when present, else Apple's MPS when present, else the CPU; anything else as given."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def intra_op_threads(num_threads: int | str | None, device: torch.device) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(num_threads)`` and restore the old value after.

    Args:
        num_threads: an int; None to leave torch's setting alone; "auto" for 1 on the CPU
            (an MNIST MLP's matrices are too small to split across threads, and on a shared
            machine, CI or a JupyterHub, OpenMP threads that wait for a busy core make every step
            10-50x slower: BENCHMARKS.md, "Training") and unchanged elsewhere.
        device: where training runs.
    """
    if num_threads == "auto":
        num_threads = 1 if device.type == "cpu" else None
    if num_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _same(a: Any, b: Any) -> bool:
    """Deep equality for what a __getitem__ may return (tensors, arrays, numbers, containers)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # an object without a usable ==: treat as different, caching stays off
        return False


def _nbytes(sample: Any) -> int:
    if isinstance(sample, torch.Tensor):
        return sample.element_size() * sample.numel()
    if isinstance(sample, np.ndarray):
        return sample.nbytes
    if isinstance(sample, Mapping):
        return sum(_nbytes(v) for v in sample.values())
    if isinstance(sample, (tuple, list)):
        return sum(_nbytes(v) for v in sample)
    return 8


class CachedSamples(Dataset):
    """A dataset whose samples are computed by the wrapped dataset once, then kept.

    Only correct for datasets whose ``__getitem__`` returns the same value for the same index
    every time (no random augmentation); ``cacheable`` checks that on a few indices.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.samples: list[Any] = [None] * len(dataset)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        sample = self.samples[index]
        if sample is None:
            sample = self.samples[index] = self.dataset[index]
        return sample

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """A whole batch in one call (the DataLoader uses it when present): one Python call, not 128."""
        samples = self.samples
        return [samples[i] if samples[i] is not None else self[i] for i in indices]

    @staticmethod
    def cacheable(dataset: Dataset, budget_bytes: int = CACHE_BUDGET_BYTES) -> bool:
        """True when ``dataset[i]`` is repeatable on probe indices and all samples fit in the budget."""
        n = len(dataset)
        if n == 0:
            return False
        for index in sorted({0, n // 2, n - 1}):
            first = dataset[index]
            if not _same(first, dataset[index]):
                return False
        return _nbytes(first) * n <= budget_bytes


def is_map_dataset(data: Any) -> bool:
    """A dataset of samples (to be collated), as opposed to something that already yields batches."""
    if isinstance(data, DataLoader):
        return False
    if isinstance(data, Dataset):
        return not isinstance(data, torch.utils.data.IterableDataset)
    return (
        hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, (list, tuple, Mapping, torch.Tensor, np.ndarray))
    )


def make_batches(
    data: Any,
    collate_fn: Callable | None = None,
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    cache_samples: bool | str = "auto",
    pin_memory: bool = False,
    persistent: bool = False,
) -> tuple[Iterable[Mapping[str, torch.Tensor]], bool]:
    """Turn a Dataset into a DataLoader of batch dicts; pass anything that already yields batches through.

    Args:
        data: a map-style Dataset of samples, or an iterable of batch dicts (a DataLoader, a list...).
        collate_fn: builds a batch dict from a list of samples; default: ``data.collate_func``.
        batch_size, shuffle, num_workers, pin_memory: as for ``DataLoader``; shuffling uses a
            generator seeded with ``seed``, so the order is reproducible.
        cache_samples: keep each sample after its first computation: True, False, or "auto"
            (when the dataset is repeatable, fits in 1 GiB, and no worker processes are used).
        persistent: keep worker processes alive between epochs.

    Returns:
        (batches, cached): something to iterate once per epoch, and whether samples are cached.

    Raises:
        BatchProtocolError: a Dataset without a collate function.
    """
    if not is_map_dataset(data):
        if not hasattr(data, "__iter__"):
            raise BatchProtocolError(
                f"expected a Dataset or an iterable of batches {BATCH_PROTOCOL}, got {type(data).__name__}."
            )
        return data, False
    collate_fn = collate_fn if collate_fn is not None else getattr(data, "collate_func", None)
    if collate_fn is None:
        raise BatchProtocolError(
            f"{type(data).__name__} has no collate_func and no collate_fn was passed: the helpers need a "
            f"function that turns a list of samples into a batch {BATCH_PROTOCOL}. Give your dataset a "
            f"collate_func method or pass collate_fn=..."
        )
    if cache_samples == "auto":
        cache_samples = num_workers == 0 and CachedSamples.cacheable(data)
    dataset = CachedSamples(data) if cache_samples else data
    # A last batch of one sample breaks BatchNorm in training mode; drop it rather than crash.
    drop_last = shuffle and len(data) % batch_size == 1 and len(data) > 1
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=persistent and num_workers > 0,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )
    return loader, bool(cache_samples)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors on ``device`` (other values untouched)."""
    return {
        key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }
