"""jobfs: the official Python client of the jobfs job daemon.

Masters submit jobs and wait for results (jobfs.Client, blocking; or
jobfs.aio.Client, asyncio); workers are functions decorated with
@jobfs.worker(TYPE) and run by jobfs.run().  Standard library only.
"""

from . import aio
from .client import Client, Job, Subscription
from .errors import (AuthError, Cancelled, ConnectionLost, JobCancelled, JobError,
                     JobFailed, JobfsError, JobTimeout, ProtocolError, ResultDropped,
                     WaitTimeout)
from .worker import Worker, WorkerJob, run, serve, worker

__version__ = "0.1.0"

__all__ = [
    "Client", "Job", "Subscription", "aio",
    "worker", "Worker", "WorkerJob", "run", "serve",
    "JobfsError", "ConnectionLost", "ProtocolError", "AuthError", "JobError",
    "JobFailed", "JobCancelled", "JobTimeout", "ResultDropped", "WaitTimeout",
    "Cancelled",
]
