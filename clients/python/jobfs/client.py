"""The blocking master client.

    import jobfs
    c = jobfs.Client()
    job = c.submit("resize", {"w": 100}, retries=3)
    print(job.id, job.result(timeout=30))

It drives a jobfs.aio.Client on an event loop in a background thread (one
per process, shared by every blocking Client), so a blocking Client may be
used from several threads at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Coroutine, Iterator, Optional, TypeVar

from . import aio
from .errors import WaitTimeout

T = TypeVar("T")

_loop: Optional[asyncio.AbstractEventLoop] = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            t = threading.Thread(target=loop.run_forever, daemon=True, name="jobfs-client")
            t.start()
            _loop = loop
        return _loop


def _run(coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
    fut = asyncio.run_coroutine_threadsafe(coro, _background_loop())
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        if fut.done():
            raise   # the coroutine's own error (JobTimeout, WaitTimeout)
        fut.cancel()
        raise WaitTimeout(f"no answer after {timeout} s") from None


class Job:
    """A job submitted (or looked up) through a blocking Client."""

    def __init__(self, client: "Client", job: aio.Job) -> None:
        self.client = client
        self._job = job

    @property
    def id(self) -> aio.JobId:
        """The job's id, as sent on the wire."""
        return self._job.id

    @property
    def worker(self) -> Optional[str]:
        """Name of the worker that last took it (submitted with notify=True)."""
        return self._job.worker

    def __repr__(self) -> str:
        return f"<jobfs.Job {self.id!r}>"

    def done(self) -> bool:
        """True once the job has ended, as far as this client knows."""
        return self._job.done()

    def result(self, timeout: Optional[float] = None) -> Any:
        """The job's result, waiting up to ``timeout`` seconds (None: forever).

        Raises JobFailed, JobCancelled, JobTimeout, ResultDropped (JobError)
        if it ended without a result, WaitTimeout if ``timeout`` passed first.
        """
        return _run(self._job.result(timeout))

    def status(self) -> dict:
        """The job's status object: "status" (queued, running, done...) and more."""
        return _run(self._job.status())

    def cancel(self) -> bool:
        """Cancel the job; False if it had already ended."""
        return _run(self._job.cancel())

    def partials(self, timeout: Optional[float] = None) -> Iterator[Any]:
        """Each partial result until the job ends (submitted with stream=True)."""
        agen = self._job.partials()
        while True:
            try:
                yield _run(agen.__anext__(), timeout)
            except StopAsyncIteration:
                return


class Subscription:
    """Messages of one channel: ``for body in sub`` or ``sub.get(timeout)``."""

    def __init__(self, sub: aio.Subscription) -> None:
        self._sub = sub
        self.channel = sub.channel

    def get(self, timeout: Optional[float] = None) -> Any:
        """The next message's body; WaitTimeout after ``timeout`` seconds."""
        return _run(self._sub.get(timeout))

    def __iter__(self) -> Iterator[Any]:
        while True:
            yield self.get()

    def close(self) -> None:
        """Unsubscribe."""
        _run(self._sub.close())


class Client:
    """A blocking master connection to jobfs.

    Arguments left None come from the environment: JOBFS_HOST,
    JOBFS_MASTER_PORT, JOBFS_WORKER_PORT, JOBFS_TOKEN or JOBFS_TOKEN_FILE,
    JOBFS_TLS, JOBFS_CA, JOBFS_CERT, JOBFS_KEY.  ``dialect`` is "seed" or
    "action" (see jobfs.aio.Client).  The connection opens at the first
    request.
    """

    def __init__(self, host: Optional[str] = None, master_port: Optional[int] = None,
                 worker_port: Optional[int] = None, token: Optional[str] = None,
                 tls: Optional[bool] = None, ca: Optional[str] = None,
                 cert: Optional[str] = None, key: Optional[str] = None,
                 dialect: str = "seed") -> None:
        async def make() -> aio.Client:
            return aio.Client(host, master_port, worker_port, token, tls, ca, cert, key, dialect)
        self._c: aio.Client = _run(make())
        self.settings = self._c.settings

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (queued jobs without detach are cancelled)."""
        _run(self._c.close())

    def submit(self, type: str, body: Any = None, **options: Any) -> Job:
        """Submit a job; see jobfs.aio.Client.submit for the options
        (id, priority, timeout, detach, notify, stream, worker, retries,
        backoff, delay, at, after)."""
        return Job(self, _run(self._c.submit(type, body, **options)))

    def job(self, job_id: aio.JobId) -> Job:
        """A handle on any job by id (result() waits for it)."""
        async def get() -> aio.Job:
            return self._c.job(job_id)
        return Job(self, _run(get()))

    def wait(self, job_id: aio.JobId, timeout: Optional[float] = None) -> Any:
        """The result of any job by id, as Job.result()."""
        return self.job(job_id).result(timeout)

    def status(self, job_id: aio.JobId) -> dict:
        """A job's status object."""
        return _run(self._c.status(job_id))

    def cancel(self, job_id: aio.JobId) -> bool:
        """Cancel a job; False if it had already ended or is unknown."""
        return _run(self._c.cancel(job_id))

    def ping(self) -> None:
        """Round trip to the daemon."""
        _run(self._c.ping())

    def stats(self, job_type: Optional[str] = None) -> dict:
        """The daemon's counters."""
        return _run(self._c.stats(job_type))

    def list(self, state: str, job_type: Optional[str] = None, limit: Optional[int] = None,
             cursor: Optional[str] = None) -> dict:
        """One page of the jobs in a state."""
        return _run(self._c.list(state, job_type, limit, cursor))

    def kick(self, job_id: Optional[aio.JobId] = None, job_type: Optional[str] = None) -> int:
        """Queue dead jobs again."""
        return _run(self._c.kick(job_id, job_type))

    def pause(self, job_type: str) -> dict:
        """Pause a type (admin)."""
        return _run(self._c.pause(job_type))

    def resume(self, job_type: str) -> dict:
        """Resume a type (admin)."""
        return _run(self._c.resume(job_type))

    def configure(self, job_type: str, **settings: Any) -> dict:
        """Set a type's limit, retries, backoff (admin)."""
        return _run(self._c.configure(job_type, **settings))

    def publish(self, channel: str, body: Any) -> None:
        """Publish a message on a channel."""
        _run(self._c.publish(channel, body))

    def subscribe(self, channel: str) -> Subscription:
        """Subscribe to a channel."""
        return Subscription(_run(self._c.subscribe(channel)))
