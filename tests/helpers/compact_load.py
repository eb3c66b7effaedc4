#!/usr/bin/env python3
"""compact_load.py MODE ... — load and checks for the crash-point tests of
compaction (tests/durable_compact.bats).  4-byte big-endian length frames,
JSON, the later dialect (each request acknowledged).

  fill MPORT PREFIX N PAD OUT [WINDOW]
      N detached jobs of type t, ids PREFIX0..PREFIX<N-1>, bodies
      {"n":I,"pad":"xxx..."} (PAD bytes), at most WINDOW (256)
      unacknowledged;
      each acknowledged id is appended to OUT/acked, its body to
      OUT/bodies ("ID BODY").  Stops early if the daemon goes away.
  chain MPORT N OUT
      A detached job "head" of type c (no worker takes it) and N detached
      jobs c1..cN of type c, each waiting for the one before; acknowledged
      ids to OUT/acked.
  cancel MPORT OUT ID...
      Cancels each id (an argument FIRST-LAST means PREFIX<FIRST>..
      PREFIX<LAST> for an argument like q0-999), pipelined; each id sent is
      appended to OUT/cancel_sent, each whose cancel was acknowledged
      (answered "cancelled") to OUT/cancel_acked.  Stops when all are
      answered or the daemon goes away.
  check MPORT WPORT OUT
      After a restart: every acknowledged id must be known exactly once,
      each whose cancel was acknowledged must not be queued (cancelled or
      forgotten), every other must be queued or waiting (one whose cancel
      was sent but not acknowledged may also be cancelled or forgotten);
      then a worker takes every queued job of type t (ids p*, q*) and its
      body must be
      the one submitted.  Prints one JSON object; "bad" is 0 when all held.
"""
import json
import os
import sys
import threading


# The framing is durable_load.py's (beside this file, so on sys.path).
from durable_load import connect, frame, read_frame, recv_exact  # noqa: F401


def submit_all(port, reqs, out, window=256):
    """Send each request, at most window unacknowledged; record the acks."""
    s = connect(port)
    sem = threading.Semaphore(window)
    acked = open(os.path.join(out, "acked"), "a", buffering=1)
    bodies = open(os.path.join(out, "bodies"), "a", buffering=1)
    sent = {}
    state = {"gone": False, "n": 0}

    def reader():
        while state["n"] < len(reqs):
            f = read_frame(s)
            if f is None:
                state["gone"] = True
                sem.release()
                return
            if f.get("ok") is True:
                acked.write(f["id"] + "\n")
                bodies.write(f["id"] + " " + sent[f["id"]] + "\n")
            elif "error" in f:
                sys.stderr.write("refused: %s\n" % json.dumps(f))
            else:
                continue
            state["n"] += 1
            sem.release()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for r in reqs:
            sem.acquire()
            if state["gone"]:
                break
            sent[r["id"]] = json.dumps(r["body"], separators=(",", ":"))
            s.sendall(frame(r))
    except OSError:
        pass
    t.join()
    s.close()


def fill(port, prefix, n, pad, out, window=256):
    reqs = [{"action": "submit", "type": "t", "id": "%s%d" % (prefix, i),
             "detach": True, "body": {"n": i, "pad": "x" * pad}}
            for i in range(n)]
    submit_all(port, reqs, out, window)


def chain(port, n, out):
    reqs = [{"action": "submit", "type": "c", "id": "head", "detach": True,
             "body": {"n": 0}}]
    prev = "head"
    for i in range(1, n + 1):
        reqs.append({"action": "submit", "type": "c", "id": "c%d" % i,
                     "detach": True, "body": {"n": i}, "after": [prev]})
        prev = "c%d" % i
    # Pipelined: each names the one before, known once it is read.
    submit_all(port, reqs, out)


def expand(args):
    ids = []
    for a in args:
        head = a.rstrip("0123456789-")
        rest = a[len(head):]
        if "-" in rest:
            lo, hi = rest.split("-")
            ids += ["%s%d" % (head, i) for i in range(int(lo), int(hi) + 1)]
        else:
            ids.append(a)
    return ids


def cancel(port, out, args):
    ids = expand(args)
    s = connect(port)
    sent = open(os.path.join(out, "cancel_sent"), "a", buffering=1)
    acked = open(os.path.join(out, "cancel_acked"), "a", buffering=1)
    want = set()
    try:
        for x in ids:
            sent.write(x + "\n")
            want.add(x)
            s.sendall(frame({"type": "cancel", "id": x}))
    except OSError:
        pass
    # The canceller hears each ending: "cancelled", or unknown_id.  A job
    # cancelled with others (a chain) is heard only by its submitter.
    while want:
        f = read_frame(s)
        if f is None:
            break
        x = f.get("id")
        if f.get("error") == "cancelled" and x in want:
            acked.write(x + "\n")
        want.discard(x)


def lines(path):
    try:
        return [l.split(" ", 1)[0].strip() for l in open(path) if l.strip()]
    except FileNotFoundError:
        return []


def check(mport, wport, out):
    acked = lines(os.path.join(out, "acked"))
    bodies = {}
    for l in open(os.path.join(out, "bodies")):
        i, b = l.rstrip("\n").split(" ", 1)
        bodies[i] = json.loads(b)
    c_sent = set(lines(os.path.join(out, "cancel_sent")))
    c_acked = set(lines(os.path.join(out, "cancel_acked")))
    # A chain's jobs are cancelled with its head, in the same turn.
    chain = [x for x in acked if x.startswith("c")]
    if "head" in c_sent:
        c_sent.update(chain)
    if "head" in c_acked:
        c_acked.update(chain)
    s = connect(mport)
    status = {}
    for i in range(0, len(acked), 500):
        batch = acked[i:i + 500]
        s.sendall(b"".join(frame({"type": "status", "id": x}) for x in batch))
        for x in batch:
            r = read_frame(s)
            status[x] = r.get("status") or r.get("error") if r else None
    bad = []
    states = {}
    queued = []
    for x in acked:
        st = status[x]
        states[st] = states.get(st, 0) + 1
        if x in c_acked:
            ok = st in ("cancelled", "unknown_id")
        elif x in c_sent:
            ok = st in ("queued", "waiting", "cancelled", "unknown_id")
        else:
            ok = st in ("queued", "waiting")
        if not ok:
            bad.append("%s:%s" % (x, st))
        if st == "queued" and x[0] in "pq":   # type t
            queued.append(x)
    # Every queued job of type t, once, with its body.
    got = {}
    w = connect(wport)
    if queued:
        w.sendall(frame({"type": "join", "job_type": "t", "capacity": 64}))
    while len(got) < len(queued):
        m = read_frame(w)
        if m is None:
            break
        if m.get("type") == "ping":
            w.sendall(frame({"type": "pong"}))
            continue
        if m.get("type") != "job":
            continue
        if m["id"] in got:
            bad.append("%s:twice" % m["id"])
        got[m["id"]] = m["body"]
        w.sendall(frame({"type": "response", "id": m["id"], "body": {}}))
    for x in queued:
        if x not in got:
            bad.append("%s:not-delivered" % x)
        elif got[x] != bodies[x]:
            bad.append("%s:body" % x)
    lost = sum(1 for b in bad if b.endswith(":unknown_id"))
    print(json.dumps({"acked": len(acked), "cancel_acked": len(c_acked),
                      "cancel_sent": len(c_sent), "states": states,
                      "delivered": len(got), "lost": lost,
                      "bad": len(bad), "first_bad": bad[:10]},
                     separators=(",", ":")))


def main():
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "fill":
        fill(int(a[0]), a[1], int(a[2]), int(a[3]), a[4],
             int(a[5]) if len(a) > 5 else 256)
    elif mode == "chain":
        chain(int(a[0]), int(a[1]), a[2])
    elif mode == "cancel":
        cancel(int(a[0]), a[1], a[2:])
    elif mode == "check":
        check(int(a[0]), int(a[1]), a[2])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
