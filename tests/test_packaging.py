"""The pins live in requirements.txt alone; pyproject.toml and environment.yml follow it."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def pinned_requirements():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in (l.split("#")[0].strip() for l in lines) if line]


def test_every_requirement_is_pinned_exactly():
    requirements = pinned_requirements()
    assert {r.name for r in requirements} >= {"torch", "numpy", "matplotlib", "jupyterlab", "nbgrader", "ipywidgets", "tqdm"}
    for r in requirements:
        specs = list(r.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{r} must be pinned with =="


def test_pyproject_reads_its_dependencies_from_requirements_txt():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "dependencies" in pyproject["project"]["dynamic"]
    assert "dependencies" not in pyproject["project"], "pins belong in requirements.txt only"
    assert pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]


def test_environment_yml_installs_the_same_pins():
    text = (REPO / "environment.yml").read_text()
    pip_lines = re.findall(r"^\s+-\s+(.+)$", text.split("- pip:", 1)[1], flags=re.M)
    assert "-r requirements.txt" in pip_lines
    # No second copy of a pin that could drift from requirements.txt.
    names = {r.name.lower() for r in pinned_requirements()}
    conda_deps = re.findall(r"^  - ([A-Za-z0-9_.-]+)", text.split("- pip:", 1)[0], flags=re.M)
    assert not names & {d.split("=")[0].lower() for d in conda_deps}, "a pip pin is repeated in conda dependencies"
    python = re.search(r"- python=(\d+\.\d+)", text).group(1)
    assert tuple(map(int, python.split("."))) >= (3, 10)


def test_installed_versions_match_the_pins():
    mismatched = {
        r.name: metadata.version(r.name) for r in pinned_requirements() if not r.specifier.contains(metadata.version(r.name).split("+")[0])
    }
    assert not mismatched, f"installed versions differ from requirements.txt: {mismatched}; run `make venv`"
