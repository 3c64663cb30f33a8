"""Autograde on submit: seconds from a student's Submit to their feedback being fetchable.

Starts a real hub with the `mnist_grader.on_submit` service (`deploy.hub`, as `make hub
HUB_ON_SUBMIT=1` does; a copy of the course in a temporary folder, users with a unique prefix),
then, round by round, a student submits the reference answers with `nbgrader submit` run as that
Unix user, and the clock runs from the moment `nbgrader submit` returns (the submission is in the
exchange) until the feedback page nbgrader's `fetch_feedback` looks for exists in the exchange
(what a student's "Fetch Feedback" then finds). A last round has two students submit at once.
Prints every round, the median, the service's own split (grading / feedback / release) and the
machine's load. Removes the hub, its users and the copy at the end.

    python benchmarks/bench_on_submit.py              # 3 rounds + 1 round with two students (about 4 minutes)
    python benchmarks/bench_on_submit.py --rounds 5

Needs root, node/npm (the hub's proxy in build/node: `make build/node/.installed`), bubblewrap, the
student environment (build/student-env; built when missing, about 2 minutes), the instructor's (build/instructor-env, likewise) and MNIST ($MNIST_ROOT).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ASSIGNMENT = "mnist_mlp"
TIMEOUT_S = 600


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _wait_released(settings, student: str) -> float:
    """Seconds until the student's latest submission has its feedback in the exchange."""
    from deploy.hub_student import released_feedback_paths

    start = time.monotonic()
    paths = released_feedback_paths(settings, student)
    log = settings.folder / "state" / "on-submit.log"
    before = log.read_text().count(f"nothing released to {student}")
    while not all(p.is_file() for p in paths):
        if time.monotonic() - start > TIMEOUT_S or log.read_text().count(f"nothing released to {student}") > before:
            raise SystemExit(f"no feedback for {student}; the service's log:\n{log.read_text()[-6000:]}")
        time.sleep(0.1)
    return time.monotonic() - start


def _submit_and_time(settings, student: str, notebooks, results: dict) -> None:
    from deploy.hub_student import submit

    started = time.monotonic()
    submit(settings, student, notebooks)
    results[student] = (time.monotonic() - started, _wait_released(settings, student))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds with one submission (default: 3)")
    parser.add_argument("--no-pair", action="store_true", help="leave out the round with two students at once")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: the hub creates Unix users: run as root", file=sys.stderr)
        return 2
    from deploy import hub
    from deploy.course_copy import copy_course
    from deploy.student_env import build_student_env
    from mnist_grader.course import load_course
    from mnist_grader.examples import example_set
    from mnist_grader.library import load_library

    proxy = REPO / "build" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        print(f"error: {proxy} is missing: make build/node/.installed", file=sys.stderr)
        return 2
    env = REPO / "build" / "student-env"
    build_student_env(env)
    base = Path(tempfile.mkdtemp(prefix="bench-on-submit-"))
    base.chmod(0o755)
    course = base / "course"
    copy_course(REPO, course)
    settings = hub.HubSettings.create(hub_dir=base / "hub", course_root=course, assignment=ASSIGNMENT,
                                      course_id=load_course(course).course_id, env=env, proxy=proxy,
                                      prefix=f"bos{uuid.uuid4().hex[:5]}-", n_students=2, port=0,
                                      on_submit=True, instructor_env=REPO / "build" / "instructor-env")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}; "
          f"load average before: {_load()}")
    latencies: list[float] = []
    try:
        hub.start(settings)
        instructor_course = load_course(settings.instructor_course)
        reference = example_set(instructor_course, ASSIGNMENT,
                                load_library(instructor_course.root, ASSIGNMENT))["example-reference"]
        log = settings.folder / "state" / "on-submit.log"
        while "watching" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.2)
        for round_ in range(1, args.rounds + 1):
            student = settings.students[(round_ - 1) % len(settings.students)]
            results: dict = {}
            _submit_and_time(settings, student, reference, results)
            submit_s, feedback_s = results[student]
            latencies.append(feedback_s)
            print(f"round {round_}: {student}: nbgrader submit {submit_s:.1f} s, then feedback fetchable "
                  f"after {feedback_s:.1f} s (load {_load()})", flush=True)
        pair: dict = {}
        if not args.no_pair:
            threads = [threading.Thread(target=_submit_and_time, args=(settings, s, reference, pair))
                       for s in settings.students[:2]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for student, (submit_s, feedback_s) in sorted(pair.items()):
                print(f"two at once: {student}: feedback fetchable after {feedback_s:.1f} s "
                      f"(submit {submit_s:.1f} s; load {_load()})", flush=True)
        phases = re.findall(r"grading ([\d.]+) s, feedback ([\d.]+) s, release ([\d.]+) s", log.read_text())
    finally:
        hub.clean(settings.folder)
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nsubmit -> feedback fetchable, one submission: median {statistics.median(latencies):.1f} s "
          f"(min {min(latencies):.1f}, max {max(latencies):.1f}, {len(latencies)} rounds; target <= 30 s)")
    if pair:
        print(f"two submissions at once: {', '.join(f'{v[1]:.1f} s' for _, v in sorted(pair.items()))}")
    if phases:
        for name, column in zip(("grading", "feedback", "release"), zip(*phases)):
            values = [float(v) for v in column]
            print(f"  service's {name}: median {statistics.median(values):.1f} s "
                  f"(min {min(values):.1f}, max {max(values):.1f})")
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
