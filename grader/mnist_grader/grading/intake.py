"""Runs in the grading command (the parent, privileged): a submission copied in as plain data.

A student's submission goes into a scratch course as data: nothing it points to is followed.

A submission folder is hostile input that the privileged grader handles before any sandbox exists.
Collected by unzip, tar or git, it can hold symbolic links (to the gradebook, ``/etc/shadow``, another
student's folder, ``/dev/zero``, ``..``), hard links to files elsewhere on the same disk, devices,
FIFOs (an ``open`` that never returns) and sockets. ``copy_submission`` walks it with directory file
descriptors and ``O_NOFOLLOW`` opens, so no path is ever resolved through a link, and copies only
regular files (one name each) and folders. Everything else is left out and reported, with its path
relative to the submission, so the grader can flag the submission for a human while the rest is
graded. Caps on total bytes, file count and depth keep one submission from filling the disk.

``check_submission`` applies the same rules without copying: it says what ``copy_submission`` would
leave out, for a folder another program (nbgrader's autograde) is about to copy itself.
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: folders that are Jupyter's own bookkeeping, left out silently (not the student's work)
IGNORED_NAMES = frozenset({".ipynb_checkpoints"})
_CHUNK = 1 << 20


class IntakeError(Exception):
    """The submission as a whole cannot be taken in (its folder is a link, or not a folder)."""


@dataclass
class IntakeLimits:
    """Caps on one submission.

    Args:
        max_bytes: total size of the files copied.
        max_files: number of files and folders copied.
        max_depth: folders nested below the submission folder.
    """

    max_bytes: int = 50 * 2**20
    max_files: int = 1000
    max_depth: int = 16


@dataclass
class IntakeReport:
    """What ``copy_submission`` did.

    Attributes:
        files: regular files copied.
        bytes: their total size.
        refused: one line per entry left out, ``"PATH: why"`` (PATH relative to the submission).
    """

    files: int = 0
    bytes: int = 0
    refused: list[str] = field(default_factory=list)


def open_folder_nofollow(base: Path, parts: list[str]) -> int:
    """Open ``base/parts[0]/parts[1]/...`` as a folder without following a link in ``parts``.

    ``base`` is the instructor's own folder (resolved normally); every component below it must be
    a real folder.

    Returns:
        A file descriptor of the folder (the caller closes it).

    Raises:
        IntakeError: a component is a link, missing, or not a folder.
    """
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    shown = base
    try:
        for part in parts:
            shown = shown / part
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise IntakeError(f"{shown} does not exist") from None
            if not stat.S_ISDIR(info.st_mode):
                raise IntakeError(f"{shown} is {describe(info.st_mode)}, not a folder: refused "
                                  f"(submissions must be plain folders and files)")
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def copy_submission(base: Path, parts: list[str], dest: Path,
                    limits: IntakeLimits | None = None) -> IntakeReport:
    """Copy the submission folder ``base/parts...`` to ``dest`` (which must not exist).

    Args:
        base: a trusted folder (the course's submitted folder).
        parts: path components below ``base`` (student id, assignment id), none of them a link.
        dest: where the copy goes; its parent must exist.
        limits: caps (defaults: ``IntakeLimits()``).

    Returns:
        What was copied and what was refused (refused entries are not copied).

    Raises:
        IntakeError: the submission folder itself is a link or not a folder.
    """
    return _walk_submission(base, parts, dest, limits)


def replace_with_copy(base: Path, parts: list[str], dest: Path,
                      limits: IntakeLimits | None = None) -> IntakeReport:
    """``copy_submission`` into a hidden sibling of ``dest``, then move it into ``dest``'s place.

    An older copy in ``dest`` is replaced only once the new one is whole, and a failed copy leaves
    nothing behind.

    Args:
        base, parts, limits: as for ``copy_submission``.
        dest: where the copy goes (replaced if it exists); its parent must exist.

    Returns:
        What was copied and what was refused.

    Raises:
        IntakeError: the submission folder itself is a link or not a folder.
    """
    incoming = dest.parent / f".{dest.name}.incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    try:
        report = copy_submission(base, parts, incoming, limits)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(incoming, dest)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return report


def check_submission(base: Path, parts: list[str], limits: IntakeLimits | None = None) -> IntakeReport:
    """What ``copy_submission`` would leave out of the folder ``base/parts...``, copying nothing.

    The rules are the copy's, with one difference: Jupyter's bookkeeping folders (``IGNORED_NAMES``)
    are looked into too, because the program that copies next may be configured to take them.

    Args:
        base: a trusted folder (the course's submitted folder).
        parts: path components below ``base`` (student id, assignment id), none of them a link.
        limits: caps (defaults: ``IntakeLimits()``).

    Returns:
        The files and bytes a copy would take, and one line per entry it would leave out.

    Raises:
        IntakeError: the submission folder itself is a link or not a folder.
    """
    return _walk_submission(base, parts, None, limits)


def _walk_submission(base: Path, parts: list[str], dest: Path | None,
                     limits: IntakeLimits | None) -> IntakeReport:
    """Walk the submission folder, copying into ``dest`` (created here) or, with None, only checking."""
    limits = limits or IntakeLimits()
    report = IntakeReport()
    root_fd = open_folder_nofollow(base, parts)
    try:
        root_dev = os.fstat(root_fd).st_dev
        if dest is not None:
            os.mkdir(dest, 0o755)
        _walk(root_fd, dest, "", 0, root_dev, limits, report)
    finally:
        os.close(root_fd)
    return report


def describe(mode: int) -> str:
    """What kind of file ``mode`` says, in words."""
    kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISREG, "a regular file")]
    return next((text for test, text in kinds if test(mode)), f"an unknown kind of file ({mode:o})")


def _entries(fd: int) -> list[str]:
    """Names in a folder: notebooks first (so a cap leaves the graded work in), then by name."""
    with os.scandir(fd) as it:
        names = [entry.name for entry in it]
    return sorted(names, key=lambda n: (not n.endswith(".ipynb"), n))


def _walk(fd: int, dest: Path | None, rel: str, depth: int, root_dev: int, limits: IntakeLimits,
          report: IntakeReport) -> None:
    """Copy the folder ``fd`` into ``dest`` by the rules, or, with ``dest`` None, only count and
    report what a copy would take and leave out."""
    for name in _entries(fd):
        path = f"{rel}{name}"
        if name in IGNORED_NAMES and dest is not None:
            continue
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            report.refused.append(f"{path}: cannot be read ({exc.strerror})")
            continue
        refusal = _refusal(fd, name, info, depth, root_dev, limits, report)
        if refusal:
            report.refused.append(f"{path}: {refusal}")
            continue
        if stat.S_ISDIR(info.st_mode):
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                report.refused.append(f"{path}: cannot be opened ({exc.strerror})")
                continue
            try:
                if not _same_file(os.fstat(child), info):
                    report.refused.append(f"{path}: changed while it was read")
                    continue
                report.files += 1
                if dest is not None:
                    os.mkdir(dest / name, 0o755)
                _walk(child, None if dest is None else dest / name, f"{path}/", depth + 1, root_dev,
                      limits, report)
            finally:
                os.close(child)
        elif dest is None:
            report.files += 1
            report.bytes += info.st_size
        else:
            why = _copy_file(fd, name, info, dest / name, limits, report)
            if why:
                report.refused.append(f"{path}: {why}")


def _refusal(fd: int, name: str, info: os.stat_result, depth: int, root_dev: int,
             limits: IntakeLimits, report: IntakeReport) -> str:
    """Why an entry is left out, or "" to copy it."""
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(name, dir_fd=fd)
        except OSError:
            target = "?"
        return f"a symbolic link (to {target!r}): refused, links are never followed"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"{describe(mode)}: refused, only regular files and folders are graded"
    if info.st_dev != root_dev:
        return "on another file system (a mount point): refused"
    if stat.S_ISREG(mode) and info.st_nlink > 1:
        return (f"a hard link (one of {info.st_nlink} names of the same file): refused, "
                f"only files with one name are graded")
    if stat.S_ISDIR(mode) and depth + 1 > limits.max_depth:
        return f"nested deeper than {limits.max_depth} folders: refused (the grader's cap)"
    if report.files + 1 > limits.max_files:
        return f"over the cap of {limits.max_files} files and folders per submission: left out"
    if stat.S_ISREG(mode) and report.bytes + info.st_size > limits.max_bytes:
        return (f"{info.st_size} bytes, over the cap of {limits.max_bytes // 2**20} MB per "
                f"submission: left out")
    return ""


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, stat.S_IFMT(a.st_mode)) == (b.st_dev, b.st_ino, stat.S_IFMT(b.st_mode))


def _copy_file(fd: int, name: str, info: os.stat_result, dest: Path, limits: IntakeLimits,
               report: IntakeReport) -> str:
    """Copy one regular file (opened without following links, never blocking on a FIFO swapped
    in meanwhile); returns why it was refused, or ""."""
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=fd)
    except OSError as exc:
        return f"cannot be opened ({exc.strerror})"
    try:
        opened = os.fstat(src)
        if not _same_file(opened, info) or not stat.S_ISREG(opened.st_mode) or opened.st_nlink > 1:
            return "changed while it was read: refused"
        budget = limits.max_bytes - report.bytes
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        written = 0
        try:
            while True:
                chunk = os.read(src, min(_CHUNK, budget - written + 1))
                if not chunk:
                    break
                written += len(chunk)
                if written > budget:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
        finally:
            os.close(out)
        if written > budget:
            os.unlink(dest)
            return (f"grew past the cap of {limits.max_bytes // 2**20} MB per submission while it "
                    f"was read: left out")
        report.files += 1
        report.bytes += written
        return ""
    finally:
        os.close(src)
