"""Packaging: pins once, in requirements/*.txt (one file per role); the course distribution (helpers)
and the grader distribution (grader/, mnist_grader) follow them; a student's install holds no grader."""
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from deploy.student_env import WHEEL_SOURCES

REPO = Path(__file__).resolve().parent.parent
ROLES = ("student", "lab", "instructor", "test")


def pins(role: str) -> list[Requirement]:
    lines = (REPO / "requirements" / f"{role}.txt").read_text().splitlines()
    return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]


def all_pins() -> list[Requirement]:
    return [r for role in ROLES for r in pins(role)]


def oldest_python() -> str:
    """The oldest Python that pyproject.toml's requires-python admits, e.g. "3.11"."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)", requires)
    assert match, f"requires-python should be a plain lower bound like '>=3.11', got {requires!r}"
    return match.group(1)


def test_every_requirement_is_pinned_exactly_once():
    requirements = all_pins()
    names = [r.name.lower() for r in requirements]
    assert len(names) == len(set(names)), f"a package is pinned in two files: {names}"
    for r in requirements:
        specs = list(r.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{r} must be pinned with =="
    # What each role is for: a student's install is the helpers' runtime and nothing of grading.
    student = {r.name for r in pins("student")}
    assert student >= {"torch", "numpy", "matplotlib", "tqdm", "ipywidgets"}
    assert not student & {"nbgrader", "pytest", "playwright", "jupyterhub", "jupyterlab"}
    assert "nbgrader" in {r.name for r in pins("lab")} and "pytest" in {r.name for r in pins("test")}


def test_pyprojects_read_their_dependencies_from_the_requirement_files():
    course = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert {"dependencies", "optional-dependencies"} <= set(course["project"]["dynamic"])
    assert "dependencies" not in course["project"], "pins belong in requirements/*.txt only"
    dynamic = course["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"]["file"] == ["requirements/student.txt"]
    assert {extra: spec["file"] for extra, spec in dynamic["optional-dependencies"].items()} == {
        role: [f"requirements/{role}.txt"] for role in ("lab", "instructor", "test")}
    assert course["tool"]["setuptools"]["packages"]["find"]["include"] == ["helpers*"]
    grader = tomllib.loads((REPO / "grader" / "pyproject.toml").read_text())["project"]
    assert grader["dependencies"] == ["mnist-mlp-course[lab,instructor]"], "the grader repeats no pin"
    assert grader["scripts"] == {"mnist-grader": "mnist_grader.__main__:main"}


def test_environment_yml_installs_the_same_pins():
    text = (REPO / "environment.yml").read_text()
    pip_lines = re.findall(r"^\s+-\s+(.+)$", text.split("- pip:", 1)[1], flags=re.M)
    assert [f"-r requirements/{role}.txt" for role in ROLES] == [line for line in pip_lines if line.startswith("-r")]
    assert "-e ./grader" in pip_lines and "-e ." in pip_lines
    names = {r.name.lower() for r in all_pins()}
    conda_deps = re.findall(r"^  - ([A-Za-z0-9_.-]+)", text.split("- pip:", 1)[0], flags=re.M)
    assert not names & {d.split("=")[0].lower() for d in conda_deps}, "a pip pin is repeated in conda dependencies"
    python = re.search(r"- python=(\d+\.\d+)", text).group(1)
    assert SpecifierSet(f">={oldest_python()}").contains(python), "environment.yml's Python is older than pyproject's"


def test_the_oldest_python_promised_runs_every_pin():
    oldest = oldest_python()
    refusing = {}
    for r in all_pins():
        requires = metadata.metadata(r.name).get("Requires-Python")
        if requires and not SpecifierSet(requires).contains(oldest):
            refusing[f"{r.name} {metadata.version(r.name)}"] = requires
    assert not refusing, f"pyproject.toml promises Python {oldest}, but these pins need a newer one: {refusing}"
    readme = (REPO / "README.md").read_text()
    assert f"`python3` ({oldest}+)" in readme, "the README's requirements should name the same oldest Python"


def test_installed_versions_match_the_pins():
    mismatched = {
        r.name: metadata.version(r.name) for r in all_pins()
        if not r.specifier.contains(metadata.version(r.name).split("+")[0])
    }
    assert not mismatched, f"installed versions differ from requirements/*.txt: {mismatched}; run `make venv`"


def test_the_license_file_is_the_one_pyproject_declares():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in license_text


def test_the_grader_cli_answers_help_under_its_own_name():
    for command in ([sys.executable, "-m", "mnist_grader", "--help"], [str(Path(sys.executable).parent / "mnist-grader"), "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "autograde" in result.stdout and "check" in result.stdout


@pytest.fixture(scope="module")
def student_venv(tmp_path_factory):
    """A fresh virtual environment with only a student's install: `pip install <course>` (torch first,
    as the Makefile does, so pip takes the CPU build). Needs PyPI or a pip cache holding the pins."""
    env = tmp_path_factory.mktemp("student-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = str(env / "bin" / "python")
    torch_pin = next(str(r) for r in pins("student") if r.name == "torch")
    staging = tmp_path_factory.mktemp("course-copy")
    for name in WHEEL_SOURCES:  # what the course distribution is built from (as make student does)
        subprocess.run(["cp", "-r", str(REPO / name), str(staging / name)], check=True)
    for args in ([torch_pin], [str(staging)]):
        result = subprocess.run([python, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        assert result.returncode == 0, f"pip install {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return python


def test_a_students_install_trains_and_holds_no_grader(student_venv, real_mnist_root):
    listing = subprocess.run([student_venv, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                             text=True, check=True).stdout.lower()
    installed = {line.split("==")[0].replace("_", "-") for line in listing.splitlines()}
    assert {"mnist-mlp-course", "torch", "numpy", "matplotlib", "tqdm", "ipywidgets"} <= installed
    assert not installed & {"nbgrader", "pytest", "playwright", "mnist-grader", "jupyterhub", "jupyterlab"}, installed
    probe = subprocess.run([student_venv, "-c", "import mnist_grader"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'mnist_grader'" in probe.stderr
    # It trains: the CLI's dry run on the real MNIST files, from a folder outside the course.
    result = subprocess.run([student_venv, "-m", "helpers.train", "16", "--dry-run"], cwd=student_venv.rsplit("/bin/", 1)[0],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MNIST_ROOT": str(real_mnist_root), "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy:" in result.stdout
