"""Exceptions raised by the jobfs client."""

from __future__ import annotations

import asyncio
from typing import Any, Optional


class JobfsError(Exception):
    """Base class of every error the client raises (except Cancelled)."""


class ConnectionLost(JobfsError, ConnectionError):
    """The connection to the daemon closed while something waited on it."""


class ProtocolError(JobfsError):
    """The daemon answered with an error frame, e.g. ``id_exists``.

    ``code`` is the frame's "error", ``reason`` its "reason" (or "name"
    for ``missing_field``), ``frame`` the whole frame.
    """

    def __init__(self, frame: dict) -> None:
        self.frame = frame
        self.code: str = str(frame.get("error"))
        self.reason: Any = frame.get("reason", frame.get("name"))
        super().__init__(f"{self.code}: {self.reason}")


class AuthError(ProtocolError):
    """The daemon refused the token (``auth_failed``, ``auth_required``)."""


class JobError(JobfsError):
    """A job ended without a result.

    ``id`` is the job's id, ``code`` the ending ("job_failed", "cancelled",
    "timeout", "result_dropped"), ``reason`` the daemon's text and
    ``last_error`` the worker's last failure report, when the daemon sent one.
    """

    def __init__(self, frame: dict) -> None:
        self.frame = frame
        self.id: Any = frame.get("id")
        self.code: str = str(frame.get("error"))
        self.reason: Any = frame.get("reason")
        self.last_error: Any = frame.get("last_error")
        text = f"job {self.id!r} ended: {self.code}"
        if self.last_error is not None:
            text += f" ({self.last_error})"
        elif self.reason is not None and str(self.reason) != str(self.id):
            text += f" ({self.reason})"
        super().__init__(text)


class JobFailed(JobError):
    """The job failed (its worker failed it, or it was lost 4 times)."""


class JobCancelled(JobError):
    """The job was cancelled (by a cancel, its master leaving, a dependency)."""


class JobTimeout(JobError, TimeoutError):
    """The job's own ``timeout`` option passed before it finished."""


class ResultDropped(JobError):
    """The job is done but the daemon no longer keeps its result."""


class WaitTimeout(JobfsError, TimeoutError):
    """``job.result(timeout=...)`` gave up waiting; the job goes on."""


class Cancelled(asyncio.CancelledError):
    """Raised inside a worker's handler when the daemon cancels its job.

    A thread handler sees it from ``job.progress()`` or ``job.check()``;
    an async handler's task is cancelled (``asyncio.CancelledError``, of
    which this is a subclass).
    """


ENDINGS = {
    "job_failed": JobFailed,
    "cancelled": JobCancelled,
    "timeout": JobTimeout,
    "result_dropped": ResultDropped,
}


def ending_error(frame: dict) -> Optional[JobError]:
    """The exception for an ending error frame, or None if it is not one."""
    cls = ENDINGS.get(frame.get("error"))  # type: ignore[arg-type]
    return cls(frame) if cls else None
