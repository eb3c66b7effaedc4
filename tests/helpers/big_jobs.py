#!/usr/bin/env python3
"""big_jobs.py MPORT WPORT TYPE N SIZE PREFIX — large jobs run to the end
(4-byte big-endian length frames, JSON).

One worker answers every job with {"r":BODY}; one master submits N jobs
(ids PREFIX<I>, I from 0; each body a JSON string of SIZE bytes naming its
id), at most 4 outstanding, and checks every result byte for byte.
Prints "ok N" once all N results were right, else the first wrong frame
on stderr and exits 1.
"""
import json
import socket
import struct
import sys
import threading


def frame(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
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


def body_of(prefix, i, size):
    tag = "%s%d-" % (prefix, i)
    return tag + "x" * (size - 2 - len(tag))   # its JSON text is SIZE bytes


def worker(port, jtype):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(frame({"type": "join", "job_type": jtype}))
    while True:
        f = read_frame(s)
        if f is None:
            return
        if f.get("type") == "job":
            s.sendall(frame({"type": "response", "id": f["id"], "body": {"r": f["body"]}}))


def main():
    mport, wport, jtype, n, size, prefix = sys.argv[1:7]
    mport, wport, n, size = int(mport), int(wport), int(n), int(size)
    threading.Thread(target=worker, args=(wport, jtype), daemon=True).start()
    m = socket.create_connection(("127.0.0.1", mport))
    sent = done = 0
    while done < n:
        while sent < n and sent - done < 4:
            m.sendall(frame({"type": "job", "job_type": jtype, "id": "%s%d" % (prefix, sent),
                             "body": body_of(prefix, sent, size)}))
            sent += 1
        f = read_frame(m)
        if f is None:
            print("daemon went away after %d results" % done, file=sys.stderr)
            sys.exit(1)
        i = int(str(f.get("id", ""))[len(prefix):] or -1)
        if f.get("body") != {"r": body_of(prefix, i, size)}:
            print("wrong frame: %.200s" % json.dumps(f), file=sys.stderr)
            sys.exit(1)
        done += 1
    print("ok %d" % done)


main()
