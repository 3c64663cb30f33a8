"""Runs in the grading command (the parent): grades every submission of an assignment with N workers.

Each worker thread takes one submission: builds its scratch course (``mnist_grader.grading.scratch``),
runs the real ``nbgrader autograde ASSIGNMENT`` there (as a child of a fork server that imported
nbgrader once, ``mnist_grader.grading.zygote``, or with ``fork_server=False`` as a fresh process),
inside ``mnist_grader.grading.sandbox.grader_view``, under the wall clock and process watchdog of
``mnist_grader.grading.supervise``; nbgrader starts the student's kernel through a kernelspec that
puts it in ``mnist_grader.grading.sandbox.kernel_view`` (see that module for the threat model).
Meanwhile the trusted run (``mnist_grader.trusted``) runs the whole test cells against the
student's definitions (it needs only the submitted notebooks, so it runs beside nbgrader). The main
thread, the only writer of the real gradebook, merges each finished submission in one transaction
(``mnist_grader.grading.merge``).
"""
from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path

from mnist_grader.course import Course, CourseError
from mnist_grader.jupyter_env import jupyter_env
from mnist_grader.grading.gradebook_lock import check_writable, wait_until_unlocked
from mnist_grader.grading.intake import IntakeLimits
from mnist_grader.grading.kernel_launcher import readable_by_all
from mnist_grader.grading.merge import finish_when_unlocked
from mnist_grader.grading.recovery import RUN_PREFIX, mark_owner, reconcile, remove_dead_runs
from mnist_grader.grading.sandbox import KernelSettings, Limits, find_bwrap, grader_view
from mnist_grader.grading.scratch import (build_scratch_course, grader_readonly_paths,
                                          kernel_readonly_paths, socket_path_problem,
                                          template_gradebook, write_kernelspec)
from mnist_grader.grading.student_ids import student_id_problem
from mnist_grader.grading.supervise import Supervisor, die_with_parent
from mnist_grader.trusted.hidden import hidden_test_delimiters
from mnist_grader.trusted.job import NotebookJob, build_notebook_job, lab_imports
from mnist_grader.trusted.launch import TrustedReport, TrustedRun, TrustedRunSettings, \
    TrustedServer, run_trusted
from mnist_grader.grading.uids import UidClaim, claim_sandbox_uid
from mnist_grader.grading.zygote import ForkServer

BWRAP_MISSING = ("WARNING: bubblewrap (bwrap) is missing or cannot run here, so student code is NOT "
                 "walled off from the file system and the network (it could read the gradebook, the "
                 "source notebooks and other submissions). CPU, memory, process and time limits still "
                 "apply. Install it: apt-get install -y bubblewrap")


@dataclass
class GradeResult:
    """What happened to one submission."""

    student: str
    ok: bool
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    reason: str = ""
    flags: list[str] = field(default_factory=list)
    held: bool = False  # autograded scores held at 0 pending review (mnist_grader.trusted.policy)
    scores: dict[str, float | None] = field(default_factory=dict)
    scratch: Path | None = None
    jobs: list[NotebookJob] = field(default_factory=list)
    trusted: TrustedReport | None = None
    sandbox_uid: int | None = None  # the uid its kernel and trusted run ran as (mnist_grader.grading.uids)


@dataclass
class GradingOptions:
    """How to grade.

    Args:
        workers: submissions graded at once.
        limits: per-kernel rlimits and the per-submission wall clock.
        use_sandbox: use bubblewrap when it works (False: limits only, e.g. for comparisons).
        kernel_readonly: extra paths the student's kernel may read.
        scratch_root: where scratch courses go (default: a fresh temp folder).
        keep_scratch: leave scratch folders for inspection.
        progress: show a progress bar.
        fork_server: run nbgrader's autograde in children of one fork server (nbgrader imported
            once) instead of one fresh nbgrader process per submission; see mnist_grader.grading.zygote.
        intake: caps on a submission's files (see mnist_grader.grading.intake).
        gradebook_wait: seconds to wait for another program's lock on the gradebook.
    """

    workers: int = 2
    limits: Limits = field(default_factory=Limits)
    use_sandbox: bool = True
    kernel_readonly: list[str] = field(default_factory=list)
    scratch_root: Path | None = None
    keep_scratch: bool = False
    progress: bool = True
    fork_server: bool = True
    intake: IntakeLimits = field(default_factory=IntakeLimits)
    gradebook_wait: float = 60.0


class Grader:
    """Grades submissions of one assignment in parallel; see the module docstring."""

    def __init__(self, course: Course, assignment: str, options: GradingOptions):
        self.course = course
        self.assignment = assignment
        self.options = options
        self.bwrap = find_bwrap() if options.use_sandbox else None
        # The sandboxes show data folders at their real paths, so name them by those: a symlinked
        # folder (e.g. ../shared beside a checkout under /tmp) vanishes behind the grader's own /tmp.
        for var in ("MNIST_ROOT", "FASHION_MNIST_ROOT"):
            if os.environ.get(var):
                os.environ[var] = os.path.realpath(os.environ[var])
        root = options.scratch_root
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.run_dir = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=root))
        # locked while this run lives: a later run removes the folder only once this one has ended
        self._owner_lock = mark_owner(self.run_dir)
        self.template = template_gradebook(course, assignment, self.run_dir / "template.db")
        self.kernel_paths = kernel_readonly_paths(course, options.kernel_readonly)
        self.grader_paths = grader_readonly_paths(course, self.kernel_paths)
        self.delimiters = hidden_test_delimiters(course.config)
        self.trusted_config = TrustedRun(config=course.config)
        self.source_notebooks = course.source_notebooks(assignment)
        self.trusted_settings = TrustedRunSettings(
            python=sys.executable, readonly=self.grader_paths, bwrap=self.bwrap, uid=None,
            limits=options.limits, threads=max(1, (os.cpu_count() or 1) // options.workers),
            cell_timeout=self.trusted_config.cell_timeout,
            stub_calls=list(self.trusted_config.stub_calls))
        # trusted runs fork from one server that imported torch and the course's packages once
        self.trusted_server = TrustedServer(self.trusted_settings,
                                            lab_imports(self.source_notebooks)) \
            if options.fork_server else None
        self._trusted_pool = ThreadPoolExecutor(max_workers=options.workers,
                                                thread_name_prefix="trusted-run")
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(options.workers):
            self._slots.put(slot)
        self.supervisor = Supervisor(options.limits)
        self._intake_flags: dict[str, list[str]] = {}  # student -> entries intake left out
        self._uid_claims: dict[str, UidClaim] = {}  # student -> its kernel's uid, while grading
        self.sandbox_uids: dict[str, int] = {}  # student -> the uid its kernel ran as
        self._lock = threading.Lock()
        self.zygote: ForkServer | None = None
        if options.fork_server:
            prefix = grader_view(self.bwrap, self.run_dir, course.root, self.grader_paths,
                                 own_pids=False) if self.bwrap else []
            self.zygote = ForkServer(prefix, jupyter_env(self.run_dir / "zygote-env"),
                                     str(self.run_dir / "zygote.log"), preexec_fn=die_with_parent)

    # ---- one submission ----------------------------------------------------------------------------
    def _scratch_course(self, index: int, student: str) -> Path:
        scratch = self.run_dir / f"{index:03d}"
        intake = build_scratch_course(self.course, self.assignment, student, scratch, self.template,
                                      self.options.intake)
        self._intake_flags[student] = [f"left out {line}" for line in intake.refused]
        return scratch

    def _kernelspec(self, scratch: Path, env: dict[str, str], student: str) -> None:
        cores = os.cpu_count() or 1
        claim = claim_sandbox_uid()  # unique on the machine while this submission runs
        with self._lock:
            self._uid_claims[student] = claim
            self.sandbox_uids[student] = claim.uid
        settings = KernelSettings(
            python=sys.executable, uid=claim.uid, limits=self.options.limits,
            readonly=self.kernel_paths, workdir=str(scratch / "work"),
            submitted_dir=str(scratch / "course" / self.course.directories["submitted"] / student
                              / self.assignment),
            ipc_dir=str(scratch / "ipc"), bwrap=self.bwrap,
            threads=max(1, cores // self.options.workers))
        write_kernelspec(settings, scratch / "kernel-settings.json", Path(env["JUPYTER_DATA_DIR"]))

    def grade_one(self, index: int, student: str) -> GradeResult:
        """Run ``nbgrader autograde`` for one student in its scratch course (in a worker thread)."""
        start = time.monotonic()
        slot = self._slots.get()
        scratch = self.run_dir / f"{index:03d}"
        trusted_run = None
        try:
            scratch = self._scratch_course(index, student)
            env = jupyter_env(scratch / "env")
            self._kernelspec(scratch, env, student)
            # The trusted run needs only the submitted notebooks, so it runs beside nbgrader: its
            # CPU fills the time a worker waits (kernel start, messages), and latency drops.
            trusted_run = self._trusted_pool.submit(self._trusted_run, scratch, student, slot)
            argv = [self.assignment, "--force"]  # the student id is in the scratch config
            log_path = scratch / "autograde.log"
            if self.zygote is not None:
                returncode, peak_kb, timed_out = self.supervisor.run_forked(
                    self.zygote, str(index), scratch, env, argv, log_path)
            else:
                command = [sys.executable, "-m", "nbgrader", "autograde", *argv]
                if self.bwrap:
                    command = grader_view(self.bwrap, scratch, self.course.root,
                                          self.grader_paths) + \
                        ["--chdir", str(scratch / "course")] + command
                returncode, peak_kb, timed_out = self.supervisor.run(command, scratch / "course",
                                                                     env, log_path)
            jobs, trusted = trusted_run.result()
        except Exception as exc:  # a broken submission folder must not stop the others
            return GradeResult(student=student, ok=False, seconds=time.monotonic() - start,
                               reason=f"could not prepare grading: {type(exc).__name__}: {exc}",
                               scratch=scratch)
        finally:
            if trusted_run is not None:
                wait([trusted_run])  # it runs as the submission's uid: release that only after it
            self._release_uid(student)
            self._slots.put(slot)
        result = GradeResult(student=student, ok=False, seconds=time.monotonic() - start,
                             peak_rss_mb=peak_kb / 1024, scratch=scratch, jobs=jobs,
                             trusted=trusted)
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        if timed_out:
            result.reason = (f"wall-clock limit of {self.options.limits.wall_seconds}s reached "
                             f"(an endless loop that ignores interrupts?)")
        elif returncode != 0:
            result.reason = failure_reason(log, returncode)
        else:
            result.ok = True
        return result

    def _trusted_run(self, scratch: Path, student: str,
                     slot: int) -> tuple[list[NotebookJob], TrustedReport]:
        """The hidden tests against the student's definitions, in a fresh sandboxed process."""
        submitted = scratch / "course" / self.course.directories["submitted"] / student / \
            self.assignment
        skip = frozenset(self.trusted_config.skip_cells)
        jobs = [build_notebook_job(source, submitted / source.name, self.delimiters, skip)
                for source in self.source_notebooks]
        drop_uid = bool(self.bwrap) or readable_by_all(sys.executable)
        uid = self.sandbox_uids[student] if drop_uid else None
        if self.trusted_server is not None:
            return jobs, self.trusted_server.run(jobs, uid)
        return jobs, run_trusted(jobs, dataclasses.replace(self.trusted_settings, uid=uid))

    # ---- all submissions ---------------------------------------------------------------------------
    def grade(self, students: list[str]) -> list[GradeResult]:
        """Grade ``students`` in parallel, merging each finished one into the real gradebook."""
        from tqdm import tqdm

        results: list[GradeResult] = []
        bar = tqdm(total=len(students), desc=f"grading {self.assignment}", unit="submission",
                   disable=not self.options.progress, file=sys.stderr)
        try:
            with ThreadPoolExecutor(max_workers=self.options.workers) as pool:
                futures = {pool.submit(self.grade_one, i, s): s for i, s in enumerate(students)}
                try:
                    for future in as_completed(futures):
                        result = finish_when_unlocked(
                            self.course, self.assignment, self._with_intake_and_uid(future.result()),
                            self.options.gradebook_wait, self.options.keep_scratch)
                        results.append(result)
                        bar.update(1)
                        if not result.ok:
                            bar.write(f"FAILED to grade {result.student}: {result.reason}",
                                      file=sys.stderr)
                except BaseException:
                    for future in futures:
                        future.cancel()
                    self.supervisor.kill_all()
                    raise
        finally:
            bar.close()
            self._trusted_pool.shutdown(wait=False, cancel_futures=True)
            if self.zygote is not None:
                self.zygote.close()
            if self.trusted_server is not None:
                self.trusted_server.close()
            if not self.options.keep_scratch:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            os.close(self._owner_lock)
        return sorted(results, key=lambda r: r.student)

    def _release_uid(self, student: str) -> None:
        with self._lock:
            claim = self._uid_claims.pop(student, None)
        if claim is not None:
            claim.release()

    def _with_intake_and_uid(self, result: GradeResult) -> GradeResult:
        """Add what intake left out of the submission to its flags (before the merge records them)
        and the uid its kernel ran as."""
        result.flags[:0] = self._intake_flags.pop(result.student, [])
        result.sandbox_uid = self.sandbox_uids.get(result.student)
        return result


def failure_reason(log: str, returncode: int) -> str:
    """One line saying why ``nbgrader autograde`` failed, from its log."""
    checks = [("DeadKernelError", "the kernel died (os._exit, a crash, or a resource limit)"),
              ("Kernel died", "the kernel died (os._exit, a crash, or a resource limit)"),
              ("UnresponsiveKernelError", "the kernel stopped responding"),
              ("No reply from kernel", "a cell timed out and the kernel did not recover")]
    if returncode < 0:
        return (f"killed by signal {-returncode}: it started far more processes than allowed "
                f"(the process watchdog)")
    for needle, reason in checks:
        if needle in log:
            return reason
    errors = [line.strip() for line in log.splitlines() if "| ERROR]" in line]
    detail = errors[0][:200] if errors else (log.strip().splitlines() or ["no output"])[-1][:200]
    return f"nbgrader autograde exited with status {returncode}: {detail}"


def grade_assignment(course: Course, assignment: str, options: GradingOptions,
                     students: list[str] | None = None) -> list[GradeResult]:
    """Grade all (or the given) submissions of ``assignment``; warn loudly when there is no sandbox.

    Before grading: the gradebook must be writable (else nothing is graded), another program's lock
    on it is waited for, what a killed run left is repaired (``mnist_grader.grading.recovery``), and student
    ids nbgrader cannot take are refused with the reason (the others are graded).

    Raises:
        CourseError: nothing to grade, the assignment was not released, the gradebook is read-only
            or stayed locked, or the scratch folder's path is too long for the kernels' sockets.
    """
    students = students if students is not None else course.students(assignment)
    if not students:
        raise CourseError(f"no submissions of {assignment!r} in "
                          f"{course.root / course.directories['submitted']}: expected "
                          f"submitted/<student>/{assignment}/*.ipynb (python -m mnist_grader examples "
                          f"makes example ones)")
    if course.gradebook_path.is_file():
        check_writable(course.gradebook_path)
        wait_until_unlocked(course.gradebook_path, options.gradebook_wait)
    scratch_root = options.scratch_root or Path(tempfile.gettempdir())
    for folder in remove_dead_runs(scratch_root):
        print(f"removed {folder}: scratch folder of a grading run that was killed", file=sys.stderr)
    if course.gradebook_path.is_file():
        submitted = set(course.students(assignment))
        for student, what in reconcile(course, assignment).items():
            again = student in submitted
            print(f"{student}: {what}; " + ("graded again now" if again else
                                            "removed (no submission to grade)"), file=sys.stderr)
            if again and student not in students:
                students = students + [student]
    refused = [GradeResult(student=s, ok=False, reason=f"not graded: {student_id_problem(s)}")
               for s in students if student_id_problem(s)]
    accepted = [s for s in students if not student_id_problem(s)]
    results = []
    if accepted:
        # (the run's folder will be mkdtemp's: the prefix and 8 characters)
        problem = socket_path_problem(scratch_root / f"{RUN_PREFIX}XXXXXXXX", len(accepted))
        if problem:
            raise CourseError(problem)
        grader = Grader(course, assignment, options)
        if options.use_sandbox and not grader.bwrap:
            print(BWRAP_MISSING, file=sys.stderr)
        results = grader.grade(accepted)
    return sorted(results + refused, key=lambda r: r.student)
