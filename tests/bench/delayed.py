#!/usr/bin/env python3
"""delayed.py — the delayed-jobs row (make bench runs it after run.sh).

  delayed.py JOBFS [N_DUE] [N_WAIT]

Starts JOBFS on free loopback ports and measures:
  1. immediate: N_DUE jobs (100-byte bodies) submitted at once to W=8 idle
     workers of capacity 64: jobs/s from first submit to last reply;
  2. due at once: N_DUE jobs submitted with the same "at" (2 s ahead) while
     the same workers idle: jobs/s from the due time to the last reply;
     the ratio to 1 is the row's figure (target >= 0.8);
  3. idle: N_WAIT jobs delayed by an hour, then the daemon's CPU time
     (utime + stime, /proc/PID/stat) over 10 s of waiting (target: ~0).
Workers and the master are this process (one select loop, no JSON parsing
on the hot path), so the same client cost is in 1 and 2.
"""
import json, os, select, socket, struct, subprocess, sys, time

JOBFS = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
NW = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
W, CAP = 8, 64


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def frame(obj_bytes):
    return struct.pack(">I", len(obj_bytes)) + obj_bytes


def conn(port):
    for _ in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            time.sleep(0.05)
    sys.exit("cannot connect")


def frames_in(buf):
    out, off = [], 0
    while len(buf) - off >= 4:
        n = struct.unpack_from(">I", buf, off)[0]
        if len(buf) - off - 4 < n:
            break
        out.append(bytes(buf[off + 4:off + 4 + n]))
        off += 4 + n
    return out, buf[off:]


def request(mport, obj):
    s = conn(mport)
    s.sendall(frame(json.dumps(obj).encode()))
    buf = b""
    while True:
        fr, buf = frames_in(buf + s.recv(1 << 20))
        if fr:
            s.close()
            return json.loads(fr[0])


def clock_ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def run(mport, wport, n, at_ms, label):
    body = json.dumps("x" * 98).encode()
    workers = []
    for _ in range(W):
        w = conn(wport)
        w.sendall(frame(b'{"type":"join","job_type":"bench","capacity":%d}' % CAP))
        workers.append([w, b""])
    time.sleep(0.3)
    m = conn(mport)
    extra = b',"at":%d' % at_ms if at_ms else b""
    base = int(time.time() * 1000) % 1000000000 * 1000
    out = b"".join(frame(b'{"type":"job","job_type":"bench","id":%d,"body":%s%s}'
                        % (base + i, body, extra)) for i in range(n))
    t0 = time.time()
    m.setblocking(False)
    mbuf, done, sent = b"", 0, 0
    socks = [m] + [w for w, _ in workers]
    while done < n:
        wr = [m] if sent < len(out) else []
        r, wl, _ = select.select(socks, wr, [], 30)
        if not r and not wl:
            sys.exit("%s: stalled at %d of %d" % (label, done, n))
        if wl:
            try:
                sent += m.send(out[sent:sent + (1 << 20)])
            except BlockingIOError:
                pass
        for s in r:
            data = s.recv(1 << 20)
            if not data:
                sys.exit("%s: connection closed" % label)
            if s is m:
                fr, mbuf = frames_in(mbuf + data)
                done += len(fr)
                continue
            for wk in workers:
                if wk[0] is s:
                    fr, wk[1] = frames_in(wk[1] + data)
                    # {"type":"job","id":ID,"body":...}: answer with the id
                    rep = b"".join(frame(b'{"type":"response","id":%s,"body":1}'
                                         % f[19:f.index(b',"body"')]) for f in fr)
                    s.sendall(rep)
    t1 = time.time()
    start = max(t0, at_ms / 1000.0) if at_ms else t0
    for w, _ in workers:
        w.close()
    m.close()
    return n / (t1 - start), t1 - start


def main():
    mport, wport = free_port(), free_port()
    log = open("/tmp/delayed_bench.log", "w")
    d = subprocess.Popen([JOBFS, "-f", "-q", "--master-port", str(mport), "--worker-port",
                          str(wport), "--keep", "0", "--max-jobs", "2000000",
                          "--max-memory", str(4 << 30)], stdout=log, stderr=log)
    try:
        conn(mport).close()
        r1, s1 = run(mport, wport, N, 0, "immediate")
        print("immediate: %d jobs in %.2f s = %.0f jobs/s" % (N, s1, r1))
        at = int(time.time() * 1000) + 2000 + N // 50
        r2, s2 = run(mport, wport, N, at, "due at once")
        print("due at once: %d jobs in %.2f s after their due time = %.0f jobs/s (%.2f of immediate)"
              % (N, s2, r2, r2 / r1))
        # 3: many jobs waiting on delays; the daemon should sleep.
        m = conn(mport)
        body = json.dumps("x" * 98).encode()
        chunk = 100000
        for c in range(0, NW, chunk):
            m.sendall(b"".join(frame(b'{"type":"job","job_type":"idle","id":"w%d","body":%s,"delay":3600000}'
                                     % (i, body)) for i in range(c, min(NW, c + chunk))))
        while request(mport, {"type": "stats"})["stats"]["delayed"] < NW:
            time.sleep(0.5)
        rss = int([l for l in open("/proc/%d/status" % d.pid) if l.startswith("VmRSS")][0].split()[1])
        time.sleep(1)
        t0, c0 = time.time(), clock_ticks(d.pid)
        time.sleep(10)
        t1, c1 = time.time(), clock_ticks(d.pid)
        hz = os.sysconf("SC_CLK_TCK")
        print("idle: %d delayed jobs waiting, RSS %d MiB; daemon CPU over %.1f s: %d ticks (%.2f%% of a CPU)"
              % (NW, rss // 1024, t1 - t0, c1 - c0, 100.0 * (c1 - c0) / hz / (t1 - t0)))
        m.close()
    finally:
        d.terminate()
        d.wait()


main()
