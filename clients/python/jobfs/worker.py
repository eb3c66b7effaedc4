"""Workers: a decorated function serves one job type.

    import jobfs

    @jobfs.worker("resize", capacity=4)
    def resize(body, job):
        job.progress({"pct": 50})
        return {"ok": True}

    jobfs.run()

A plain function runs in a thread (``capacity`` threads per worker); an
``async def`` runs as a task on the event loop.  What it returns is the
job's result; an exception it raises fails the job, with the exception's
text as the error (and the traceback as the job's log).  When the daemon
cancels a job (a cancel, or its timeout), an async handler's task is
cancelled, and a thread handler gets jobfs.Cancelled from its next
job.progress() or job.check() (job.cancelled tells without raising).

The worker reconnects with backoff whenever the connection drops (a daemon
restart), and answers the daemon's heartbeat pings.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import random
import signal
import threading
import traceback
from typing import Any, Callable, Dict, List, Optional

from ._conn import Conn, Settings, open_conn
from .errors import AuthError, Cancelled

log = logging.getLogger("jobfs.worker")

Handler = Callable[[Any, "WorkerJob"], Any]


class WorkerJob:
    """The job a handler runs: ``id``, ``type``, ``body``, progress, cancel."""

    __slots__ = ("worker", "id", "type", "body", "_cancelled", "_conn", "task", "_log")

    def __init__(self, worker: "Worker", conn: Conn, job_id: Any, body: Any) -> None:
        self.worker = worker
        self.id = job_id
        self.type = worker.job_type
        self.body = body
        self._cancelled = False
        self._conn = conn
        self.task: Optional[asyncio.Task] = None
        self._log: Optional[str] = None

    @property
    def cancelled(self) -> bool:
        """True once the daemon cancelled this job (or its worker stopped)."""
        return self._cancelled

    def check(self) -> None:
        """Raise jobfs.Cancelled if the job was cancelled."""
        if self._cancelled:
            raise Cancelled(f"job {self.id!r} was cancelled")

    def progress(self, body: Any) -> None:
        """Send a partial result (streaming masters receive it).

        Safe from the handler's thread or task; raises jobfs.Cancelled if
        the job was cancelled meanwhile."""
        self.check()
        self.worker._call(self.worker._send_job_frame, self, "partial", body)

    def log(self, text: str) -> None:
        """Set the job's log, sent with its answer (the daemon keeps 64 KiB)."""
        self._log = text


class Worker:
    """One connection serving one job type.

    Arguments not given come from the environment as for Client (a
    worker uses the worker port; ``master_port`` is accepted and unused).
    ``capacity`` jobs run at once; ``heartbeat`` (ms, 0 for none) asks the
    daemon to ping when the worker is silent; ``cancel`` asks for cancel
    frames; ``name`` names the worker in the tree and status.  A worker
    with capacity 1, heartbeat 0 and cancel False sends only Gloom's seed
    frames (join and response).
    """

    def __init__(self, job_type: str, handler: Handler, capacity: int = 1,
                 name: Optional[str] = None, heartbeat: int = 5000, cancel: bool = True,
                 dialect: str = "seed", host: Optional[str] = None,
                 master_port: Optional[int] = None, worker_port: Optional[int] = None, token: Optional[str] = None,
                 tls: Optional[bool] = None, ca: Optional[str] = None,
                 cert: Optional[str] = None, key: Optional[str] = None,
                 reconnect: bool = True, backoff_max: float = 5.0) -> None:
        if dialect not in ("seed", "action"):
            raise ValueError("dialect is 'seed' or 'action'")
        self.job_type = job_type
        self.handler = handler
        self.capacity = capacity
        self.name = name
        self.heartbeat = heartbeat
        self.cancel = cancel
        self.dialect = dialect
        self.settings = Settings(host, master_port, worker_port, token, tls, ca, cert, key)
        self.reconnect = reconnect
        self.backoff_max = backoff_max
        self.is_async = inspect.iscoroutinefunction(handler)
        self._k = "action" if dialect == "action" else "type"
        self._ids = capacity > 1 or cancel
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_tid = -1
        self._conn: Optional[Conn] = None
        self._jobs: Dict[str, WorkerJob] = {}
        self._held: List[dict] = []   # answers finished while disconnected
        self._threads: Optional["_Pool"] = None
        self._stopping = False
        self._lost: Optional[asyncio.Future] = None
        #: Number of connections made (1 + reconnects); for tests and logs.
        self.connections = 0
        #: Jobs answered (result or failure).
        self.answered = 0
        #: Heartbeat pings answered.
        self.pings = 0

    # ---- running ----
    async def serve(self) -> None:
        """Connect, join, serve jobs; reconnect with backoff until stop()."""
        self._loop = asyncio.get_running_loop()
        self._loop_tid = threading.get_ident()
        self.settings = self.settings.resolved()
        if not self.is_async and self._threads is None:
            self._threads = _Pool(self.capacity)
        delay = 0.1
        while not self._stopping:
            try:
                await self._session()
                delay = 0.1
            except AuthError:
                raise
            except (OSError, ConnectionError, asyncio.TimeoutError) as e:
                if not self.reconnect:
                    raise
                log.warning("jobfs worker %s: %s; reconnecting in %.1f s", self.job_type, e, delay)
            if self._stopping or not self.reconnect:
                break
            try:
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            except asyncio.CancelledError:
                break
            delay = min(delay * 2, self.backoff_max)

    async def _session(self) -> None:
        loop = self._loop
        assert loop is not None
        self._lost = loop.create_future()
        lost = self._lost

        def on_lost(exc: Optional[Exception]) -> None:
            if not lost.done():
                lost.set_result(exc)

        conn = await open_conn(self.settings, self.settings.worker_port,  # type: ignore[arg-type]
                               self._on_frame, on_lost, self.dialect)
        self._conn = conn
        self.connections += 1
        join: Dict[str, Any]
        if self.dialect == "action":
            join = {"action": "join", "type": self.job_type}
        else:
            join = {"type": "join", "job_type": self.job_type}
        if self.name is not None:
            join["worker"] = self.name
        if self.capacity != 1:
            join["capacity"] = self.capacity
        if self.heartbeat:
            join["heartbeat"] = self.heartbeat
        if self.cancel:
            join["cancel"] = True
        conn.send(join)
        # Answers whose job ended while the daemon was away: with --data the
        # daemon takes them for the queued jobs they name.
        held, self._held = self._held, []
        for msg in held:
            conn.send(msg)
        if self.connections > 1:
            log.info("jobfs worker %s: reconnected", self.job_type)
        exc = await lost
        self._conn = None
        if not self._stopping:
            raise _SessionLost(f"connection lost: {exc or 'closed by the daemon'}")

    def stop(self) -> None:
        """Leave: close the connection (the daemon requeues running jobs)."""
        self._stopping = True
        for job in list(self._jobs.values()):
            job._cancelled = True
            if job.task is not None:
                job.task.cancel()
        if self._conn is not None:
            self._conn.close()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._threads is not None:
            self._threads.stop()

    # ---- frames ----
    def _on_frame(self, msg: dict) -> None:
        kind = msg.get("action", msg.get("type"))
        if kind == "job":
            self._start(msg.get("id"), msg.get("body"))
        elif kind == "ping":
            self.pings += 1
            if self._conn is not None:
                self._conn.send({self._k: "pong"})
        elif kind == "cancel":
            job = self._jobs.pop(_key(msg.get("id")), None)
            if job is not None:
                job._cancelled = True
                if job.task is not None:
                    job.task.cancel()
        elif "error" in msg:
            log.warning("jobfs worker %s: daemon says %s", self.job_type, msg)

    def _start(self, job_id: Any, body: Any) -> None:
        conn = self._conn
        assert conn is not None
        job = WorkerJob(self, conn, job_id, body)
        self._jobs[_key(job_id)] = job
        if self.is_async:
            self._start_async(job)
        else:
            assert self._threads is not None
            self._threads.put(self._run_thread, job)

    def _start_async(self, job: WorkerJob) -> None:
        """Run the handler's coroutine at once, as far as its first wait:
        a handler that never waits answers without a task of its own."""
        coro = self.handler(job.body, job)
        try:
            yielded = coro.send(None)
        except StopIteration as e:
            self._answer(job, "response", e.value)
            return
        except Exception as e:
            self._fail(job, e)
            return
        job.task = asyncio.ensure_future(self._resume(job, coro, yielded))

    async def _resume(self, job: WorkerJob, coro: Any, yielded: Any) -> None:
        """Drive a handler coroutine that waited, as a Task would: wait for
        what it yielded, then send it on; a cancel is thrown into it."""
        while True:
            exc: Optional[BaseException] = None
            try:
                if yielded is None:
                    await asyncio.sleep(0)
                else:
                    try:
                        # The handler's own await marked it; a fresh await
                        # of it must start unmarked.
                        yielded._asyncio_future_blocking = False
                        await yielded
                    except asyncio.CancelledError:
                        if not yielded.cancelled() or job._cancelled:
                            raise
                    except BaseException:
                        pass   # the handler reads it from the future
            except asyncio.CancelledError as e:
                exc = e
            try:
                yielded = coro.throw(exc) if exc is not None else coro.send(None)
            except StopIteration as e:
                self._answer(job, "response", e.value)
                return
            except asyncio.CancelledError:
                if job._cancelled:
                    return
                raise
            except Exception as e:
                self._fail(job, e)
                return

    def _run_thread(self, job: WorkerJob) -> None:
        try:
            result = self.handler(job.body, job)
        except Cancelled:
            return
        except Exception as e:
            self._call(self._fail, job, e)
            return
        self._call(self._answer, job, "response", result)

    def _call(self, fn: Callable, *args: Any) -> None:
        """Run fn on the loop, from the loop's thread or another."""
        loop = self._loop
        assert loop is not None
        if threading.get_ident() == self._loop_tid:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _fail(self, job: WorkerJob, e: BaseException) -> None:
        if job._log is None:
            job._log = "".join(traceback.format_exception(type(e), e, e.__traceback__))[-65536:]
        self._answer(job, "fail", str(e) or type(e).__name__)

    def _frame(self, job: WorkerJob, kind: str, body: Any) -> dict:
        if kind == "response" and self.dialect == "action":
            kind = "respond"
        msg: Dict[str, Any] = {self._k: kind}
        if self._ids:
            msg["id"] = job.id
        msg["body"] = body
        return msg

    def _send_job_frame(self, job: WorkerJob, kind: str, body: Any) -> None:
        if job._cancelled or job._conn is not self._conn or self._conn is None:
            return
        self._conn.send(self._frame(job, kind, body))

    def _answer(self, job: WorkerJob, kind: str, body: Any) -> None:
        if self._jobs.get(_key(job.id)) is job:
            del self._jobs[_key(job.id)]
        if job._cancelled:
            return
        msg = self._frame(job, kind, body)
        if job._log is not None:
            msg["log"] = job._log
        self.answered += 1
        if job._conn is self._conn and self._conn is not None and not self._conn.closed:
            self._conn.send(msg)
        elif self.reconnect and not self._stopping:
            msg["id"] = job.id
            self._held.append(msg)


class _SessionLost(ConnectionError):
    """The worker's connection ended (serve() reconnects)."""


def _key(job_id: Any) -> str:
    return job_id if isinstance(job_id, str) else str(job_id)


class _Pool:
    """Daemon threads for sync handlers (they never hold up the exit)."""

    def __init__(self, n: int) -> None:
        self.q: "queue.SimpleQueue" = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._loop, daemon=True, name="jobfs-worker")
                        for _ in range(n)]
        for t in self.threads:
            t.start()

    def put(self, fn: Callable, *args: Any) -> None:
        self.q.put((fn, args))

    def stop(self) -> None:
        for _ in self.threads:
            self.q.put(None)

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except BaseException:  # never lose a pool thread
                log.exception("jobfs worker thread")


_registry: List[Worker] = []


def worker(job_type: str, capacity: int = 1, **options: Any) -> Callable[[Handler], Handler]:
    """Decorator: ``handler(body, job)`` serves jobs of ``job_type``.

    Options are Worker's (name, heartbeat, cancel, dialect, host,
    worker_port, token, tls, ca, cert, key, reconnect).  jobfs.run()
    runs every decorated handler; the Worker is the handler's ``.worker``.
    """
    def wrap(fn: Handler) -> Handler:
        w = Worker(job_type, fn, capacity=capacity, **options)
        _registry.append(w)
        fn.worker = w  # type: ignore[attr-defined]
        return fn
    return wrap


async def serve(*workers: Worker) -> None:
    """Run the workers (default: every decorated one) until cancelled."""
    ws = list(workers) or list(_registry)
    if not ws:
        raise RuntimeError("no worker: decorate a handler with @jobfs.worker(TYPE)")
    tasks = [asyncio.ensure_future(w.serve()) for w in ws]
    try:
        await asyncio.gather(*tasks)
    finally:
        for w in ws:
            w.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run(*workers: Worker) -> None:
    """Run every decorated worker (or those given) until SIGINT or SIGTERM,
    then leave cleanly (the daemon requeues jobs still running)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(serve(*workers))
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await task
        except asyncio.CancelledError:
            pass
    asyncio.run(main())
