"""``python -m deploy <command>``: where the course runs (the Makefile's student and hub targets).

  student-env DIR        build a student's Python environment (pinned packages + helpers only)
  student                create a student workspace outside the course, assignment fetched
  hub start|stop|clean   the multi-user JupyterHub on 127.0.0.1 (deploy.hub)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_ASSIGNMENT = "mnist_mlp"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("student-env", help="build a student's Python environment")
    p.add_argument("env_dir", type=Path, help="folder of the virtual environment")

    p = sub.add_parser("student", help="create a student workspace outside the course")
    p.add_argument("--course-dir", type=Path, default=Path("."), help="the course folder")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    p.add_argument("--dir", type=Path, required=True, help="the student's workspace folder")
    p.add_argument("--env", type=Path, required=True, help="the student environment to use")

    p = sub.add_parser("hub", help="the multi-user JupyterHub on 127.0.0.1")
    p.add_argument("action", choices=["start", "stop", "clean"])
    p.add_argument("--course-dir", type=Path, default=Path("."), help="the course folder")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    p.add_argument("--hub-dir", type=Path, required=True, help="the hub's state folder")
    p.add_argument("--env", type=Path, help="the student environment (start only)")
    p.add_argument("--instructor-env", type=Path,
                   help="the instructor's environment (start only; default: HUB_DIR/instructor-env)")
    p.add_argument("--prefix", default="mnistc-", help="prefix of the Unix user names (start only)")
    p.add_argument("--students", type=int, default=2, help="number of student users")
    p.add_argument("--port", type=int, default=0, help="public port (0: a free one)")
    p.add_argument("--proxy", type=Path, help="the configurable-http-proxy executable")
    p.add_argument("--on-submit", action="store_true",
                   help="also run the autograde-on-submit service (mnist_grader.on_submit; start only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from deploy.hub import HubError
    from deploy.student_env import StudentEnvError, build_student_env
    from mnist_grader.course import CourseError, load_course

    try:
        if args.command == "student-env":
            print(f"student environment ready: {build_student_env(args.env_dir)}")
            return 0
        if args.command == "student":
            from deploy.workspace import check_outside, create_workspace
            course = load_course(args.course_dir)
            check_outside(course, args.dir)  # before the minutes of building an environment
            env_bin = build_student_env(args.env)
            for line in create_workspace(course, args.assignment, args.dir.resolve(), env_bin):
                print(line)
            print(f"start JupyterLab there with: make student-lab STUDENT_DIR={args.dir}")
            return 0
        if args.command == "hub":
            from deploy import hub
            if args.action == "start":
                if args.env is None or args.proxy is None:
                    raise HubError("hub start needs --env and --proxy")
                course = load_course(args.course_dir)
                settings = hub.HubSettings.create(
                    hub_dir=args.hub_dir, course_root=course.root, assignment=args.assignment,
                    course_id=course.course_id, env=args.env,
                    proxy=args.proxy, prefix=args.prefix, n_students=args.students,
                    port=args.port, on_submit=args.on_submit, instructor_env=args.instructor_env)
                build_student_env(Path(settings.env), extra_pins=hub.users_env_pins())
                hub.start(settings)
            elif args.action == "stop":
                hub.stop(args.hub_dir)
            else:
                hub.clean(args.hub_dir)
            return 0
    except (CourseError, StudentEnvError, HubError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
