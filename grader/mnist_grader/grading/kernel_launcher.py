"""Runs in the kernel's launcher process (started by nbgrader, before the sandbox): the kernelspec
entry point that starts a student's kernel inside its sandbox.

nbgrader (through nbclient and jupyter_client) starts kernels from a kernelspec. The scratch course of
each submission gets a kernelspec whose argv is::

    python -m mnist_grader.grading.kernel_launcher SETTINGS.json {connection_file}

This process runs where nbgrader runs (trusted), prepares the kernel's working files (the student's
own files only), hands the kernel a copy of the connection file it may read, and then replaces
itself with bubblewrap (``mnist_grader.grading.sandbox.kernel_view``) running a tiny privilege-dropping shim
that copies the working files into the kernel's own size-limited tmpfs, sets the rlimits, becomes an
unprivileged uid and execs ipykernel.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
from pathlib import Path

import psutil

from mnist_grader.grading.sandbox import DROP_PRIVILEGES, STAGING_MOUNT, KernelSettings, kernel_environment, \
    kernel_view


def prepare_workdir(settings: KernelSettings, cwd: str) -> None:
    """Fill the kernel's working folder with the student's files.

    The notebooks are the ones the student submitted (no restored hidden tests); other files are
    those nbgrader put next to the notebook being graded (the instructor's versions where they exist).
    """
    workdir = Path(settings.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(settings.submitted_dir, workdir, symlinks=False,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for entry in Path(cwd).iterdir():
        if entry.suffix == ".ipynb" or entry.name.startswith("."):
            continue
        target = workdir / entry.name
        if entry.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(entry, target, symlinks=False)
        elif entry.is_file():
            shutil.copy2(entry, target)
    if not settings.bwrap:  # the kernel works in this folder itself; with bubblewrap, in a copy
        _chown_tree(workdir, settings.uid)


#: size of the tmpfs holding a kernel's unix sockets and connection file (they need a few KiB)
IPC_TMPFS_BYTES = 1 << 20


def mount_private_tmpfs(path: Path, size_bytes: int) -> bool:
    """Mount a size-limited tmpfs on ``path`` in this mount namespace (the grader's sandbox, where
    nbgrader, which connects to the kernel's sockets there, sees it too; the host does not).

    Returns:
        Whether it was mounted; without the right to mount (an unprivileged grader) the folder
        stays on disk, where RLIMIT_FSIZE still caps each file the kernel writes.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    options = f"size={size_bytes},mode=0755".encode()
    return libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, options) == 0


def _chown_tree(root: Path, uid: int) -> None:
    if os.getuid() != 0:
        return
    os.chown(root, uid, uid)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


def readable_by_all(path: str) -> bool:
    """Whether any user may run ``path``: every folder above it world-searchable, it world-readable."""
    real = Path(os.path.realpath(path))
    folders_ok = all(os.stat(folder).st_mode & 0o001 for folder in real.parents)
    return folders_ok and bool(os.stat(real).st_mode & 0o004)


def nproc_limit(settings: KernelSettings) -> int:
    """RLIMIT_NPROC for the kernel.

    As root the kernel becomes its own uid, so the limit is the kernel's budget. As an ordinary user
    the count includes the user's other processes, so the budget goes on top of what is running now.
    """
    budget = settings.limits.processes
    if os.getuid() == 0:
        return budget
    running = sum(1 for p in psutil.process_iter(["uids"])
                  if p.info["uids"] is not None and p.info["uids"].real == os.getuid())
    return running + budget


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        sys.exit("usage: python -m mnist_grader.grading.kernel_launcher SETTINGS.json CONNECTION_FILE [ARGS...]")
    settings = KernelSettings.load(argv[0])
    connection_file, extra = argv[1], argv[2:]
    cwd = os.getcwd()
    prepare_workdir(settings, cwd)

    # the kernel may read only its own copy of the connection file (jupyter writes it 0600 as us)
    ipc_dir = Path(settings.ipc_dir)
    if settings.bwrap:  # the one folder the kernel shares with nbgrader: keep it off the disk too
        mount_private_tmpfs(ipc_dir, IPC_TMPFS_BYTES)
    kernel_connection = ipc_dir / "kernel-connection.json"
    kernel_connection.write_text(Path(connection_file).read_text())
    os.chmod(kernel_connection, 0o600)
    _chown_tree(ipc_dir, settings.uid)

    rlimits = _rlimits(settings)
    # without bubblewrap the kernel sees the host's folders: an unprivileged uid can only run a
    # Python that everybody may read (one under /root cannot); then it keeps ours, and the grader's
    # process watchdog stands in for RLIMIT_NPROC, which root ignores
    drop_uid = bool(settings.bwrap) or readable_by_all(settings.python)
    shim = {
        "rlimits": rlimits,
        "uid": settings.uid if drop_uid else None,
        "staging": STAGING_MOUNT if settings.bwrap else None,
        "argv": [settings.python, "-m", "ipykernel_launcher", "-f", str(kernel_connection), *extra],
    }
    command = [settings.python, "-c", DROP_PRIVILEGES, json.dumps(shim)]
    if settings.bwrap:
        os.execv(settings.bwrap, kernel_view(settings.bwrap, settings, cwd) + command)
    else:
        # no file-system/network wall (the grader has already said so loudly); limits still apply,
        # and the kernel starts in its private folder rather than next to the autograded notebook
        os.chdir(settings.workdir)
        unshare = shutil.which("unshare")
        if os.getuid() == 0 and unshare:
            # a pid namespace all the same (util-linux): everything the kernel starts dies with it
            command = [unshare, "--pid", "--fork", "--kill-child", "--"] + command
        os.execve(command[0], command, kernel_environment(settings))


def _rlimits(settings: KernelSettings) -> dict[str, int]:
    limits = settings.limits.rlimits()
    limits["RLIMIT_NPROC"] = nproc_limit(settings)
    return limits


if __name__ == "__main__":
    main()
