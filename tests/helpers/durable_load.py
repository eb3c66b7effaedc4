#!/usr/bin/env python3
"""durable_load.py MODE ... — load and checks for the durability tests
(4-byte big-endian length frames, JSON).

  load MPORT WPORT TYPE MASTERS N WINDOW OUT [PREFIX]
      One echo worker (capacity 64) answering every job with
      {"echo":BODY}, and MASTERS masters in the later dialect each
      submitting N jobs (ids PREFIX m<M>-<I>, bodies {"n":I}) with at most
      WINDOW unacknowledged.  Each acknowledged id is appended to
      OUT/acked (one per line, written as soon as read), each result to
      OUT/results ("ID BODY"), each error frame to OUT/errors.  Runs until
      every job has ended or the daemon goes away; writes OUT/finished when
      all ended.
  check MPORT OUT
      For every id in OUT/acked, a "status" request: prints one JSON
      object {"acked":N,"states":{STATE:COUNT},"missing":[IDS...]}.
  drain WPORT TYPE OUT
      A worker (capacity 64) that answers every job with {"echo":BODY} and
      appends its id to OUT, until the daemon goes away or it is killed.
  wait MPORT ID...
      One "wait" request per id on one connection; prints each reply.
"""
import json
import os
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
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    head = recv_exact(sock, 4)
    if head is None:
        return None
    data = recv_exact(sock, struct.unpack(">I", head)[0])
    if data is None:
        return None
    return json.loads(data)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def echo_worker(port, typ, out=None):
    s = connect(port)
    s.sendall(frame({"type": "join", "job_type": typ, "capacity": 64}))
    f = open(out, "a", buffering=1) if out else None
    while True:
        m = read_frame(s)
        if m is None:
            return
        if m.get("type") == "ping":
            s.sendall(frame({"type": "pong"}))
            continue
        if m.get("type") != "job":
            continue
        if f:
            f.write(json.dumps(m["id"]) + "\n")
        try:
            s.sendall(frame({"type": "response", "id": m["id"],
                             "body": {"echo": m["body"]}}))
        except OSError:
            return


def master(port, typ, m, n, window, out, prefix, ended):
    s = connect(port)
    sem = threading.Semaphore(window)
    acked = open(os.path.join(out, "acked"), "a", buffering=1)
    results = open(os.path.join(out, "results"), "a", buffering=1)
    errors = open(os.path.join(out, "errors"), "a", buffering=1)
    state = {"ended": 0, "gone": False}

    def reader():
        while True:
            f = read_frame(s)
            if f is None:
                state["gone"] = True
                sem.release()
                return
            if f.get("ok") is True:
                acked.write(f["id"] + "\n")
                sem.release()
            elif "error" in f:
                errors.write(json.dumps(f) + "\n")
                if f["error"] in ("unavailable", "full", "id_exists"):
                    sem.release()   # a refused submission
                state["ended"] += 1
            elif "body" in f:
                results.write(f["id"] + " " +
                              json.dumps(f["body"], separators=(",", ":")) + "\n")
                state["ended"] += 1
            if state["ended"] >= n:
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for i in range(n):
            sem.acquire()
            if state["gone"]:
                break
            s.sendall(frame({"action": "submit", "type": typ,
                             "id": "%sm%d-%d" % (prefix, m, i),
                             "body": {"n": i}}))
    except OSError:
        pass
    t.join()
    ended.append(state["ended"] >= n)


def load(mport, wport, typ, masters, n, window, out, prefix=""):
    w = threading.Thread(target=echo_worker, args=(wport, typ), daemon=True)
    w.start()
    ended = []
    ts = [threading.Thread(target=master,
                           args=(mport, typ, m, n, window, out, prefix, ended))
          for m in range(masters)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if len(ended) == masters and all(ended):
        open(os.path.join(out, "finished"), "w").close()


def check(mport, out):
    ids = [l.strip() for l in open(os.path.join(out, "acked")) if l.strip()]
    s = connect(mport)
    states, missing = {}, []
    for i in range(0, len(ids), 500):
        batch = ids[i:i + 500]
        s.sendall(b"".join(frame({"type": "status", "id": x}) for x in batch))
        for x in batch:
            r = read_frame(s)
            st = r.get("status") if r else None
            if st is None:
                missing.append(x)
            else:
                states[st] = states.get(st, 0) + 1
    print(json.dumps({"acked": len(ids), "states": states,
                      "missing": missing[:20], "nmissing": len(missing)}))


def wait(mport, ids):
    s = connect(mport)
    for x in ids:
        s.sendall(frame({"type": "wait", "id": json.loads(x)}))
    for _ in ids:
        r = read_frame(s)
        print(json.dumps(r, separators=(",", ":")))
        sys.stdout.flush()


def main():
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "load":
        load(int(a[0]), int(a[1]), a[2], int(a[3]), int(a[4]), int(a[5]),
             a[6], a[7] if len(a) > 7 else "")
    elif mode == "check":
        check(int(a[0]), a[1])
    elif mode == "drain":
        echo_worker(int(a[0]), a[1], a[2])
    elif mode == "wait":
        wait(int(a[0]), a[1:])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
