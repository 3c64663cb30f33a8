"""Grade every submission of an assignment with N workers, each in its own sandboxed scratch course.

For each student the parent builds a scratch course: a copy of nbgrader's config pointed at the
scratch folder, a scratch gradebook holding only the assignment's definitions (the real gradebook with
every student removed), the non-notebook files of ``source/<assignment>`` (nbgrader copies those over
the submission; the source NOTEBOOKS are not copied: autograde restores test cells from the
gradebook), and the student's submission. It then runs the real ``nbgrader autograde ASSIGNMENT
--student ID`` there (as a child of a fork server that imported nbgrader once, ``mnist_grader.zygote``,
or with ``fork_server=False`` as a fresh process), inside ``mnist_grader.sandbox.grader_view``; nbgrader
starts the student's kernel
through a kernelspec that puts it in ``mnist_grader.sandbox.kernel_view`` (see that module for the
threat model). When it finishes, the parent, the only writer of the real gradebook, merges the
scratch results in one transaction (``mnist_grader.merge``) and copies the autograded notebooks back.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from mnist_grader.course import Course, CourseError, jupyter_env
from mnist_grader.gradebook_lock import check_writable, is_locked_error, wait_until_unlocked
from mnist_grader.intake import IntakeLimits, copy_submission
from mnist_grader.kernel_launcher import readable_by_all
from mnist_grader.merge import kernel_scores, merge_submission, record_failure
from mnist_grader.output_cap import AUTOGRADE_PREPROCESSORS
from mnist_grader.recovery import (discard_staged, mark_owner, publish_staged, reconcile,
                                 remove_dead_runs, staging_folder)
from mnist_grader.sandbox import KernelSettings, Limits, find_bwrap, grader_view, python_install_paths
from mnist_grader.scan import machinery_flags
from mnist_grader.student_ids import student_id_problem
from mnist_grader.trusted.annotate import annotate_notebook
from mnist_grader.trusted.hidden import hidden_test_delimiters, strip_hidden_tests
from mnist_grader.trusted.job import NotebookJob, build_notebook_job, lab_imports
from mnist_grader.trusted.launch import TrustedReport, TrustedRun, TrustedRunSettings, \
    TrustedServer, run_trusted
from mnist_grader.uids import UidClaim, claim_sandbox_uid
from mnist_grader.zygote import ForkServer

KERNEL_NAME = "mnist-grader-sandbox"
#: course packages the student's notebooks import (shown read-only to the kernel, with their data/)
KERNEL_PACKAGES = ["helpers"]
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
    sandbox_uid: int | None = None  # the uid its kernel and trusted run ran as (mnist_grader.uids)


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
            once) instead of one fresh nbgrader process per submission; see mnist_grader.zygote.
        intake: caps on a submission's files (see mnist_grader.intake).
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


def template_gradebook(course: Course, assignment: str, dest: Path) -> Path:
    """A gradebook with the assignment's definitions and no students (copied from the real one),
    its test cells without their hidden tests (``mnist_grader.trusted.hidden``).

    Raises:
        CourseError: the real gradebook or the assignment in it is missing.
    """
    real = course.gradebook_path
    if not real.is_file():
        raise CourseError(f"no gradebook at {real}: release the assignment first "
                          f"(nbgrader generate_assignment {assignment}, or make release)")
    with sqlite3.connect(real) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)  # consistent copy even if someone writes meanwhile
    with Gradebook(f"sqlite:///{dest}", course.course_id) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise CourseError(f"assignment {assignment!r} is not in {real}: release it first "
                              f"(nbgrader generate_assignment {assignment})") from None
        for student in list(gb.students):
            gb.remove_student(student.id)
    strip_hidden_tests(dest, assignment, hidden_test_delimiters(course.config))
    with sqlite3.connect(dest) as db:
        db.execute("VACUUM")
    return dest


def kernel_readonly_paths(course: Course, extra: list[str]) -> list[str]:
    """What the student's kernel may read besides system folders: Python, the course's helper
    package and data, MNIST."""
    paths = python_install_paths()
    for name in ("helpers", "data"):
        if (course.root / name).exists():
            paths.append(str(course.root / name))
    for package in KERNEL_PACKAGES:  # where they are importable from (e.g. an editable install)
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folder = Path(list(spec.submodule_search_locations)[0])
            paths += [str(folder), str(folder.parent / "data")]
    paths = [p for p in dict.fromkeys(paths) if os.path.exists(p)]
    if os.environ.get("MNIST_ROOT"):
        paths.append(os.path.realpath(os.environ["MNIST_ROOT"]))
    return paths + [os.path.realpath(p) for p in extra]


def grader_readonly_paths(course: Course, kernel_paths: list[str]) -> list[str]:
    """What the nbgrader process must see of the (otherwise hidden) course folder: the tools."""
    instructor_pkg = str(Path(__file__).resolve().parent)
    return sorted(set(kernel_paths + [instructor_pkg]))


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
        self.run_dir = Path(tempfile.mkdtemp(prefix="grading-", dir=root))
        mark_owner(self.run_dir)  # a later run removes it if this one is killed
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
        self._running: set[subprocess.Popen] = set()
        self._intake_flags: dict[str, list[str]] = {}  # student -> entries intake left out
        self._uid_claims: dict[str, UidClaim] = {}  # student -> its kernel's uid, while grading
        self.sandbox_uids: dict[str, int] = {}  # student -> the uid its kernel ran as
        self._lock = threading.Lock()
        self.zygote: ForkServer | None = None
        if options.fork_server:
            prefix = grader_view(self.bwrap, self.run_dir, course.root, self.grader_paths,
                                 own_pids=False) if self.bwrap else []
            self.zygote = ForkServer(prefix, jupyter_env(self.run_dir / "zygote-env"),
                                     str(self.run_dir / "zygote.log"), preexec_fn=_die_with_parent)

    # ---- one submission ----------------------------------------------------------------------------
    def _scratch_course(self, index: int, student: str) -> Path:
        scratch = self.run_dir / f"{index:03d}"
        course_dir = scratch / "course"
        dirs = self.course.directories
        submitted = course_dir / dirs["submitted"] / student / self.assignment
        submitted.parent.mkdir(parents=True)
        intake = copy_submission(self.course.root / dirs["submitted"], [student, self.assignment],
                                 submitted, self.options.intake)
        self._intake_flags[student] = [f"left out {line}" for line in intake.refused]
        source = self.course.folder("source", self.assignment)
        shutil.copytree(source, course_dir / dirs["source"] / self.assignment,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        shutil.copy(self.template, course_dir / "gradebook.db")
        overrides = f"""
# ---- mnist_grader.autograde: this is a scratch course for one student --------------------------------
c.CourseDirectory.root = {str(course_dir)!r}
c.CourseDirectory.db_url = {"sqlite:///" + str(course_dir / "gradebook.db")!r}
c.CourseDirectory.course_id = {self.course.course_id!r}
c.CourseDirectory.student_id = {student!r}
c.Execute.kernel_name = {KERNEL_NAME!r}
c.KernelManager.transport = "ipc"
c.KernelManager.ip = {str(scratch / "ipc" / "k")!r}
c.OverwriteCells.add_missing_cells = True
# the kernel lives in a throwaway sandbox (its own pid namespace and tmpfs): once the last cell has
# run, kill it rather than wait for a graceful exit (this lab's kernel takes 2.5 s to be SIGTERMed)
c.Execute.shutdown_kernel = "immediate"
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec", "mnist_grader.restore.RestoreDeletedCells",
    "nbgrader.preprocessors.CheckCellMetadata"]
c.Autograde.autograde_preprocessors = {AUTOGRADE_PREPROCESSORS!r}
"""
        (course_dir / "nbgrader_config.py").write_text(self.course.config_text + overrides)
        os.chmod(course_dir, 0o700)  # the kernel's uid must not read the scratch gradebook
        (scratch / "ipc").mkdir()
        return scratch

    def _kernelspec(self, scratch: Path, env: dict[str, str], slot: int, student: str) -> None:
        cores = os.cpu_count() or 1
        claim = claim_sandbox_uid()  # unique on the machine while this submission runs
        with self._lock:
            self._uid_claims[student] = claim
            self.sandbox_uids[student] = claim.uid
        settings = KernelSettings(
            python=sys.executable, uid=claim.uid,
            limits=self.options.limits.__dict__.copy(), readonly=self.kernel_paths,
            workdir=str(scratch / "work"),
            submitted_dir=str(scratch / "course" / self.course.directories["submitted"] / student
                              / self.assignment),
            ipc_dir=str(scratch / "ipc"), bwrap=self.bwrap,
            threads=max(1, cores // self.options.workers))
        settings.save(scratch / "kernel-settings.json")
        spec_dir = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "mnist_grader.kernel_launcher",
                         str(scratch / "kernel-settings.json"), "{connection_file}"],
                "display_name": "Python 3 (grading sandbox)", "language": "python",
                "interrupt_mode": "message"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))

    def grade_one(self, index: int, student: str) -> GradeResult:
        """Run ``nbgrader autograde`` for one student in its scratch course (in a worker thread)."""
        start = time.monotonic()
        slot = self._slots.get()
        scratch = self.run_dir / f"{index:03d}"
        trusted_run = None
        try:
            scratch = self._scratch_course(index, student)
            env = jupyter_env(scratch / "env")
            self._kernelspec(scratch, env, slot, student)
            # The trusted run needs only the submitted notebooks, so it runs beside nbgrader: its
            # CPU fills the time a worker waits (kernel start, messages), and latency drops.
            trusted_run = self._trusted_pool.submit(self._trusted_run, scratch, student, slot)
            argv = [self.assignment, "--force"]  # the student id is in the scratch config
            log_path = scratch / "autograde.log"
            if self.zygote is not None:
                returncode, peak_kb, timed_out = self._run_forked(str(index), scratch, env, argv,
                                                                  log_path)
            else:
                command = [sys.executable, "-m", "nbgrader", "autograde", *argv]
                if self.bwrap:
                    command = grader_view(self.bwrap, scratch, self.course.root,
                                          self.grader_paths) + \
                        ["--chdir", str(scratch / "course")] + command
                returncode, peak_kb, timed_out = self._run(command, scratch / "course", env,
                                                           log_path)
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

    def _run(self, command: list[str], cwd: Path, env: dict[str, str],
             log_path: Path) -> tuple[int, float, bool]:
        """Run a command with a wall clock; returns (exit status, peak RSS in KiB, timed out)."""
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        with self._lock:
            self._running.add(proc)
        deadline = time.monotonic() + self.options.limits.wall_seconds
        timed_out = False
        peak_kb = 0
        next_sample = 0.0
        try:
            while True:
                pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    return proc.returncode, peak_kb, timed_out
                now = time.monotonic()
                if now > deadline and not timed_out:
                    timed_out = True
                    _kill_tree(proc)
                if now >= next_sample:
                    peak_kb = max(peak_kb, self._watch(proc.pid))
                    next_sample = now + 0.25
                time.sleep(0.05)
        finally:
            with self._lock:
                self._running.discard(proc)

    def _run_forked(self, job: str, scratch: Path, env: dict[str, str], argv: list[str],
                    log_path: Path) -> tuple[int, float, bool]:
        """Like ``_run``, as a child of the fork server."""
        self.zygote.submit(job, str(scratch / "course"), str(log_path), env, argv)
        pid = self.zygote.pid(job, timeout=60)
        if pid is None:
            raise RuntimeError("the grading fork server is not answering (see zygote.log)")
        deadline = time.monotonic() + self.options.limits.wall_seconds
        timed_out, peak_kb = False, 0
        while True:
            status = self.zygote.status(job, timeout=0.25)
            if status is not None:
                return status, peak_kb, timed_out
            if self.zygote.dead:
                raise RuntimeError("the grading fork server died")
            peak_kb = max(peak_kb, self._watch(pid))
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _watch(self, pid: int) -> int:
        """Sample one submission's process tree: returns its RSS (KiB); kills the tree when it holds
        far more processes than the kernel may start (RLIMIT_NPROC is not enforced for root, which
        matters when there is no bubblewrap to run the kernel as its own uid)."""
        rss_kb, tree = tree_stats(pid)
        if len(tree) > self.options.limits.processes + 16:
            for member in tree:
                try:
                    os.kill(member, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return rss_kb

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
                        result = self._finish_when_unlocked(
                            self._with_intake_and_uid(future.result()))
                        results.append(result)
                        bar.update(1)
                        if not result.ok:
                            bar.write(f"FAILED to grade {result.student}: {result.reason}",
                                      file=sys.stderr)
                except BaseException:
                    for future in futures:
                        future.cancel()
                    self.kill_all()
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

    def _finish_when_unlocked(self, result: GradeResult) -> GradeResult:
        """``_finish`` once the real gradebook can be written (waits for another program's lock,
        bounded), then move the autograded notebooks into place: after the commit, never before."""
        final = self.course.folder("autograded", self.assignment, result.student)
        deadline = time.monotonic() + self.options.gradebook_wait
        while True:
            wait_until_unlocked(self.course.gradebook_path,
                                max(0.0, deadline - time.monotonic()))
            attempt = copy.deepcopy(result)
            try:
                finished = self._finish(attempt)
            except Exception as exc:
                discard_staged(final)
                if is_locked_error(exc):
                    continue  # locked again between the wait and the merge: wait again
                raise
            publish_staged(final)
            return finished

    def _finish(self, result: GradeResult) -> GradeResult:
        """Merge one result into the real gradebook and copy its autograded notebooks (main thread).

        Each autograded test cell scores the lower of the student's kernel (visible tests) and the
        trusted run (visible and hidden tests); code outside the policy holds every score at 0.
        """
        index = result.scratch
        submitted_dir = index / "course" / self.course.directories["submitted"] / result.student \
            / self.assignment
        holds = [h for job in result.jobs for h in job.holds]
        result.held = bool(holds)
        result.flags += [f"held: {h}" for h in holds]
        for notebook in sorted(submitted_dir.glob("*.ipynb")):
            result.flags += [f"{notebook.name}: {f}" for f in machinery_flags(notebook)]
        report = result.trusted or TrustedReport(reason="the trusted run did not start")
        real_url = self.course.db_url
        if result.ok:
            scratch_url = f"sqlite:///{index}/course/gradebook.db"
            caps = {}
            for (notebook, cell), (kernel, maximum) in kernel_scores(
                    scratch_url, self.assignment, result.student).items():
                verdict = report.verdict(notebook, cell)
                caps[(notebook, cell)] = maximum if verdict.ok else 0.0
                if kernel is not None and kernel >= maximum > 0 and not verdict.ok and \
                        verdict.failed_in != "hidden":
                    result.flags.append(f"{notebook}/{cell} passes in the student's kernel but not "
                                        f"in the trusted run: {verdict.message[:160]}")
            if report.reason:
                result.flags.append(f"trusted run: {report.reason}")
            self._copy_autograded(index, result.student, report, holds)
            result.score = merge_submission(real_url, scratch_url, self.assignment,
                                            result.student, flag=bool(result.flags),
                                            hold=result.held, caps=caps)
        else:
            result.score = record_failure(real_url, self.assignment, result.student)
        with Gradebook(real_url) as gb:
            submission = gb.find_submission(self.assignment, result.student)
            result.max_score = submission.max_score
            result.scores = {f"{g.notebook.name}/{g.name}": g.score
                             for nb in submission.notebooks for g in nb.grades}
        if not self.options.keep_scratch:
            shutil.rmtree(index, ignore_errors=True)
        return result

    def _copy_autograded(self, scratch: Path, student: str, report: TrustedReport,
                         holds: list[str]) -> None:
        """Copy the autograded notebooks (only notebooks: nothing else the student wrote) back,
        each test cell with the trusted run's verdict, to a staging folder that ``publish_staged``
        moves into place after the gradebook commit."""
        src = scratch / "course" / self.course.directories["autograded"] / student / self.assignment
        dest = staging_folder(self.course.folder("autograded", self.assignment, student))
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for notebook in src.glob("*.ipynb"):
            annotate_notebook(notebook, report, holds)
        for name in [p.name for p in src.glob("*.ipynb")] + ["timestamp.txt"]:
            if (src / name).is_file():
                shutil.copyfile(src / name, dest / name)

    def kill_all(self) -> None:
        with self._lock:
            for proc in list(self._running):
                _kill_tree(proc)


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


def tree_rss_kb(root_pid: int) -> int:
    """Resident memory (KiB) of a process and all its descendants (see ``tree_stats``)."""
    return tree_stats(root_pid)[0]


def tree_stats(root_pid: int) -> tuple[int, list[int]]:
    """Resident memory (KiB) of a process and all its descendants, and their pids, from /proc (the
    nbgrader process and the student's kernel together: what one worker uses)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
    total, stack, tree = 0, [root_pid], []
    while stack:
        pid = stack.pop()
        tree.append(pid)
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total, tree


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the grading command dies, so no grading outlives it."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def grade_assignment(course: Course, assignment: str, options: GradingOptions,
                     students: list[str] | None = None) -> list[GradeResult]:
    """Grade all (or the given) submissions of ``assignment``; warn loudly when there is no sandbox.

    Before grading: the gradebook must be writable (else nothing is graded), another program's lock
    on it is waited for, what a killed run left is repaired (``mnist_grader.recovery``), and student
    ids nbgrader cannot take are refused with the reason (the others are graded).

    Raises:
        CourseError: nothing to grade, the assignment was not released, the gradebook is read-only
            or stayed locked.
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
    for folder in remove_dead_runs(options.scratch_root or Path(tempfile.gettempdir())):
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
        grader = Grader(course, assignment, options)
        if options.use_sandbox and not grader.bwrap:
            print(BWRAP_MISSING, file=sys.stderr)
        results = grader.grade(accepted)
    return sorted(results + refused, key=lambda r: r.student)
