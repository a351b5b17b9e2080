"""Fresh command-line processes without a fresh TensorFlow import each: forks of one server process.

A test that kills ``python -m dcganlib`` needs a process of its own, and ``import tensorflow`` costs about
4 s of CPU per process. The server imports TensorFlow, dcganlib and a runner module once and runs no
TensorFlow op, so it has no TensorFlow runtime yet (no thread pools; its only other threads are OpenBLAS's
idle workers, waiting on a condition variable and holding no lock a child could need). Each
:meth:`ForkServer.start` forks it: the child sets its working folder, environment and output files, calls
the runner and exits through ``sys.exit`` like ``python -c "sys.exit(runner(...))"`` would, starting its
own TensorFlow runtime on its first op. The child is the server's, not the test's: :class:`Forked` asks the server for its exit status
and offers the part of :class:`subprocess.Popen` the tests use (``pid``, ``poll``, ``wait``,
``send_signal``, ``returncode``; a child killed by signal N returns ``-N``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

TESTS = Path(__file__).resolve().parent

# The server: imports the runner's module (and so TensorFlow and dcganlib), says "ready", then answers one
# JSON request per line: {"op": "start", ...} forks a child and answers its pid; {"op": "poll", "pid": P}
# answers its exit code, or null while it runs.
SERVER = r"""
import importlib, json, os, sys, tempfile
import dcganlib  # first, as `python -m dcganlib` does: its quiet TensorFlow import
sys.path.insert(0, sys.argv[1])
import helpers; helpers.skip_graph_rewrites()  # as in the test process (tests/conftest.py)
# the answers get a copy of stdout of their own; anything else printed to stdout goes to stderr
channel = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
runner = getattr(importlib.import_module(sys.argv[2]), sys.argv[3])
channel.write('"ready"\n'); channel.flush()
for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "start":
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never answers, never reads another request
            channel.close()
            os.chdir(request["cwd"])
            os.environ.update(request["env"])
            tempfile.tempdir = None  # the server may have cached its own TMPDIR
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                if fd == 2 and path == request["stdout"]:
                    os.dup2(1, 2)  # one file, one offset: the two streams interleave as they would on a terminal
                    continue
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, fd)
                os.close(out)
            sys.exit(runner(request["spec"], request["argv"]))
        answer = pid
    elif request["op"] == "poll":
        done, status = os.waitpid(request["pid"], os.WNOHANG)
        answer = os.waitstatus_to_exitcode(status) if done else None
    else:
        raise ValueError(request)
    channel.write(json.dumps(answer) + "\n"); channel.flush()
"""


class ForkServer:
    """One server process for ``runner`` (``"module:function"`` importable from tests/, called as
    ``function(spec, argv)`` and returning an exit code), started with ``env``."""

    def __init__(self, runner: str, env: dict[str, str]) -> None:
        module, function = runner.split(":")
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(TESTS), module, function],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        if self._read() != "ready":
            raise RuntimeError("the fork server did not start")

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server ended (exit code {self.process.wait()})")
        return json.loads(line)

    def _ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def start(self, spec: str, argv: list[str], cwd: Path, env: dict[str, str], stdout: Path,
              stderr: Path) -> "Forked":
        """Fork a child that runs ``runner(spec, argv)`` in ``cwd`` with ``env`` added to the server's
        environment, its output going to the files ``stdout`` and ``stderr`` (one file if they are equal)."""
        pid = self._ask(op="start", spec=spec, argv=[str(a) for a in argv], cwd=str(cwd), env=env,
                        stdout=str(stdout), stderr=str(stderr))
        return Forked(self, pid)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


class Forked:
    """A child of the :class:`ForkServer`, with the :class:`subprocess.Popen` methods the tests use."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server, self.pid, self.returncode = server, pid, None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self.returncode = self.server._ask(op="poll", pid=self.pid)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"fork {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
