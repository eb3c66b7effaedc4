"""Workers: failures, cancels, heartbeats, a killed worker process and a
restarted daemon."""

import asyncio
import os
import signal
import threading

import pytest

import jobfs
from conftest import wait_until


def test_exception_fails_the_job_with_its_text(daemon, workers):
    def bad(body, job):
        raise ValueError("no such image")
    workers.start(jobfs.Worker("bad", bad, **daemon.kw()))

    async def abad(body, job):
        raise KeyError("gone")
    workers.start(jobfs.Worker("abad", abad, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    with pytest.raises(jobfs.JobFailed) as e:
        c.submit("bad", 1, retries=0).result(10)
    assert e.value.last_error == "no such image"
    st = c.status(e.value.id)
    assert st["error"] == "no such image" and "ValueError" in st["log"]
    with pytest.raises(jobfs.JobFailed):
        c.submit("abad", 1).result(10)
    # The worker goes on.
    assert c.submit("bad", 2, retries=0, id="bad-2").status()["id"] == "bad-2"


def test_cancel_raises_in_a_thread_handler(daemon, workers):
    started = threading.Event()
    seen = []

    def slow(body, job):
        started.set()
        try:
            while True:
                job.progress("tick")
                threading.Event().wait(0.01)
        except jobfs.Cancelled:
            seen.append(job.id)
            raise
    w = workers.start(jobfs.Worker("slow", slow, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("slow", 1)
    assert started.wait(10)
    assert j.cancel() is True
    with pytest.raises(jobfs.JobCancelled):
        j.result(10)
    wait_until(lambda: seen == [j.id], what="Cancelled in the handler")
    assert w.connections == 1


def test_timeout_cancels_an_async_handler_task(daemon, workers):
    cancelled = []

    async def hang(body, job):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise
    workers.start(jobfs.Worker("hang", hang, capacity=2, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("hang", 1, timeout=200)
    with pytest.raises(jobfs.JobTimeout):
        j.result(10)
    wait_until(lambda: cancelled == [j.id], what="the task cancelled")
    # A fresh job still runs on the same worker.
    k = c.submit("hang", 2)
    wait_until(lambda: k.status()["status"] == "running")
    assert k.cancel() is True


def test_heartbeat_pings_are_answered_while_a_job_runs(daemon, workers):
    release = threading.Event()

    def hold(body, job):
        release.wait(30)
        return "held"
    # Heartbeats of 500 ms: a loaded machine may hold the worker's loop up
    # for a while, and three missed ones would drop it.
    w = workers.start(jobfs.Worker("beat", hold, heartbeat=500, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("beat", 1)
    # Silent past 3 heartbeats, but it answers every ping: kept.
    wait_until(lambda: w.pings >= 4, what="pings", timeout=20)
    release.set()
    assert j.result(10) == "held"
    st = j.status()
    assert st["losses"] == 0 and w.connections == 1


WORKER_PROC = """
import os, sys, jobfs
@jobfs.worker(sys.argv[1] if len(sys.argv) > 1 else os.environ["T"], capacity=2, heartbeat=1000)
def handle(body, job):
    if body == "hang":
        open(os.environ["MARK"], "w").write(str(job.id))
        import time
        while True:
            time.sleep(1)
    return {"pid": os.getpid(), "body": body}
jobfs.run()
"""


def test_kill9_of_a_worker_process_requeues_its_job(daemon, procs, tmp_path):
    env = daemon.env()
    env["T"] = "k9"
    env["MARK"] = str(tmp_path / "started")
    first = procs(WORKER_PROC, env)
    c = jobfs.Client(**daemon.kw())
    j = c.submit("k9", "hang")
    wait_until(lambda: os.path.exists(env["MARK"]), what="the job started")
    assert c.status(j.id)["status"] == "running"
    first.send_signal(signal.SIGKILL)
    first.wait()
    wait_until(lambda: c.status(j.id)["status"] == "queued", what="requeued")
    # Requeued once; a second worker process finishes jobs meanwhile.
    second = procs(WORKER_PROC, env)
    assert c.submit("k9", "fresh").result(20)["pid"] == second.pid
    st = c.status(j.id)
    assert st["losses"] == 1 and st["requeues"] == 1
    # With retries the loss is a failed attempt, retried after its backoff.
    r = c.submit("k9", "again", retries=2, backoff=1)
    assert r.result(20)["body"] == "again"
    assert c.cancel(j.id) is True


def test_daemon_restart_the_worker_comes_back(make_daemon, procs, tmp_path):
    d = make_daemon("--data", str(tmp_path / "data"))
    env = d.env()
    env["T"] = "phoenix"
    env["MARK"] = str(tmp_path / "unused")
    w = procs(WORKER_PROC, env)
    c = jobfs.Client(**d.kw())
    assert c.submit("phoenix", 1).result(20)["pid"] == w.pid
    d.stop()
    with pytest.raises(OSError):   # ConnectionLost, or refused
        c.submit("phoenix", 2).result(10)
    d.start(same_ports=True)
    # The same worker process reconnects (with backoff) and serves a new job.
    c2 = jobfs.Client(**d.kw())
    assert c2.submit("phoenix", 3).result(30) == {"pid": w.pid, "body": 3}
    # And the old client reconnects at its next request.
    assert c.submit("phoenix", 4).result(30)["body"] == 4
    assert w.poll() is None
    w.send_signal(signal.SIGTERM)
    assert w.wait(10) == 0


def test_async_handlers_that_wait_and_that_do_not(daemon, workers):
    async def waits(body, job):
        await asyncio.sleep(0)
        job.progress("half")
        await asyncio.sleep(0.01)
        if body == "raise":
            raise RuntimeError("after a wait")
        return body * 2

    async def quick(body, job):
        return body + 1
    workers.start(jobfs.Worker("waits", waits, capacity=4, **daemon.kw()))
    workers.start(jobfs.Worker("quick", quick, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("waits", 21, stream=True)
    assert list(j.partials(10)) == ["half"] and j.result(10) == 42
    assert c.submit("quick", 1).result(10) == 2
    with pytest.raises(jobfs.JobFailed) as e:
        c.submit("waits", "raise", retries=0).result(10)
    assert e.value.last_error == "after a wait"
