#!/usr/bin/env python3
"""Throughput of the asyncio client on `make bench`'s throughput shape.

M masters (jobfs.aio.Client, one connection each) keep K jobs in flight
each; W workers (jobfs.Worker, capacity 1, an async echo handler) answer
them; every body is a JSON string of S bytes, checked on its way back.
By default the workers run in a forked second process (each side then has
a CPU of its own, as the daemon needs the other); --one-process puts both
sides on one event loop.

    python3 clients/python/bench.py --jobfs build/jobfs        # starts one
    python3 clients/python/bench.py --master-port 9998 --worker-port 9999

Prints a "RESULT" line (as tests/bench/loadgen does) and a human line:
jobs/s, and CPU seconds per job of the client processes (user + system,
masters and workers together, and each side).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobfs  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def echo(body, job):
    return body


async def run_workers(args, ready=None) -> None:
    ws = [jobfs.Worker("echo", echo, capacity=1, heartbeat=0, cancel=False,
                       master_port=args.master_port, worker_port=args.worker_port)
          for _ in range(args.W)]
    await jobfs.serve(*ws)


async def run_masters(args) -> float:
    clients = [jobfs.aio.Client(master_port=args.master_port, worker_port=args.worker_port)
               for _ in range(args.M)]
    for c in clients:
        await c.connect()
    # Wait for the workers to have joined.
    while (await clients[0].stats()).get("workers", 0) < args.W:
        await asyncio.sleep(0.01)
    per = args.N // (args.M * args.K)
    pad = "c" * max(0, args.S - 2 - 12)

    async def loop(c, m, k):
        for i in range(per):
            body = f"{m:03d}{k:03d}{i:06d}{pad}"
            job = await c.submit("echo", body)
            if await job.result() != body:
                raise SystemExit(f"wrong result for {job.id}")

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(c, m, k) for m, c in enumerate(clients) for k in range(args.K)))
    secs = time.perf_counter() - t0
    for c in clients:
        await c.close()
    return secs


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-M", type=int, default=4, help="masters (connections)")
    ap.add_argument("-K", type=int, default=64, help="jobs in flight per master")
    ap.add_argument("-W", type=int, default=8, help="workers (connections)")
    ap.add_argument("-S", type=int, default=100, help="body bytes")
    ap.add_argument("-N", type=int, default=200000, help="jobs")
    ap.add_argument("--jobfs", help="start this daemon on free ports for the run")
    ap.add_argument("--master-port", type=int, default=int(os.environ.get("JOBFS_MASTER_PORT", 9998)))
    ap.add_argument("--worker-port", type=int, default=int(os.environ.get("JOBFS_WORKER_PORT", 9999)))
    ap.add_argument("--one-process", action="store_true", help="masters and workers on one loop")
    args = ap.parse_args()
    args.N -= args.N % (args.M * args.K)

    daemon = None
    if args.jobfs:
        args.master_port, args.worker_port = free_port(), free_port()
        daemon = subprocess.Popen([args.jobfs, "-f", "--master-port", str(args.master_port),
                                   "--worker-port", str(args.worker_port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", args.worker_port)).close()
                break
            except OSError:
                time.sleep(0.02)
    child = None
    try:
        if args.one_process:
            async def both():
                wt = asyncio.ensure_future(run_workers(args))
                secs = await run_masters(args)
                wt.cancel()
                await asyncio.gather(wt, return_exceptions=True)
                return secs
            c0 = cpu()
            secs = asyncio.run(both())
            mcpu, wcpu = cpu() - c0, 0.0
        else:
            r, w = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(r)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                c0 = cpu()
                try:
                    asyncio.run(run_workers(args))
                except BaseException:
                    pass
                os.write(w, f"{cpu() - c0}\n".encode())
                os._exit(0)
            os.close(w)
            c0 = cpu()
            secs = asyncio.run(run_masters(args))
            mcpu = cpu() - c0
            os.kill(child, signal.SIGINT)
            wcpu = float(os.read(r, 100).decode() or 0)
            os.waitpid(child, 0)
            child = None
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        dcpu = None
        if daemon is not None:
            dcpu = proc_cpu(daemon.pid)
            daemon.terminate()
            daemon.wait()
    rate = args.N / secs
    print(f"RESULT label=python-asyncio M={args.M} K={args.K} W={args.W} N={args.N} S={args.S} "
          f"secs={secs:.3f} jobs_per_sec={rate:.0f} cpu_us_per_job={(mcpu + wcpu) / args.N * 1e6:.1f} "
          f"master_cpu_us_per_job={mcpu / args.N * 1e6:.1f} worker_cpu_us_per_job={wcpu / args.N * 1e6:.1f}")
    extra = f"; daemon CPU {dcpu / args.N * 1e6:.1f} us/job" if dcpu is not None else ""
    print(f"python asyncio client: {rate:.0f} jobs/s; client CPU {(mcpu + wcpu) / args.N * 1e6:.1f} us/job "
          f"(masters {mcpu / args.N * 1e6:.1f}, workers {wcpu / args.N * 1e6:.1f}){extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
