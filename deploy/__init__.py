"""Where the course runs: a student's Python environment and workspace, and a JupyterHub on loopback."""
