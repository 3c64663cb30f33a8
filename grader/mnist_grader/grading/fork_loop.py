"""Runs in a fork server (``mnist_grader.grading.zygote``, ``mnist_grader.trusted.server``): its main loop.

A fork server imports what is expensive once, then reads one JSON request a line from its input
and forks a child for each; the child becomes the job and never returns to the loop. The loop is
single-threaded, so forking is safe; it ends when its input closes and its last child has ended.
"""
from __future__ import annotations

import json
import os
import select
import time
from typing import Callable


def serve_forks(start_child: Callable[[dict], int], forked: Callable[[int, dict], None],
                ended: Callable[[int, int], None], tick: Callable[[], None] | None = None,
                fd: int = 0) -> None:
    """Fork a child per JSON line read from ``fd`` until it closes and every child has ended.

    Args:
        start_child: in the forked child: runs the job and returns its exit status (or never
            returns); the child exits with it.
        forked: in the server, after each fork: (child pid, its request).
        ended: in the server, when a child has ended: (its pid, ``os.waitstatus_to_exitcode``).
        tick: in the server, about every 50 ms (e.g. to kill children past their deadline).
        fd: where requests come from.
    """
    children: set[int] = set()
    buffer, open_input = b"", True
    while open_input or children:
        if open_input and select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                open_input = False
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    buffer = chunk = b""  # other jobs waiting in the buffer are not this child's
                    os._exit(start_child(request))
                children.add(pid)
                forked(pid, request)
                del request, line  # the server keeps nothing of a job once it is forked
        elif not open_input:
            time.sleep(0.05)
        if tick is not None:
            tick()
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            children.discard(pid)
            ended(pid, os.waitstatus_to_exitcode(status))
