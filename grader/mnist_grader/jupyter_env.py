"""Runs in every process that starts Jupyter, nbgrader or a kernel: the folders they write, kept private.

Jupyter, IPython, matplotlib and XDG-following libraries write configuration, caches and runtime
files under the home folder unless told otherwise. Every process the grader starts (nbgrader, the
fork server, the student's kernel, the trusted run) and the tests get these folders of their own.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

#: {environment variable: its folder's name below a private base folder}
PRIVATE_DIRS = {
    "JUPYTER_CONFIG_DIR": "jupyter-config", "JUPYTER_DATA_DIR": "jupyter-data",
    "JUPYTER_RUNTIME_DIR": "jupyter-runtime", "IPYTHONDIR": "ipython",
    "MPLCONFIGDIR": "matplotlib", "XDG_CACHE_HOME": "cache", "XDG_CONFIG_HOME": "config",
}


def private_dirs(base: Path, create: bool = True) -> dict[str, str]:
    """``PRIVATE_DIRS`` below ``base``, as environment variables.

    Args:
        base: the private folder.
        create: make the folders now (False: the base is not this process's to write, e.g. the
            kernel's /tmp inside its sandbox).
    """
    found = {}
    for var, name in PRIVATE_DIRS.items():
        if create:
            (base / name).mkdir(parents=True, exist_ok=True)
        found[var] = str(base / name)
    return found


def jupyter_env(base: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running nbgrader/Jupyter without touching the home folder.

    Args:
        base: a private folder; Jupyter, IPython, matplotlib and XDG dirs are made inside it.
        extra: more variables to set.
    """
    env = dict(os.environ)
    env.update(private_dirs(base))
    env["MPLBACKEND"] = "Agg"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # the venv's scripts first, so `python -m nbgrader` and kernels use the same interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env
