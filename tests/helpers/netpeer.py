#!/usr/bin/env python3
"""netpeer.py MODE ... — raw TCP peers for the backpressure and connection
limit tests (seed dialect, 4-byte big-endian length frames).

  worker PORT TYPE CAP BYTES N [small]
      Join TYPE with capacity CAP, then N times: read one job frame, and
      write its whole response (a JSON string of BYTES bytes, with the id)
      before reading the next: a write-then-read worker.  With "small" its
      socket buffers are 32 KiB (as are a "first" master's), so that the
      kernel cannot absorb what the daemon does not read.
  master PORT TYPE N BYTES OUT [first]
      Submit N jobs whose body is a JSON string of BYTES bytes and read N
      endings.  With "first", every submission is written before any reply
      is read; else a thread reads while the submissions are written.
      Writes the number of results (frames with "body") to OUT when done.
  hold PORT N DIR
      Open N connections (those refused at connect are counted too), write
      DIR/ready, and hold them until DIR/go exists; then write to DIR/full
      how many received {"error":"full"} and exit.
  partial PORT N LEN SEND DIR
      Open N connections; on each announce a frame of LEN bytes and send
      SEND bytes of it (stopping early if the daemon drops it), then write
      DIR/ready; then wait until DIR/go exists, and write to DIR/full how
      many received {"error":"full"}.
  stall PORT OUT
      Send the header and 3 bytes of a frame, then read: write every frame
      received to OUT (one per line), until the daemon closes.
  dribble PORT HEARTBEAT_MS DIR
      Join type "drip" as a worker with that heartbeat, then send one byte
      of a never-finished frame every 50 ms, without reading, until DIR/go
      exists or the daemon closes the connection.
"""
import json
import os
import select
import socket
import struct
import sys
import threading
import time


def frame(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    head = recv_exact(sock, 4)
    if head is None:
        return None
    data = recv_exact(sock, struct.unpack(">I", head)[0])
    return None if data is None else json.loads(data)


def connect(port, small=False):
    """A connection to the daemon; with small, socket buffers of 32 KiB, so
    that what is not read stays in the daemon's own buffers."""
    s = socket.socket()
    if small:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def worker(port, jtype, cap, nbytes, n, small):
    s = connect(port, small=small)
    s.sendall(frame({"type": "join", "job_type": jtype, "capacity": cap}))
    body = "a" * nbytes
    for _ in range(n):
        while True:
            m = read_frame(s)
            if m is None:
                sys.exit("worker: daemon closed")
            if m.get("type") == "job":
                break
        s.sendall(frame({"type": "response", "id": m["id"], "body": body}))
    time.sleep(600)


def master(port, jtype, n, nbytes, out, first):
    s = connect(port, small=first)
    body = "b" * nbytes
    got = {"results": 0, "endings": 0}

    def reader():
        while got["endings"] < n:
            m = read_frame(s)
            if m is None:
                return
            if "id" in m and ("body" in m or "error" in m):
                got["endings"] += 1
                if "body" in m:
                    got["results"] += 1

    if first:
        for i in range(n):
            s.sendall(frame({"type": "job", "job_type": jtype, "id": i, "body": body}))
        reader()
    else:
        t = threading.Thread(target=reader)
        t.start()
        for i in range(n):
            s.sendall(frame({"type": "job", "job_type": jtype, "id": i, "body": body}))
        t.join()
    with open(out + ".tmp", "w") as f:
        f.write("%d\n" % got["results"])
    os.rename(out + ".tmp", out)


def wait_go(d):
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.02)


def count_full(socks, seconds=3.0):
    """How many of socks received a "full" error frame within seconds."""
    full = 0
    live = [x for x in socks if x is not None]
    bufs = {x: b"" for x in live}
    for x in live:
        x.setblocking(False)
    deadline = time.time() + seconds
    while live and time.time() < deadline:
        r, _, _ = select.select(live, [], [], 0.2)
        for x in r:
            try:
                chunk = x.recv(65536)
            except OSError:
                chunk = b""
            bufs[x] += chunk
            if b'"error":"full"' in bufs[x]:
                full += 1
                live.remove(x)
            elif not chunk:
                live.remove(x)
    return full


def write_result(d, name, value):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write("%d\n" % value)
    os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))


def hold(port, n, d):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(port))
        except OSError:
            socks.append(None)
    open(os.path.join(d, "ready"), "w").close()
    wait_go(d)
    write_result(d, "full", count_full(socks))


def partial(port, n, length, nsend, d):
    socks = []
    chunk = b"x" * (1 << 20)
    for _ in range(n):
        s = connect(port)
        s.setblocking(False)
        socks.append(s)
        left = nsend
        data = struct.pack(">I", length)
        # Send until done, or until the daemon answers (it dropped us).
        idle = 0
        while left > 0 or data:
            if not data:
                k = min(left, len(chunk))
                data = chunk[:k]
                left -= k
            try:
                r, w, _ = select.select([s], [s], [], 0.5)
                if r:
                    break
                if not w:
                    idle += 1
                    if idle > 20:
                        break
                    continue
                idle = 0
                sent = s.send(data)
                data = data[sent:]
            except OSError:
                break
        s.setblocking(True)
    open(os.path.join(d, "ready"), "w").close()
    wait_go(d)
    write_result(d, "full", count_full(socks))


def stall(port, out):
    s = connect(port)
    s.sendall(struct.pack(">I", 100) + b'{"t')
    with open(out, "w") as f:
        while True:
            m = read_frame(s)
            if m is None:
                break
            f.write(json.dumps(m, separators=(",", ":")) + "\n")
            f.flush()
    os.rename(out, out + ".closed")


def dribble(port, hb, d):
    s = connect(port)
    s.sendall(frame({"type": "join", "job_type": "drip", "heartbeat": hb}))
    s.sendall(struct.pack(">I", 1000))
    while not os.path.exists(os.path.join(d, "go")):
        try:
            s.sendall(b" ")
        except OSError:
            break
        time.sleep(0.05)


def main():
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "worker":
        worker(int(a[0]), a[1], int(a[2]), int(a[3]), int(a[4]),
               len(a) > 5 and a[5] == "small")
    elif mode == "master":
        master(int(a[0]), a[1], int(a[2]), int(a[3]), a[4],
               len(a) > 5 and a[5] == "first")
    elif mode == "hold":
        hold(int(a[0]), int(a[1]), a[2])
    elif mode == "partial":
        partial(int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4])
    elif mode == "stall":
        stall(int(a[0]), a[1])
    elif mode == "dribble":
        dribble(int(a[0]), int(a[1]), a[2])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
