"""Shared test fixtures.

The real MNIST files are read through the loader's own override, $MNIST_ROOT. When it is not
set and the course sits beside a ../shared/data/mnist folder (as in CI), that folder is used.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

if not os.environ.get("MNIST_ROOT") and SHARED_MNIST.is_dir():
    os.environ["MNIST_ROOT"] = str(SHARED_MNIST)


@pytest.fixture(scope="session")
def real_mnist_root() -> Path:
    """The folder with the four real MNIST files; tests needing it skip locally without it, fail in CI."""
    root = os.environ.get("MNIST_ROOT")
    if not root or not (Path(root) / "t10k-images-idx3-ubyte.gz").exists():
        message = "the real MNIST files are needed: set MNIST_ROOT to a folder holding the four .gz files"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(root)


@pytest.fixture(scope="session")
def checked_tiny(tmp_path_factory):
    """The tiny fixture course after ``python -m mnist_grader check`` (reduced set), and that run
    (shared by the QA, feedback and export tests: the check is the slow part)."""
    from tests.grader_course import checked_tiny_course

    return checked_tiny_course(tmp_path_factory.mktemp("checked"))
