"""Masters, blocking and asyncio, in both dialects, with every job option."""

import asyncio
import datetime
import threading
import time

import pytest

import jobfs
from conftest import wait_until


def echo(body, job):
    return body


@pytest.fixture(params=["seed", "action"])
def dialect(request):
    return request.param


def test_submit_result_status_and_chosen_ids_in_both_dialects(daemon, workers, dialect):
    """submit, id, result, status in both dialects, both sides."""
    workers.start(jobfs.Worker("echo-" + dialect, echo, capacity=4, dialect=dialect, **daemon.kw()))
    c = jobfs.Client(dialect=dialect, **daemon.kw())
    job = c.submit("echo-" + dialect, {"w": 100}, retries=3)
    assert job.result(timeout=30) == {"w": 100}
    st = job.status()
    assert st["status"] == "done" and st["id"] == job.id
    # Integer and chosen ids come back as sent.
    assert c.submit("echo-" + dialect, [1, "two"], id=424242).result(10) == [1, "two"]
    assert c.submit("echo-" + dialect, None, id="mine-" + dialect).id == "mine-" + dialect
    c.close()


def test_action_dialect_submit_raises_its_error(daemon, workers):
    c = jobfs.Client(dialect="action", **daemon.kw())
    c.submit("held-action", 1, id="dup-a", detach=True)
    with pytest.raises(jobfs.ProtocolError) as e:
        c.submit("held-action", 2, id="dup-a")
    assert e.value.code == "id_exists"
    assert c.cancel("dup-a") is True


def test_seed_dialect_submit_error_ends_the_job(daemon):
    c = jobfs.Client(**daemon.kw())
    c.submit("held-seed", 1, id="dup-s")
    j = c.submit("held-seed", 2, id="dup-s")
    with pytest.raises(jobfs.ProtocolError) as e:
        j.result(10)
    assert e.value.code == "id_exists"
    with pytest.raises(jobfs.ProtocolError):
        c.submit("bad/type", 1).result(10)
    assert c.cancel("dup-s") is True


def test_priority(daemon, workers):
    c = jobfs.Client(**daemon.kw())
    jobs = [c.submit("prio", n, priority=n) for n in (1, 5, 3)]
    wait_until(lambda: c.stats("prio")["types"]["prio"]["queued"] == 3)
    order = []
    workers.start(jobfs.Worker("prio", lambda b, j: order.append(b) or b, **daemon.kw()))
    assert [j.result(10) for j in jobs] == [1, 5, 3]
    assert order == [5, 3, 1]


def test_timeout_and_wait_timeout(daemon):
    c = jobfs.Client(**daemon.kw())
    j = c.submit("nobody", 1, timeout=50)
    with pytest.raises(jobfs.JobTimeout) as e:
        j.result(10)
    assert e.value.code == "timeout" and e.value.id == j.id
    assert j.status()["status"] == "timeout"
    k = c.submit("nobody", 2, timeout=datetime.timedelta(seconds=60))
    with pytest.raises(jobfs.WaitTimeout):
        k.result(timeout=0.05)
    assert k.status()["timeout_ms"] == 60000
    assert k.cancel() is True
    with pytest.raises(jobfs.JobCancelled):
        k.result(10)
    assert k.cancel() is False


def test_detach_and_wait_from_another_client(daemon, workers):
    c = jobfs.Client(**daemon.kw())
    kept = c.submit("later", "kept", detach=True)
    gone = c.submit("later", "gone")
    c.close()
    other = jobfs.Client(**daemon.kw())

    def gone_cancelled():
        # A seed-dialect submit is not acknowledged: the daemon may read
        # this connection's status request before the closed one's job.
        try:
            return other.status(gone.id)["status"] == "cancelled"
        except jobfs.ProtocolError as e:
            if e.code != "unknown_id":
                raise
            return False

    wait_until(gone_cancelled)
    assert other.status(kept.id)["status"] == "queued"
    workers.start(jobfs.Worker("later", echo, **daemon.kw()))
    assert other.wait(kept.id, timeout=10) == "kept"
    with pytest.raises(jobfs.JobCancelled):
        other.job(gone.id).result(10)
    with pytest.raises(jobfs.ProtocolError) as e:
        other.status("never-submitted")
    assert e.value.code == "unknown_id"


def test_notify_stream_and_partials(daemon, workers):
    def steps(body, job):
        for i in range(body):
            job.progress({"step": i})
        return "done"
    workers.start(jobfs.Worker("steps", steps, name="stepper", **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("steps", 3, stream=True, notify=True)
    assert list(j.partials(10)) == [{"step": 0}, {"step": 1}, {"step": 2}]
    assert j.result(10) == "done"
    assert j.worker == "stepper"
    # Without stream the master sees only the result.
    k = c.submit("steps", 2)
    assert k.result(10) == "done"
    assert k.worker is None


def test_worker_targeting(daemon, workers):
    workers.start(jobfs.Worker("aim", lambda b, j: "A", name="wa", **daemon.kw()))
    workers.start(jobfs.Worker("aim", lambda b, j: "B", name="wb", **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    assert [c.submit("aim", i, worker="wb").result(10) for i in range(4)] == ["B"] * 4
    assert c.submit("aim", 0, worker="wa").result(10) == "A"


def test_retries_and_backoff(daemon, workers):
    tries = {}

    def flaky(body, job):
        tries[job.id] = tries.get(job.id, 0) + 1
        if tries[job.id] < 3:
            raise RuntimeError(f"attempt {tries[job.id]} failed")
        return tries[job.id]
    workers.start(jobfs.Worker("flaky", flaky, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("flaky", 0, retries=2, backoff=1)
    assert j.result(20) == 3
    st = j.status()
    assert st["retries"] == 2 and len(st["attempts"]) == 3
    assert st["attempts"][0]["error"] == "attempt 1 failed"
    k = c.submit("flaky", 0, retries=1, backoff=datetime.timedelta(milliseconds=1))
    with pytest.raises(jobfs.JobFailed) as e:
        k.result(20)
    assert e.value.last_error == "attempt 2 failed"


def test_delay_and_at(daemon, workers):
    workers.start(jobfs.Worker("soon", echo, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    j = c.submit("soon", "d", delay=60000)
    st = j.status()
    assert st["status"] == "delayed" and st["due"] > time.time() + 30
    assert j.cancel() is True
    at = datetime.datetime.now() + datetime.timedelta(hours=1)
    k = c.submit("soon", "a", at=at)
    assert abs(k.status()["due"] - at.timestamp()) < 1
    assert k.cancel() is True
    # Short ones run once due.
    assert c.submit("soon", "x", delay=20).result(10) == "x"
    assert c.submit("soon", "y", at=int(time.time() * 1000)).result(10) == "y"


def test_after(daemon, workers):
    c = jobfs.Client(**daemon.kw())
    first = c.submit("stage1", 1)
    second = c.submit("stage2", 2, after=[first])
    assert second.status()["status"] == "waiting"
    workers.start(jobfs.Worker("stage2", echo, **daemon.kw()))
    workers.start(jobfs.Worker("stage1", echo, **daemon.kw()))
    assert first.result(10) == 1 and second.result(10) == 2
    failing = c.submit("nobody2", 3, timeout=20)
    blocked = c.submit("stage2", 4, after=[failing.id])
    with pytest.raises(jobfs.JobCancelled):
        blocked.result(10)


def test_stats_list_ping_and_channels(daemon):
    c = jobfs.Client(**daemon.kw())
    c.ping()
    assert "submitted" in c.stats()
    sub = c.subscribe("news")
    other = jobfs.Client(**daemon.kw())
    other.publish("news", {"headline": "hi"})
    assert sub.get(timeout=10) == {"headline": "hi"}
    sub.close()
    page = c.list("queued", limit=5)
    assert "jobs" in page


def test_asyncio_many_in_flight_on_one_connection(daemon, workers):
    workers.start(jobfs.Worker("many", echo, capacity=16, **daemon.kw()))

    async def main():
        async with jobfs.aio.Client(**daemon.kw()) as c:
            jobs = [await c.submit("many", i) for i in range(500)]
            results = await asyncio.gather(*(j.result(30) for j in jobs))
            assert results == list(range(500))
            st = await jobs[0].status()
            assert st["status"] == "done"
            q = await c.submit("nobody3", 1)
            assert await q.cancel() is True
            with pytest.raises(jobfs.JobCancelled):
                await q.result(5)
            s = await c.stats()
            assert s["connections"] >= 2
    asyncio.run(main())


def test_blocking_client_from_threads(daemon, workers):
    workers.start(jobfs.Worker("threads", echo, capacity=8, **daemon.kw()))
    c = jobfs.Client(**daemon.kw())
    out = {}

    def one(n):
        out[n] = c.submit("threads", n).result(20)
    ts = [threading.Thread(target=one, args=(n,)) for n in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == {n: n for n in range(20)}


MASTER_SNIPPET = '''import jobfs
c = jobfs.Client()
job = c.submit("resize", {"w": 100}, retries=3)
print(job.id, job.result(timeout=30))
'''

WORKER_SNIPPET = '''import jobfs
@jobfs.worker("resize", capacity=4)
def resize(body, job):
    job.progress({"pct": 50})
    return {"ok": True}
jobfs.run()          # runs every decorated worker until interrupted
'''


def test_a_worker_and_a_master_in_a_few_lines_each_run_as_they_stand(daemon, procs):
    import signal
    import subprocess
    w = procs(WORKER_SNIPPET, daemon.env())
    m = procs(MASTER_SNIPPET, daemon.env(), stdout=subprocess.PIPE, text=True)
    out, _ = m.communicate(timeout=40)
    assert m.returncode == 0
    assert out.split(" ", 1)[1] == "{'ok': True}\n"
    w.send_signal(signal.SIGINT)
    assert w.wait(10) == 0


def test_cancelling_a_wait_leaves_the_job(daemon, workers):
    async def main():
        async with jobfs.aio.Client(**daemon.kw()) as c:
            j = await c.submit("later2", "x")
            t = asyncio.ensure_future(j.result())
            await asyncio.sleep(0)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            assert not j.done()
            workers.start(jobfs.Worker("later2", echo, **daemon.kw()))
            assert await j.result(10) == "x"
    asyncio.run(main())
