"""Runs in the grading command (the parent), which builds the sandboxes' command lines: what a
student's code may see, write and spend (``DROP_PRIVILEGES`` runs inside the kernel's sandbox).

Threat model (the honest version).

Grading runs two kinds of code. nbgrader itself (trusted: the instructor's machinery, which needs the
gradebook with the hidden tests) and the student's notebook, executed cell by cell in an IPython kernel
(untrusted). We put a wall around each:

* ``grader_view`` (outer): nbgrader's autograde for ONE student runs in a per-submission scratch
  course (its own scratch gradebook, the submission, no source notebooks) with no network and nothing
  of the real course visible except the read-only tools it needs (.venv, the instructor and helpers
  packages). It never sees the real gradebook, ``source/`` or the real submissions. By default it runs
  as a child of a fork server (``mnist_grader.grading.zygote``) whose view holds this run's scratch courses, so
  the (trusted) nbgrader code of one submission could see another's scratch course; with
  ``--no-fork-server`` each nbgrader process gets a view of its own scratch course only, in its own
  pid namespace, at about 3 s more CPU per submission.
* ``kernel_view`` (inner, nested in the outer one): the student's kernel. It is built from a whitelist
  (system folders, the Python install, .venv, the course's helpers package, the MNIST folder), all
  read-only, plus a writable working folder holding only the student's OWN files (the submitted
  notebooks as they handed them in, never the autograded copy into which nbgrader restores the hidden
  tests; a size-limited tmpfs of its own) and a small tmpfs /tmp. It cannot see the scratch gradebook,
  ``source/``, the real course or any other student. It runs as an unprivileged uid of its own (drawn
  per submission and claimed machine-wide, ``mnist_grader.grading.uids``, so RLIMIT_NPROC counts only its own
  processes, even beside other grading runs: that limit is not enforced for root), with rlimits for
  CPU seconds, address space, processes, file size and open files, no network (it talks to nbgrader
  over unix sockets: the ZMQ ``ipc`` transport), in a pid namespace that dies with it (no process
  outlives the kernel).
  The parent also enforces a wall-clock limit per submission and kills the whole tree.

* the trusted run (``mnist_grader.trusted``): the grade of every test cell is the lower of the
  student's kernel (which runs the test cells WITHOUT their hidden part: the scratch gradebook never
  holds hidden tests) and a separate, fresh process that loads only the student's definitions
  (``def``/``class``/``import`` and plain-name assignments of the solution cells, by AST), with the
  checks and the switches for off-limits functions bound before any student code, and runs the
  whole test cells there. That process has the kernel's kind of wall, sees no student file, and
  reports on a pipe with a nonce. It runs while the kernel runs, as the same per-submission uid,
  but in its own mount, pid, network and IPC namespaces: the kernel cannot see, signal or reach it
  (they share only that uid's RLIMIT_NPROC, so a fork bomb can fail its own trusted run, which
  scores 0, never raise a grade), and the uid is released only when both have ended. Answers that
  use anything outside the lab's whitelist (``mnist_grader.trusted.policy``) hold the submission's
  scores at 0 for review, with the reason.

What is guaranteed now: nothing the student's kernel does (its globals, builtins, IPython's history,
outputs, displayhook, input transformers, rebound comparison functions) changes a score upward, and
the hidden tests are never in anything the student's code can print. What is NOT: the trusted run
still calls the student's definitions in its own process, so its integrity rests on the whitelist
being complete for this lab's modules (numpy and torch are large; an attribute of theirs that
reaches the interpreter and is missing from ``DENIED_MODULE_ATTRS`` would be a hole), and on
CPython not letting whitelisted code reach frames or ``__globals__`` by a path the checker does not
see. A hold is a request for a human look, not a verdict.

Files, output, disk, other runs: what is guaranteed now.

* Submission files are data: the privileged parent copies a submission with ``mnist_grader.grading.intake``
  (no path resolved through a link, ``O_NOFOLLOW`` opens) before anything else reads it; symbolic
  links, hard links, devices, FIFOs and sockets are left out and flagged with their path, and a
  submission is capped in bytes, files and depth. Everything later (nbgrader, the scan, the kernel)
  reads only that copy.
* Output is capped while nbgrader runs the notebook (``mnist_grader.grading.output_cap``: per cell and per
  notebook, trimmed with a visible note, the outputs that decide a grade always kept), so printing
  cannot blow up nbgrader's memory, the autograded notebook or the feedback page. One single huge
  message is still read whole (bounded by the kernel's RLIMIT_AS).
* Disk: every folder the kernel can write is a size-limited tmpfs (its working folder, ``/tmp``, and
  its socket folder, which is mounted in the grader's sandbox), so a submission cannot grow the
  host's disk; RLIMIT_FSIZE caps each file. These tmpfs live in memory (``work_mb`` + ``tmp_mb`` +
  1 MiB per running kernel), and tmpfs does not cap the NUMBER of files (each costs kernel memory).
* Runs are isolated: every running submission has its own uid, claimed machine-wide
  (``mnist_grader.grading.uids``), so concurrent grading runs never share RLIMIT_NPROC or see each other's
  kernels; student ids reach nbgrader only through a config literal, never a command line.
* The gradebook: read-only is refused before grading, a lock is waited for (bounded, reported);
  autograded notebooks are published only after their gradebook commit, and the next run repairs
  what a SIGKILL left and removes dead runs' scratch folders (``mnist_grader.grading.recovery``).

Without bubblewrap the limits (rlimits, uid drop, wall clock) still apply, but the file-system and
network walls do not, and the kernel's working folder is on the host's disk (RLIMIT_FSIZE caps each
file, nothing caps their number): the caller must say so loudly (``mnist_grader.grading.pool`` does).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mnist_grader.jupyter_env import private_dirs

#: Where the kernel's sandbox shows the prepared working files (read-only) for the shim to copy
#: into the kernel's own size-limited working folder before it drops root.
STAGING_MOUNT = "/.submission"


@dataclass
class Limits:
    """Resource limits for one student's kernel (rlimits) and one submission (wall clock).

    Args:
        cpu_seconds: RLIMIT_CPU of the kernel (all its cells together).
        memory_mb: RLIMIT_AS of the kernel (address space; torch alone maps about 1.5 GiB).
        processes: RLIMIT_NPROC for the kernel's uid (fork bombs stop here).
        file_size_mb: RLIMIT_FSIZE (largest file the kernel may write).
        open_files: RLIMIT_NOFILE.
        tmp_mb: size of the kernel's private tmpfs /tmp.
        work_mb: size of the kernel's private tmpfs working folder (its files and what it writes).
        wall_seconds: wall-clock limit for grading one submission (all its notebooks).
    """

    cpu_seconds: int = 600
    memory_mb: int = 4096
    processes: int = 64
    file_size_mb: int = 256
    open_files: int = 1024
    tmp_mb: int = 256
    work_mb: int = 256
    wall_seconds: int = 600

    def rlimits(self) -> dict[str, int]:
        """The rlimits to set in the kernel, by ``resource`` constant name."""
        return {
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_AS": self.memory_mb * 2**20,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_FSIZE": self.file_size_mb * 2**20,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_CORE": 0,
        }


def find_bwrap() -> str | None:
    """Path of a working ``bwrap`` (bubblewrap), or None when it is missing or cannot run here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    import subprocess

    probe = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--unshare-net", "--unshare-pid", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return path if ok else None


def python_install_paths() -> list[str]:
    """Folders the sandboxed Python needs: its install (base prefix) and the virtual environment."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    return sorted(paths)


_SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc"]


def grader_view(bwrap: str, scratch: Path, course_root: Path, readonly: list[str],
                own_pids: bool = True) -> list[str]:
    """bwrap prefix for the ``nbgrader autograde`` process of one submission.

    Args:
        bwrap: path of the bwrap binary.
        scratch: the submission's scratch folder (the only writable place); for the fork server,
            the folder holding every scratch course of the run.
        course_root: the real course folder, hidden except for ``readonly`` paths inside it.
        readonly: paths (inside or outside the course) to show read-only at the same place.
        own_pids: a pid namespace of its own (the fork server shares the host's, so the grader can
            watch and kill the children it forks by pid).

    Returns:
        argv prefix; append the command to run.
    """
    # scratch folders of other submissions live next to ours: hide them all (and the course)
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", str(course_root), "--tmpfs", str(scratch.parent)]
    # then show what the grader needs, after the tmpfs mounts: the scratch parent may be the host's
    # /tmp, with the course's .venv below it (a checkout under /tmp, as in CI)
    for path in readonly:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    argv += ["--bind", str(scratch), str(scratch),
             "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    return argv + (["--unshare-pid"] if own_pids else [])


def kernel_view(bwrap: str, settings: "KernelSettings", cwd: str) -> list[str]:
    """bwrap argv (without the command) for a student's kernel, built from a whitelist.

    Args:
        bwrap: path of the bwrap binary.
        settings: what to show and where the kernel's own folders are.
        cwd: the folder nbgrader runs the notebook in; the kernel sees its private work folder there.
    """
    # the private /tmp first: the working folders shown below may live under the host's /tmp
    argv = [bwrap, "--size", str(settings.limits.tmp_mb * 2**20), "--perms", "1777",
            "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]
    shown = [p for p in _SYSTEM_DIRS + settings.readonly + [cwd, settings.ipc_dir]
             if os.path.exists(p)]
    # bwrap makes missing parent folders 0700, which an unprivileged kernel cannot walk through
    parents = sorted({str(a) for p in shown for a in Path(p).parents if str(a) != "/"},
                     key=lambda a: a.count("/"))
    for parent in parents:
        argv += ["--perms", "0755", "--dir", parent]
    for path in _SYSTEM_DIRS + settings.readonly:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    # its working folder: a tmpfs of its own (what it writes never reaches the host's disk), filled
    # by the shim from a read-only view of the prepared files
    argv += ["--size", str(settings.limits.work_mb * 2**20), "--perms", "0755",
             "--tmpfs", cwd, "--ro-bind", settings.workdir, STAGING_MOUNT,
             "--bind", settings.ipc_dir, settings.ipc_dir,
             "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--chdir", cwd, "--clearenv"]
    for key, value in kernel_environment(settings).items():
        argv += ["--setenv", key, value]
    return argv


def kernel_environment(settings: "KernelSettings") -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's leaks in (no paths to scratch or course)."""
    env = {
        "PATH": os.path.dirname(settings.python) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
        **private_dirs(Path("/tmp"), create=False),  # the kernel's own /tmp
    }
    if settings.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(settings.threads)
    for var in settings.pass_env:
        if var in os.environ:
            env[var] = os.environ[var]
    return env


@dataclass
class KernelSettings:
    """What the kernel launcher needs; written as JSON next to the scratch course.

    Args:
        python: interpreter that runs ipykernel.
        uid: unprivileged uid for the kernel (used when the grader runs as root), unique on the
            machine while it runs (``mnist_grader.grading.uids``).
        limits: the kernel's rlimits (``wall_seconds`` is the grader's).
        readonly: extra read-only paths (Python install, .venv, helpers, data).
        workdir: the prepared working files: copied by the shim into the kernel's own tmpfs at
            nbgrader's cwd (with bubblewrap), or the kernel's working folder itself (without).
        submitted_dir: the student's submission, copied into ``workdir`` (their own files only).
        ipc_dir: folder for the kernel's unix sockets and its copy of the connection file.
        bwrap: bwrap path, or None to run without a file-system/network wall.
        threads: BLAS/OpenMP threads for the kernel (0: library default).
        pass_env: environment variables passed through (e.g. MNIST_ROOT, NBGRADER_EXECUTION).
    """

    python: str
    uid: int
    limits: Limits
    readonly: list[str]
    workdir: str
    submitted_dir: str
    ipc_dir: str
    bwrap: str | None
    threads: int = 0
    pass_env: list[str] = field(default_factory=lambda: ["MNIST_ROOT", "FASHION_MNIST_ROOT",
                                                          "NBGRADER_EXECUTION"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str) -> "KernelSettings":
        fields = json.loads(Path(path).read_text())
        return cls(**dict(fields, limits=Limits(**fields["limits"])))


#: Runs inside the kernel's sandbox as root, then becomes the kernel: copy the prepared files into
#: the working folder (a tmpfs) and give them to the uid, rlimits, drop to the uid, exec.
#: Kept tiny and dependency-free on purpose (the instructor package is not visible in there).
DROP_PRIVILEGES = """
import json, os, resource, shutil, sys
s = json.loads(sys.argv[1])
if s.get("staging"):
    shutil.copytree(s["staging"], ".", symlinks=True, dirs_exist_ok=True)
    if os.getuid() == 0 and s["uid"] is not None:
        for parent, dirs, files in os.walk("."):
            for name in [parent] + [os.path.join(parent, n) for n in dirs + files]:
                os.chown(name, s["uid"], s["uid"], follow_symlinks=False)
for name, value in s["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
if os.getuid() == 0 and s["uid"] is not None:
    os.setgroups([])
    os.setgid(s["uid"])
    os.setuid(s["uid"])
os.execv(s["argv"][0], s["argv"])
"""
