"""Fixtures for the jobfs Python client's suite: private daemons on free
ports, worker subprocesses, and a TAP report on the descriptor that
JOBFS_TAP_FD names (the pytest chatter goes to stderr)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
sys.path.insert(0, PKG)

JOBFS_BIN = os.environ.get("JOBFS_BIN") or os.path.join(PKG, "..", "..", "build")
JOBFS = os.path.join(JOBFS_BIN, "jobfs")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)")
os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:exitcode=86")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=87")
# The suite's own settings, never the caller's.
for _v in ("JOBFS_HOST", "JOBFS_TOKEN", "JOBFS_TOKEN_FILE", "JOBFS_TLS", "JOBFS_CA",
           "JOBFS_CERT", "JOBFS_KEY", "JOBFS_MASTER_PORT", "JOBFS_WORKER_PORT"):
    os.environ.pop(_v, None)


def wait_until(cond: Callable[[], object], timeout: float = 10.0, what: str = "") -> object:
    """Poll cond until it is true, for at most timeout seconds."""
    end = time.monotonic() + timeout
    delay = 0.01
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A jobfs -f on free ports, logging to DIR/daemon.log."""

    def __init__(self, tmp: str, *args: str) -> None:
        self.tmp = tmp
        self.args = list(args)
        self.log = os.path.join(tmp, "daemon.log")
        self.proc: Optional[subprocess.Popen] = None
        self.master_port = 0
        self.worker_port = 0

    def start(self, same_ports: bool = False) -> "Daemon":
        for _ in range(5):
            if not same_ports:
                self.master_port, self.worker_port = free_port(), free_port()
            with open(self.log, "a") as log:
                start = log.tell()
                self.proc = subprocess.Popen(
                    [JOBFS, "-f", "--master-port", str(self.master_port),
                     "--worker-port", str(self.worker_port)] + self.args,
                    stdout=log, stderr=subprocess.STDOUT)
            end = time.monotonic() + 20
            while time.monotonic() < end:
                text = self._log_from(start)
                if " workers on " in text:
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            self.kill()
            if "cannot listen" not in self._log_from(start):
                break
            time.sleep(0.2 if same_ports else 0)
        raise RuntimeError("jobfs did not start:\n" + open(self.log).read())

    def _log_from(self, start: int) -> str:
        with open(self.log) as f:
            f.seek(start)
            return f.read()

    def env(self) -> Dict[str, str]:
        """Environment for a client of this daemon."""
        env = dict(os.environ)
        env["JOBFS_MASTER_PORT"] = str(self.master_port)
        env["JOBFS_WORKER_PORT"] = str(self.worker_port)
        env["PYTHONPATH"] = PKG
        return env

    def kw(self) -> Dict[str, object]:
        return {"master_port": self.master_port, "worker_port": self.worker_port}

    def stop(self) -> None:
        """SIGTERM; the daemon must exit 0 with a clean sanitizer log."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("jobfs did not exit within 20 s of SIGTERM")
        text = open(self.log).read()
        assert rc == 0, f"jobfs exited with {rc}:\n{text[-4000:]}"
        assert not SANITIZER.search(text), text[-8000:]

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(str(tmp_path_factory.mktemp("jobfs"))).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def make_daemon(tmp_path):
    """make_daemon(*args): a daemon of the test's own, stopped after it."""
    made: List[Daemon] = []

    def make(*args: str) -> Daemon:
        sub = os.path.join(str(tmp_path), f"d{len(made)}")
        os.makedirs(sub, exist_ok=True)
        d = Daemon(sub, *args).start()
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


@pytest.fixture
def procs():
    """spawn(script, env): a Python subprocess, killed after the test."""
    started: List[subprocess.Popen] = []

    def spawn(code: str, env: Dict[str, str], **kw) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", code], env=env, **kw)
        started.append(p)
        return p
    yield spawn
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


class Workers:
    """In-process workers on a background event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.futs: list = []
        self.ws: list = []

    def start(self, w):
        import jobfs
        self.ws.append(w)
        self.futs.append(asyncio.run_coroutine_threadsafe(jobfs.serve(w), self.loop))
        return w

    def close(self) -> None:
        for w in self.ws:
            self.loop.call_soon_threadsafe(w.stop)
        for f in self.futs:
            try:
                f.result(10)
            except BaseException:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def workers():
    """workers.start(jobfs.Worker(...)): served until the test ends."""
    w = Workers()
    yield w
    w.close()


# ---- TAP ----
class Tap:
    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "w", buffering=1)
        self.n = 0
        self.failed: Dict[str, str] = {}

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


_tap: Optional[Tap] = None


def pytest_configure(config):
    global _tap
    fd = os.environ.get("JOBFS_TAP_FD")
    if fd:
        _tap = Tap(int(fd))


def pytest_collection_finish(session):
    if _tap is not None:
        _tap.line(f"1..{len(session.items)}")


def pytest_runtest_logreport(report):
    if _tap is None:
        return
    if report.failed:
        _tap.failed.setdefault(report.nodeid, report.longreprtext)
    if report.when == "teardown":
        _tap.n += 1
        name = report.nodeid.split("::", 1)[-1]
        text = _tap.failed.pop(report.nodeid, None)
        if text is None:
            _tap.line(f"ok {_tap.n} {name}")
        else:
            _tap.line(f"not ok {_tap.n} {name}")
            for ln in text.splitlines()[-30:]:
                _tap.line("# " + ln)
