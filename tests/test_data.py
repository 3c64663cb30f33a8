"""helpers.data: IDX parsing, verification, download, and the real MNIST files.

Edge cases run on small IDX files generated here; the real files come from $MNIST_ROOT
(CI sets it); downloads are served from 127.0.0.1 only.
"""
import gzip
import hashlib
import http.server
import os
import struct
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from helpers import data
from helpers.data import DataError, IdxDataset, dataset_root, load_mnist, read_idx_file

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX: magic (0, 0, type code, ndim), big-endian sizes, big-endian data."""
    header = bytes([0, 0, TYPE_CODES[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


def tiny_dataset(n_train=12, n_test=5, seed=0):
    """A small MNIST-like file set: name -> gzip bytes."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(rng.integers(0, 10, n, dtype=np.uint8)))
    return files


def spec_for(files, mirrors=()):
    return IdxDataset(
        name="tiny",
        files=data.DATASETS["mnist"].files,
        md5={name: md5(raw) for name, raw in files.items()},
        mirrors=tuple(mirrors),
        env_var="TINY_MNIST_ROOT_FOR_TESTS",
    )


def write(folder: Path, files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return folder


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    raw = idx_bytes(array)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    parsed = read_idx_file(path)
    assert parsed.dtype == np.dtype(dtype) and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, array)


def test_one_dimensional_labels_round_trip(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx_file(tmp_path / "l.gz"), labels)


def test_wrong_magic_names_the_file(tmp_path):
    path = tmp_path / "not-idx.gz"
    path.write_bytes(gzip.compress(b"<html>404 Not Found</html>"))
    with pytest.raises(DataError, match=r"not-idx\.gz: not an IDX file"):
        read_idx_file(path)


def test_unknown_type_code_is_rejected(tmp_path):
    path = tmp_path / "bad-type"
    path.write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx_file(path)


@pytest.mark.parametrize("extra", [-1, +1])
def test_header_dimensions_must_match_payload(tmp_path, extra):
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    raw = raw[:extra] if extra < 0 else raw + b"\x00"
    path = tmp_path / "images.idx"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=r"images\.idx: the header says shape \(3, 28, 28\)"):
        read_idx_file(path)


def test_header_shorter_than_announced(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"\x00\x00")
    with pytest.raises(DataError, match="announces 3 dimensions"):
        read_idx_file(path)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    compressed = gzip.compress(idx_bytes(np.ones((50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: the gzip stream is truncated"):
        read_idx_file(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx_file(tmp_path / "nope.gz")


# --- load_mnist on generated file sets -------------------------------------------------------


def test_load_returns_images_and_int64_labels(tmp_path):
    files = tiny_dataset()
    folder = write(tmp_path / "tiny", files)
    images, labels = load_mnist("train", root=folder, dataset=spec_for(files), download=False)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (12,) and labels.dtype == np.int64
    expected = read_idx_file(folder / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(labels, expected)
    test_images, _ = load_mnist("test", root=folder, dataset=spec_for(files), download=False)
    assert test_images.shape == (5, 28, 28)


def test_checksum_mismatch_refuses_the_file_and_keeps_it(tmp_path):
    files = tiny_dataset()
    spec = spec_for(files)
    corrupted = dict(files)
    corrupted["train-images-idx3-ubyte.gz"] = tiny_dataset(seed=1)["train-images-idx3-ubyte.gz"]
    folder = write(tmp_path / "tiny", corrupted)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: md5 \w+ does not match .* Delete it"):
        load_mnist("train", root=folder, dataset=spec, download=False)
    # Bad input loses nothing: the file is still there for the user to inspect.
    assert (folder / "train-images-idx3-ubyte.gz").read_bytes() == corrupted["train-images-idx3-ubyte.gz"]


def test_image_and_label_counts_must_agree(tmp_path):
    files = tiny_dataset()
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros(11, dtype=np.uint8)))
    folder = write(tmp_path / "tiny", files)
    with pytest.raises(DataError, match="holds 12 images but .* holds 11 labels"):
        load_mnist("train", root=folder, dataset=spec_for(files), download=False)


def test_labels_outside_0_to_9_are_rejected(tmp_path):
    files = tiny_dataset()
    files["t10k-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.full(5, 10, dtype=np.uint8)))
    folder = write(tmp_path / "tiny", files)
    with pytest.raises(DataError, match="label 10 is outside 0..9"):
        load_mnist("test", root=folder, dataset=spec_for(files), download=False)


def test_images_of_the_wrong_type_are_rejected(tmp_path):
    files = tiny_dataset()
    files["t10k-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros((5, 28, 28), dtype=np.float32)))
    folder = write(tmp_path / "tiny", files)
    with pytest.raises(DataError, match="expected uint8 images"):
        load_mnist("test", root=folder, dataset=spec_for(files), download=False)


def test_missing_file_without_download_says_what_to_do(tmp_path):
    files = tiny_dataset()
    with pytest.raises(DataError, match=r"file not found, and downloading is off\. Copy the tiny files there, set TINY"):
        load_mnist("train", root=tmp_path, dataset=spec_for(files), download=False)


def test_bad_split_and_unknown_dataset():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_mnist("train", dataset="cifar")


def test_root_argument_beats_environment_beats_default(tmp_path, monkeypatch):
    spec = data.DATASETS["mnist"]
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path / "from-env"))
    assert dataset_root("mnist", tmp_path / "arg") == tmp_path / "arg"
    assert dataset_root("mnist") == tmp_path / "from-env"
    monkeypatch.delenv("MNIST_ROOT")
    assert dataset_root("mnist") == spec.default_roots[-1]
    assert spec.default_roots[-1] == Path(data.__file__).resolve().parent.parent / "data" / "mnist"


# --- downloads, served from 127.0.0.1 --------------------------------------------------------


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves /good/<name> correctly, /corrupt/<name> with flipped bytes, /cut/<name> cut short."""

    def __init__(self, *args, files, hits, **kwargs):
        self.files, self.hits = files, hits
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.hits.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        if name not in self.files or kind not in {"good", "corrupt", "cut"}:
            self.send_error(404)
            return
        body = self.files[name]
        if kind == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "cut" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror_server():
    files, hits = tiny_dataset(), []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(MirrorHandler, files=files, hits=hits))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, files, hits
    server.shutdown()
    server.server_close()


def dead_mirror_url():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/mnist"


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_skips_dead_and_corrupt_mirrors(tmp_path, mirror_server):
    base, files, hits = mirror_server
    mirrors = [dead_mirror_url(), f"{base}/corrupt", f"{base}/cut", f"{base}/good"]
    folder = tmp_path / "downloaded"
    images, labels = load_mnist("train", root=folder, dataset=spec_for(files, mirrors))
    assert images.shape == (12, 28, 28) and labels.shape == (12,)
    # Only the two train files were fetched, from the good mirror, verified, and nothing else was left.
    assert leftovers(folder) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert (folder / "train-images-idx3-ubyte.gz").read_bytes() == files["train-images-idx3-ubyte.gz"]
    assert "/corrupt/train-images-idx3-ubyte.gz" in hits and "/cut/train-images-idx3-ubyte.gz" in hits
    # The second load reads the local copies and downloads nothing.
    hits.clear()
    load_mnist("train", root=folder, dataset=spec_for(files, mirrors))
    assert hits == []


def test_only_bad_mirrors_leave_no_file_behind(tmp_path, mirror_server):
    base, files, _ = mirror_server
    mirrors = [f"{base}/corrupt", f"{base}/cut", dead_mirror_url(), f"{base}/missing"]
    folder = tmp_path / "downloaded"
    with pytest.raises(DataError) as err:
        load_mnist("test", root=folder, dataset=spec_for(files, mirrors))
    message = str(err.value)
    assert "could not download t10k-images-idx3-ubyte.gz" in message
    assert "md5" in message and "404" in message and "If you are offline, copy the tiny files into" in message
    for mirror in mirrors:
        assert mirror in message
    assert leftovers(folder) == []  # no half-written file that a later run could trust


def test_offline_with_no_local_copy(tmp_path):
    files = tiny_dataset()
    with pytest.raises(DataError, match="If you are offline"):
        load_mnist("train", root=tmp_path / "empty", dataset=spec_for(files, [dead_mirror_url()]))
    assert leftovers(tmp_path / "empty") == []


# --- the real files ------------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("split,counts", [("train", TRAIN_COUNTS), ("test", TEST_COUNTS)])
def test_real_mnist(real_mnist_root, split, counts):
    images, labels = load_mnist(split, root=real_mnist_root, download=False)
    assert images.shape == (sum(counts), 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == counts
    assert images.min() == 0 and images.max() == 255


def test_real_mnist_through_the_environment_variable(real_mnist_root, monkeypatch):
    monkeypatch.setenv("MNIST_ROOT", str(real_mnist_root))
    images, labels = load_mnist("test", download=False)
    assert len(images) == len(labels) == 10000


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.exists() and not os.environ.get("CI"), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_through_the_same_code_path():
    images, labels = load_mnist("test", dataset="fashion-mnist", download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10


def test_a_recompressed_copy_is_verified_by_its_content(tmp_path):
    files = tiny_dataset()
    spec = spec_for(files)
    raw = {name: gzip.decompress(blob) for name, blob in files.items()}
    spec = IdxDataset(**{**spec.__dict__, "raw_md5": {name: md5(r) for name, r in raw.items()}})
    recompressed = {name: gzip.compress(r, compresslevel=1, mtime=12345) for name, r in raw.items()}
    assert recompressed != files
    folder = write(tmp_path / "recompressed", recompressed)
    images, _ = load_mnist("train", root=folder, dataset=spec, download=False)
    np.testing.assert_array_equal(images, read_idx_file(tmp_path / "recompressed" / "train-images-idx3-ubyte.gz"))
    # Different content under the same name is still refused.
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((12, 28, 28), np.uint8))))
    with pytest.raises(DataError, match="does not match"):
        load_mnist("train", root=folder, dataset=spec, download=False)
