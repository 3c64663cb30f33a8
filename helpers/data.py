"""MNIST and Fashion-MNIST: find the files, download them if missing, verify them, parse them.

This is the course's plumbing. The lab asks students to parse IDX bytes themselves
(`read_idx` in the assignment); this module is the verified loader that the training
helpers, the lecture notebook and the graders rely on.

Where the files are looked for, first match wins:
    1. the ``root`` argument,
    2. the dataset's environment variable (``MNIST_ROOT`` / ``FASHION_MNIST_ROOT``),
    3. the dataset's default folder (``data/<name>/`` at the top of the course, gitignored;
       for Fashion-MNIST the Debian package's folder when it is installed).

Every file is checked against its published md5 before it is parsed, so a corrupted or
half-downloaded file is never used to train.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["DataError", "IdxDataset", "DATASETS", "load_mnist", "dataset_root", "parse_idx_bytes", "read_idx_file"]

COURSE_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
DOWNLOAD_TIMEOUT_S = 30


class DataError(RuntimeError):
    """A data file is missing, corrupted or malformed. The message names the file and the fix."""


@dataclass(frozen=True)
class IdxDataset:
    """Where a dataset in MNIST's format lives and how to check it.

    Attributes:
        name: short name, also the default folder under ``data/``.
        files: split -> (images file name, labels file name), gzip-compressed IDX.
        md5: file name -> published md5 of the .gz file (what downloads are checked against).
        raw_md5: file name -> md5 of its decompressed IDX bytes, so that a local copy that was
            recompressed (Debian's Fashion-MNIST package is) can still be verified.
        mirrors: base URLs tried in order when a file is missing.
        env_var: environment variable that overrides the folder.
        default_roots: folders tried after the environment variable, in order; the
            last one is where downloads go when none of them has the files.
    """

    name: str
    files: Mapping[str, tuple[str, str]]
    md5: Mapping[str, str]
    mirrors: Sequence[str]
    env_var: str
    default_roots: Sequence[Path] = field(default_factory=tuple)
    raw_md5: Mapping[str, str] = field(default_factory=dict)


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

DATASETS = {
    "mnist": IdxDataset(
        name="mnist",
        files=_MNIST_FILES,
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        env_var="MNIST_ROOT",
        default_roots=(COURSE_DATA_DIR / "mnist",),
        raw_md5={
            "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion-mnist": IdxDataset(
        name="fashion-mnist",
        files=_MNIST_FILES,
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        env_var="FASHION_MNIST_ROOT",
        # Debian's dataset-fashion-mnist package, then the course folder.
        default_roots=(Path("/usr/share/datasets/fashion-mnist"), COURSE_DATA_DIR / "fashion-mnist"),
        raw_md5={  # measured on the decompressed files of Debian's dataset-fashion-mnist package
            "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
        },
    ),
}


def _spec(dataset: str | IdxDataset) -> IdxDataset:
    if isinstance(dataset, IdxDataset):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}") from None


def dataset_root(dataset: str | IdxDataset = "mnist", root: str | os.PathLike | None = None) -> Path:
    """The folder a dataset is read from (and downloaded into): argument, env var, default."""
    spec = _spec(dataset)
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(spec.env_var):
        return Path(os.environ[spec.env_var]).expanduser()
    needed = {name for pair in spec.files.values() for name in pair}
    for candidate in spec.default_roots:
        if all((candidate / name).exists() for name in needed):
            return candidate
    if not spec.default_roots:
        raise DataError(f"no folder for {spec.name}: pass root= or set {spec.env_var}")
    return spec.default_roots[-1]


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_idx_bytes(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes: 2 zero bytes, a type code, ndim, ndim big-endian uint32 sizes, data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(
            f"{source}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; expected 0000 + type code "
            f"08/09/0b/0c/0d/0e + ndim). Check that this is an MNIST-format file, then delete it and load again."
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{source}: the header announces {ndim} dimensions but the file ends after {len(raw)} bytes.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        raise DataError(
            f"{source}: the header says shape {shape} ({expected} bytes of data) but the file holds {actual} bytes. "
            f"The file is truncated or not what its header says: delete it and load again."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_file(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed (by its magic bytes) or not, into a numpy array."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise DataError(
                f"{path}: the gzip stream is truncated or corrupted ({err}). Delete the file and load again to "
                f"download a fresh copy."
            ) from None
    return parse_idx_bytes(raw, source=str(path))


def _download(spec: IdxDataset, name: str, target: Path, mirrors: Sequence[str]) -> None:
    """Fetch one file from the first mirror that serves it with the right md5; atomic rename on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != spec.md5[name]:
                failures.append(f"{url}: md5 {digest.hexdigest()} != published {spec.md5[name]}")
                continue
            os.replace(tmp, target)  # atomic: a later run never sees a half-written file
            return
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"could not download {name} into {target.parent}:\n  "
        + "\n  ".join(failures)
        + f"\nIf you are offline, copy the {spec.name} files into {target.parent} "
        f"(or point {spec.env_var} at a folder that has them) and run again."
    )


def _content_matches(path: Path, raw_md5: str | None) -> bool:
    """True when the decompressed bytes of a (recompressed) copy have the known md5."""
    if raw_md5 is None:
        return False
    try:
        with gzip.open(path, "rb") as f:
            digest = hashlib.md5()
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (EOFError, OSError, zlib.error):
        return False
    return digest.hexdigest() == raw_md5


def ensure_file(
    spec: IdxDataset, name: str, root: Path, download: bool = True, mirrors: Sequence[str] | None = None
) -> Path:
    """Return the path of a verified file, downloading it first when it is missing."""
    path = root / name
    if not path.exists():
        if not download:
            raise DataError(
                f"{path}: file not found, and downloading is off. Copy the {spec.name} files there, "
                f"set {spec.env_var}, or call with download=True."
            )
        _download(spec, name, path, spec.mirrors if mirrors is None else mirrors)
    actual = md5_of(path)
    if actual != spec.md5[name] and not _content_matches(path, spec.raw_md5.get(name)):
        raise DataError(
            f"{path}: md5 {actual} does not match the published {spec.md5[name]}, so the file is corrupted or "
            f"incomplete and will not be used. Delete it and load again to re-download it."
        )
    return path


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    dataset: str | IdxDataset = "mnist",
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of MNIST (or Fashion-MNIST), verified.

    Args:
        split: "train" (60,000 images) or "test" (10,000).
        root: folder holding the four .gz files; default: see the module docstring.
        dataset: "mnist", "fashion-mnist", or an IdxDataset of your own.
        download: fetch missing files from the dataset's mirrors.
        mirrors: base URLs to use instead of the dataset's own.

    Returns:
        images: uint8 array (N, 28, 28), pixel values 0..255.
        labels: int64 array (N,), values 0..9.

    Raises:
        DataError: a file is missing (and cannot be downloaded), corrupted, or malformed.
    """
    spec = _spec(dataset)
    if split not in spec.files:
        raise ValueError(f"split must be one of {sorted(spec.files)}, not {split!r}")
    folder = dataset_root(spec, root)
    images_name, labels_name = spec.files[split]
    images_path = ensure_file(spec, images_name, folder, download, mirrors)
    labels_path = ensure_file(spec, labels_name, folder, download, mirrors)

    images, labels = read_idx_file(images_path), read_idx_file(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, rows, cols), got {images.dtype} {images.shape}.")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}.")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels: "
            f"the two files are not a pair. Delete both and load again."
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())} is outside 0..9.")
    return images, labels.astype(np.int64)

