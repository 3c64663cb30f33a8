"""The pins live in requirements.txt alone; pyproject.toml, environment.yml and the README follow it."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parent.parent


def pinned_requirements():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in (l.split("#")[0].strip() for l in lines) if line]


def oldest_python() -> str:
    """The oldest Python that pyproject.toml's requires-python admits, e.g. "3.11"."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)", requires)
    assert match, f"requires-python should be a plain lower bound like '>=3.11', got {requires!r}"
    return match.group(1)


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
    assert SpecifierSet(f">={oldest_python()}").contains(python), "environment.yml's Python is older than pyproject's"


def test_the_oldest_python_promised_runs_every_pin():
    oldest = oldest_python()
    refusing = {}
    for r in pinned_requirements():
        requires = metadata.metadata(r.name).get("Requires-Python")
        if requires and not SpecifierSet(requires).contains(oldest):
            refusing[f"{r.name} {metadata.version(r.name)}"] = requires
    assert not refusing, f"pyproject.toml promises Python {oldest}, but these pins need a newer one: {refusing}"
    readme = (REPO / "README.md").read_text()
    assert f"`python3` ({oldest}+)" in readme, "the README's requirements should name the same oldest Python"


def test_installed_versions_match_the_pins():
    mismatched = {
        r.name: metadata.version(r.name) for r in pinned_requirements() if not r.specifier.contains(metadata.version(r.name).split("+")[0])
    }
    assert not mismatched, f"installed versions differ from requirements.txt: {mismatched}; run `make venv`"


def test_the_license_file_is_the_one_pyproject_declares():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in license_text
