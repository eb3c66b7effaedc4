#!/usr/bin/env python3
"""web_attack.py MODE ... — an attacker's HTTP peers for the web face's
tests (web_guard.bats) and for measuring them by hand.  Bounded: every
mode gives up after LIMIT seconds (default 120) and closes everything.

  bodies PORT N ANNOUNCE SEND DIR [HEADER...]
      Open N connections; on each send the head of
      POST /types/flood/jobs with Content-Length ANNOUNCE (and each
      HEADER, "Name: value"), then up to SEND bytes of the body, never the
      whole of it, stopping early on a connection the daemon answers or
      closes.  Then write to DIR/ready a JSON object: "sent" (body bytes
      the kernel took) and "said" (how many connections got each status
      code, "closed" without an answer, or are still "open"), and hold
      them until DIR/go exists.
  trickle PORT N EVERY DIR
      Open N connections (in batches, as fast as the daemon accepts) and
      on each send the start of a request head that is never finished,
      then one more byte of it every EVERY seconds.  DIR/ready gets the
      number opened once all are, and DIR/closed (rewritten as it
      changes) the number the daemon has closed since; stops when DIR/go
      exists or all are closed.
"""
import json
import os
import selectors
import socket
import sys
import time

LIMIT = float(os.environ.get("WEB_ATTACK_LIMIT", "120"))


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def status_of(data):
    """The status code of a response head, or None."""
    if data.startswith(b"HTTP/1.") and len(data) >= 12:
        return data[9:12].decode(errors="replace")
    return None


def peek(s):
    """What the daemon said on s: a status code, "closed", or None (nothing yet)."""
    try:
        got = s.recv(4096, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    except OSError:
        return "closed"
    return status_of(got) or "closed"


def bodies(port, n, announce, send, d, headers):
    end = time.time() + LIMIT
    head = ("POST /types/flood/jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Length: %d\r\n" % (port, announce))
    for h in headers:
        head += h + "\r\n"
    head = (head + "\r\n").encode()
    chunk = b"[" + b"1," * 32767 + b"1"
    socks, sent = [], 0
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(head)
        s.setblocking(False)
        socks.append(s)
    # Send each its share, round-robin, until every one has sent SEND
    # bytes, been answered or closed, or the daemon stops reading.
    left = {s: min(send, announce - 1) for s in socks}
    stalled = 0
    while left and time.time() < end and stalled < 50:
        progress = False
        for s in list(left):
            if peek(s) is not None:
                del left[s]
                continue
            try:
                k = s.send(chunk[:min(left[s], len(chunk))])
            except BlockingIOError:
                k = 0
            except OSError:
                del left[s]
                continue
            sent += k
            left[s] -= k
            progress = progress or k > 0
            if left[s] == 0:
                del left[s]
        stalled = 0 if progress else stalled + 1
        if not progress:
            time.sleep(0.1)
    time.sleep(0.2)
    said = {}
    for s in socks:
        what = peek(s) or "open"
        said[what] = said.get(what, 0) + 1
    write(os.path.join(d, "ready"), json.dumps({"sent": sent, "said": said}) + "\n")
    while not os.path.exists(os.path.join(d, "go")) and time.time() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()


def trickle(port, n, every, d):
    end = time.time() + LIMIT
    head = b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    sel = selectors.DefaultSelector()
    socks = []
    while len(socks) < n and time.time() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(head)
        except OSError:
            time.sleep(0.05)
            continue
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    write(os.path.join(d, "ready"), "%d\n" % len(socks))
    closed, shown, nextb = set(), -1, time.time() + every
    while time.time() < end and len(closed) < len(socks):
        if os.path.exists(os.path.join(d, "go")):
            break
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                got = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                got = b""
            if not got:
                sel.unregister(s)
                closed.add(s)
        if time.time() >= nextb:
            for s in socks:
                if s in closed:
                    continue
                try:
                    s.send(b"a")
                except OSError:
                    pass
            nextb = time.time() + every
        if len(closed) != shown:
            shown = len(closed)
            write(os.path.join(d, "closed"), "%d\n" % shown)
    write(os.path.join(d, "closed"), "%d\n" % len(closed))
    for s in socks:
        s.close()


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "bodies":
        bodies(int(args[0]), int(args[1]), int(args[2]), int(args[3]), args[4], args[5:])
    elif mode == "trickle":
        trickle(int(args[0]), int(args[1]), float(args[2]), args[3])
    else:
        sys.exit("web_attack.py: unknown mode " + mode)


if __name__ == "__main__":
    main()
