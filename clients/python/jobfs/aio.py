"""The asyncio master client: many jobs in flight on one connection.

    import asyncio, jobfs.aio

    async def main():
        async with jobfs.aio.Client() as c:
            job = await c.submit("resize", {"w": 100}, retries=3)
            print(job.id, await job.result(timeout=30))

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import os
from collections import deque
from typing import Any, AsyncIterator, Callable, Deque, Dict, List, Optional, Union

from ._conn import Conn, Settings, open_conn, raise_for
from .errors import (ConnectionLost, JobfsError, ProtocolError, WaitTimeout,
                     ending_error)

JobId = Union[str, int]

#: Submission options that take milliseconds (a timedelta is converted).
_MS_OPTIONS = ("timeout", "delay", "backoff")


def _key(job_id: Any) -> str:
    """An integer id names the same job as its decimal string."""
    return job_id if isinstance(job_id, str) else str(job_id)


def _ms(value: Any) -> Any:
    if isinstance(value, _dt.timedelta):
        return int(value.total_seconds() * 1000)
    return value


class Job:
    """A job submitted (or looked up) through an asyncio Client."""

    __slots__ = ("client", "id", "type", "_end", "_waiters", "_partials", "on_running", "worker")

    def __init__(self, client: "Client", job_id: JobId, job_type: Optional[str] = None) -> None:
        self.client = client
        #: The id as sent on the wire.
        self.id: JobId = job_id
        #: The job type, when known.
        self.type = job_type
        self._end: asyncio.Future = client._loop.create_future()
        self._partials: Optional[asyncio.Queue] = None
        self._waiters: Optional[List[asyncio.Future]] = None
        #: Called with the notice frame when a worker takes it (notify=True).
        self.on_running: Optional[Callable[[dict], None]] = None
        #: Name of the worker that last took it (notify=True).
        self.worker: Optional[str] = None

    def __repr__(self) -> str:
        return f"<jobfs.aio.Job {self.id!r}>"

    def done(self) -> bool:
        """True once the job has ended (result or error) as far as we know."""
        return self._end.done()

    async def result(self, timeout: Optional[float] = None) -> Any:
        """The job's result, waiting up to ``timeout`` seconds (None: forever).

        Raises JobFailed, JobCancelled, JobTimeout or ResultDropped (all
        JobError) if it ended without one, WaitTimeout if ``timeout`` passed
        first (the job goes on), ConnectionLost if the connection closed.
        """
        if not self._end.done() and self.client._jobs.get(_key(self.id)) is not self:
            await self.client._wait(self)
        end = self._end
        if end.done():
            return end.result()
        if timeout is None:
            # A waiter of our own rather than asyncio.shield (a callback and
            # a loop turn less per job): cancelling this wait leaves the job.
            waiter = self.client._loop.create_future()
            if self._waiters is None:
                self._waiters = [waiter]
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            return end.result()
        # asyncio.wait, not wait_for: JobTimeout is a TimeoutError too.
        await asyncio.wait([self._end], timeout=timeout)
        if not self._end.done():
            raise WaitTimeout(f"job {self.id!r} not finished after {timeout} s")
        return self._end.result()

    async def status(self) -> dict:
        """The job's status object (state, times, worker, attempts...)."""
        return await self.client.status(self.id)

    async def cancel(self) -> bool:
        """Cancel the job; False if it had already ended (or is unknown)."""
        return await self.client.cancel(self.id)

    async def partials(self) -> AsyncIterator[Any]:
        """Each partial result, in order, until the job ends (submit with
        ``stream=True``).  Ends normally however the job ends."""
        q = self._partial_queue()
        while True:
            item = await q.get()
            if item is _END:
                q.put_nowait(_END)
                return
            yield item

    def _partial_queue(self) -> asyncio.Queue:
        if self._partials is None:
            self._partials = asyncio.Queue()
            if self._end.done():
                self._partials.put_nowait(_END)
        return self._partials

    def _finish(self, result: Any = None, exc: Optional[BaseException] = None) -> None:
        if self._end.done():
            return
        if exc is not None:
            self._end.set_exception(exc)
            # Nobody may ask for the result: do not warn about it.
            self._end.add_done_callback(lambda f: f.exception())
        else:
            self._end.set_result(result)
        if self._waiters is not None:
            for w in self._waiters:
                if not w.done():
                    w.set_result(None)
            self._waiters = None
        if self._partials is not None:
            self._partials.put_nowait(_END)


_END = object()


class Subscription:
    """Messages of one channel: ``async for body in sub``."""

    def __init__(self, client: "Client", channel: str) -> None:
        self.client = client
        self.channel = channel
        self.queue: asyncio.Queue = asyncio.Queue()
        #: Messages the daemon says this connection missed (a slow reader).
        self.missed = 0

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    async def get(self, timeout: Optional[float] = None) -> Any:
        """The next message's body."""
        if timeout is None or not self.queue.empty():
            return await self.queue.get()
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeout(f"no message on {self.channel!r} after {timeout} s") from None

    async def close(self) -> None:
        """Unsubscribe."""
        await self.client.unsubscribe(self.channel)


class Client:
    """An asyncio master connection to jobfs.

    Arguments left None come from the environment (see Settings):
    JOBFS_HOST, JOBFS_MASTER_PORT, JOBFS_TOKEN / JOBFS_TOKEN_FILE, JOBFS_TLS,
    JOBFS_CA, JOBFS_CERT, JOBFS_KEY.  ``dialect`` is "seed" (Gloom's
    ``"type"`` messages, no acknowledgements) or "action" (the later
    dialect: each submission is acknowledged, so submit() raises its errors).
    The connection opens at the first request, and again at the first
    request after it was lost.
    """

    def __init__(self, host: Optional[str] = None, master_port: Optional[int] = None,
                 worker_port: Optional[int] = None, token: Optional[str] = None,
                 tls: Optional[bool] = None, ca: Optional[str] = None,
                 cert: Optional[str] = None, key: Optional[str] = None,
                 dialect: str = "seed") -> None:
        if dialect not in ("seed", "action"):
            raise ValueError("dialect is 'seed' or 'action'")
        self.settings = Settings(host, master_port, worker_port, token, tls, ca, cert, key).resolved()
        self.dialect = dialect
        self._k = "action" if dialect == "action" else "type"
        self._tk = "type" if dialect == "action" else "job_type"
        self._conn: Optional[Conn] = None
        self._connecting: Optional[asyncio.Future] = None
        self._jobs: Dict[str, Job] = {}          # submitted here, not ended
        self._waits: Dict[str, List[Job]] = {}   # handles waiting on others' jobs
        self._acks: Dict[str, asyncio.Future] = {}
        self._status: Dict[str, Deque[asyncio.Future]] = {}
        self._cancels: Dict[str, Deque[asyncio.Future]] = {}
        self._kicks: Dict[str, Deque[asyncio.Future]] = {}
        self._fifo: Deque[asyncio.Future] = deque()   # replies without an id
        self._subs: Dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._prefix = os.urandom(6).hex() + "-"
        #: Called with each frame the client could not place (for debugging).
        self.on_unexpected: Optional[Callable[[dict], None]] = None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        # The loop it is used from: a Client may be made before asyncio.run().
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.get_event_loop()

    # ---- connection ----
    async def connect(self) -> "Client":
        """Open the connection now (requests open it when needed)."""
        await self._ensure()
        return self

    async def _ensure(self) -> Conn:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._connecting is None:
            self._connecting = self._loop.create_future()
            try:
                self._conn = await open_conn(self.settings, self.settings.master_port,  # type: ignore[arg-type]
                                             self._on_frame, self._on_lost, self.dialect)
                for ch in self._subs:
                    self._conn.send({self._k: "subscribe", "channel": ch})
                self._connecting.set_result(None)
            except BaseException as e:
                self._connecting.set_exception(e)
                self._connecting.exception()
                raise
            finally:
                self._connecting = None
            return self._conn
        await asyncio.shield(self._connecting)
        assert self._conn is not None
        return self._conn

    async def close(self) -> None:
        """Close the connection.  Jobs not submitted with detach=True that
        are still queued are cancelled by the daemon."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._fail_all(ConnectionLost("client closed"))

    async def __aenter__(self) -> "Client":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _on_lost(self, exc: Optional[Exception]) -> None:
        self._conn = None
        self._fail_all(ConnectionLost(f"connection to jobfs lost: {exc or 'closed by the daemon'}"))

    def _fail_all(self, err: Exception) -> None:
        for job in list(self._jobs.values()):
            job._finish(exc=err)
        self._jobs.clear()
        for lst in self._waits.values():
            for job in lst:
                job._finish(exc=err)
        self._waits.clear()
        futs: List[asyncio.Future] = list(self._acks.values()) + list(self._fifo)
        for d in itertools.chain(self._status.values(), self._cancels.values(), self._kicks.values()):
            futs.extend(d)
        for f in futs:
            if not f.done():
                f.set_exception(err)
                f.exception()
        self._acks.clear()
        self._fifo.clear()
        self._status.clear()
        self._cancels.clear()
        self._kicks.clear()

    # ---- frames from the daemon ----
    def _on_frame(self, msg: dict) -> None:
        if "id" in msg:
            key = _key(msg["id"])
            if "status" in msg and "submitted" in msg:
                # A status reply (its "error" is the job's last error).
                fut = self._pop(self._status, key)
                if fut is not None:
                    fut.set_result(msg)
            elif "error" in msg:
                self._on_error_with_id(key, msg)
            elif "body" in msg:
                if msg.get("partial") is True:
                    job = self._jobs.get(key)
                    if job is not None:
                        job._partial_queue().put_nowait(msg["body"])
                else:
                    self._end(key, msg["body"], None)
            elif msg.get("ok") is True and key in self._acks:
                self._acks.pop(key).set_result(msg)
            elif "kicked" in msg and key in self._kicks:
                self._pop(self._kicks, key).set_result(msg)
            elif "status" in msg:
                # A running notice (notify).
                job = self._jobs.get(key)
                if job is not None:
                    job.worker = msg.get("worker")
                    if job.on_running is not None:
                        job.on_running(msg)
            else:
                self._unexpected(msg)
            return
        kind = msg.get("action", msg.get("type"))
        if kind == "message":
            sub = self._subs.get(msg.get("channel"))  # type: ignore[arg-type]
            if sub is not None:
                sub.missed += int(msg.get("missed") or 0)
                sub.queue.put_nowait(msg.get("body"))
            return
        if self._fifo:
            fut = self._fifo.popleft()
            if not fut.done():
                if "error" in msg:
                    try:
                        raise_for(msg)
                    except ProtocolError as e:
                        fut.set_exception(e)
                else:
                    fut.set_result(msg)
            return
        self._unexpected(msg)

    def _on_error_with_id(self, key: str, msg: dict) -> None:
        err = ending_error(msg)
        if err is not None:
            self._end(key, None, err)
            return
        code = msg.get("error")
        if key in self._acks:
            fut = self._acks.pop(key)
            try:
                raise_for(msg)
            except ProtocolError as e:
                fut.set_exception(e)
            self._end(key, None, ProtocolError(msg), own_only=True)
            return
        if code == "unknown_id":
            for table in (self._status, self._cancels, self._kicks):
                fut = self._pop(table, key)
                if fut is not None:
                    if table is self._cancels:
                        fut.set_result(False)
                    else:
                        fut.set_exception(ProtocolError(msg))
                    return
            waits = self._waits.pop(key, None)
            if waits:
                for job in waits:
                    job._finish(exc=ProtocolError(msg))
                return
        for table in (self._status, self._kicks):
            fut = self._pop(table, key)
            if fut is not None:
                fut.set_exception(ProtocolError(msg))
                return
        if key in self._jobs:
            self._end(key, None, ProtocolError(msg), own_only=True)
            return
        self._unexpected(msg)

    @staticmethod
    def _pop(table: Dict[str, Deque[asyncio.Future]], key: str) -> Optional[asyncio.Future]:
        d = table.get(key)
        if not d:
            return None
        fut = d.popleft()
        if not d:
            del table[key]
        return fut

    def _end(self, key: str, result: Any, exc: Optional[BaseException], own_only: bool = False) -> None:
        job = self._jobs.pop(key, None)
        if job is not None:
            job._finish(result, exc)
        if own_only:
            return
        for other in self._waits.pop(key, ()):
            other._finish(result, exc)

    def _unexpected(self, msg: dict) -> None:
        if self.on_unexpected is not None:
            self.on_unexpected(msg)

    # ---- requests ----
    async def _request(self, msg: dict) -> dict:
        """Send a request whose reply carries no id and comes in order."""
        conn = await self._ensure()
        fut = self._loop.create_future()
        self._fifo.append(fut)
        conn.send(msg)
        return await fut

    async def _keyed(self, table: Dict[str, Deque[asyncio.Future]], key: str, msg: dict) -> Any:
        conn = await self._ensure()
        fut = self._loop.create_future()
        table.setdefault(key, deque()).append(fut)
        conn.send(msg)
        return await fut

    def new_id(self) -> str:
        """A fresh job id, unique to this client."""
        return f"{self._prefix}{next(self._ids)}"

    def _submit_frame(self, job_type: str, body: Any, options: Dict[str, Any]) -> dict:
        job_id = options.pop("id", None)
        if job_id is None:
            job_id = self.new_id()
        if self.dialect == "action":
            msg = {"action": "submit", "id": job_id, "type": job_type, "body": body}
        else:
            # Key order as in gloom.txt.
            msg = {"type": "job", "job_type": job_type, "id": job_id, "body": body}
        for name, value in options.items():
            if value is None:
                continue
            if name in _MS_OPTIONS:
                value = _ms(value)
            elif name == "at" and isinstance(value, _dt.datetime):
                value = int(value.timestamp() * 1000)
            elif name == "after":
                value = [getattr(v, "id", v) for v in value]
            msg[name] = value
        return msg

    async def submit(self, type: str, body: Any = None, **options: Any) -> Job:
        """Submit a job of ``type`` with ``body`` (any JSON value).

        Options, as the protocol names them (None leaves one out):
        ``id`` (default: a fresh unique id), ``priority`` (int, higher
        first), ``timeout`` (ms from submission, or a timedelta),
        ``detach`` (survive this client's disconnect), ``notify`` (set
        job.worker and call job.on_running when a worker takes it),
        ``stream`` (receive partial results: job.partials()), ``worker``
        (only that worker may take it), ``retries`` (0-100), ``backoff``
        (ms), ``delay`` (ms), ``at`` (epoch ms or a datetime), ``after``
        (ids or Jobs it waits for).  Any other keyword is sent as given.

        In the seed dialect there is no acknowledgement: an error such as
        ``id_exists`` ends the job (job.result() raises ProtocolError).  In
        the action dialect submit() awaits the acknowledgement and raises it.
        """
        msg = self._submit_frame(type, body, options)
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._ensure()
        job = Job(self, msg["id"], type)
        key = _key(job.id)
        self._jobs[key] = job
        if self.dialect == "action":
            ack = self._loop.create_future()
            self._acks[key] = ack
            conn.send(msg)
            await ack
        else:
            conn.send(msg)
            if conn.paused:
                await conn.drain()
        return job

    def job(self, job_id: JobId) -> Job:
        """A handle on any job by id: its result() waits (``wait``) for it."""
        own = self._jobs.get(_key(job_id))
        return own if own is not None else Job(self, job_id)

    async def _wait(self, job: Job) -> None:
        lst = self._waits.setdefault(_key(job.id), [])
        if job in lst:
            return
        conn = await self._ensure()
        lst.append(job)
        conn.send({self._k: "wait", "id": job.id})

    async def wait(self, job_id: JobId, timeout: Optional[float] = None) -> Any:
        """The result of any job (``wait``), as Job.result()."""
        return await self.job(job_id).result(timeout)

    async def status(self, job_id: JobId) -> dict:
        """The status object of a job (raises ProtocolError unknown_id)."""
        return await self._keyed(self._status, _key(job_id), {self._k: "status", "id": job_id})

    async def cancel(self, job_id: JobId) -> bool:
        """Cancel a job: True if it was unfinished, False if not (unknown_id)."""
        conn = await self._ensure()
        fut = self._loop.create_future()
        self._cancels.setdefault(_key(job_id), deque()).append(fut)
        conn.send({self._k: "cancel", "id": job_id})
        # A pong after it means the cancel was handled: no unknown_id came.
        await self.ping()
        if not fut.done():
            self._pop(self._cancels, _key(job_id))
            return True
        return fut.result()

    async def ping(self) -> None:
        """Round trip to the daemon: every earlier request was handled."""
        await self._request({self._k: "ping"})

    async def stats(self, job_type: Optional[str] = None) -> dict:
        """Daemon-wide counters (and per type), the "stats" object."""
        msg: Dict[str, Any] = {self._k: "stats"}
        if job_type is not None:
            msg[self._tk] = job_type
        return (await self._request(msg))["stats"]

    async def list(self, state: str, job_type: Optional[str] = None, limit: Optional[int] = None,
                   cursor: Optional[str] = None) -> dict:
        """One page of jobs in ``state``: {"jobs": [...], "next": cursor}."""
        msg: Dict[str, Any] = {self._k: "list", "state": state}
        if job_type is not None:
            msg[self._tk] = job_type
        if limit is not None:
            msg["limit"] = limit
        if cursor is not None:
            msg["cursor"] = cursor
        return await self._request(msg)

    async def kick(self, job_id: Optional[JobId] = None, job_type: Optional[str] = None) -> int:
        """Queue a dead job (or every dead job of a type) again."""
        if job_id is not None:
            r = await self._keyed(self._kicks, _key(job_id), {self._k: "kick", "id": job_id})
        else:
            r = await self._request({self._k: "kick", self._tk: job_type})
        return int(r.get("kicked", 0))

    async def pause(self, job_type: str) -> dict:
        """Stop dispatching jobs of a type (admin)."""
        return await self._request({self._k: "pause", self._tk: job_type})

    async def resume(self, job_type: str) -> dict:
        """Dispatch a paused type's jobs again (admin)."""
        return await self._request({self._k: "resume", self._tk: job_type})

    async def configure(self, job_type: str, **settings: Any) -> dict:
        """Set a type's ``limit``, ``retries`` and ``backoff`` (admin)."""
        msg: Dict[str, Any] = {self._k: "configure", self._tk: job_type}
        msg.update(settings)
        return await self._request(msg)

    async def publish(self, channel: str, body: Any) -> None:
        """Send ``body`` to every subscriber of ``channel``."""
        conn = await self._ensure()
        conn.send({self._k: "publish", "channel": channel, "body": body})

    async def subscribe(self, channel: str) -> Subscription:
        """Receive the messages of ``channel`` published from now on."""
        sub = self._subs.get(channel)
        if sub is None:
            sub = self._subs[channel] = Subscription(self, channel)
            conn = await self._ensure()
            conn.send({self._k: "subscribe", "channel": channel})
            await self.ping()
        return sub

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        if self._subs.pop(channel, None) is not None and self._conn is not None:
            self._conn.send({self._k: "unsubscribe", "channel": channel})


__all__ = ["Client", "Job", "Subscription", "JobfsError"]
