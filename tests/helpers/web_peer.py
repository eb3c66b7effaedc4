#!/usr/bin/env python3
"""web_peer.py MODE ... — raw peers for the web face's tests.

  answer PORT TYPE ANSWER N
      A raw TCP worker (seed dialect): join TYPE, answer N jobs, each with
      the JSON text ANSWER as its response body.
  stream PORT TYPE DIR
      A raw TCP worker that streams one job's answer: a partial with the
      status and headers and a first chunk, then (once DIR/go exists) a
      second partial, then the final response with the last chunk.
      Writes DIR/job (the job's body) when it has the job.
  slowsse HTTPPORT PATH DIR LAST
      An SSE client with a small receive buffer that reads the response
      head, writes DIR/ready, then reads nothing until DIR/go exists; then
      reads until a data line holds LAST and writes to DIR/result:
      "<data events> <missed total>".
  idlesse HTTPPORT PATH N DIR
      N SSE clients of PATH that read their response heads, write N to
      DIR/ready, then read nothing (a small receive buffer each) until
      DIR/go exists, or 600 s; then close.  Heads that do not come within
      60 s: exit 1.
"""
import json
import os
import socket
import struct
import sys
import time


def send(s, obj):
    data = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(data)) + data)


def recv_frame(s):
    head = b""
    while len(head) < 4:
        got = s.recv(4 - len(head))
        if not got:
            return None
        head += got
    n = struct.unpack(">I", head)[0]
    data = b""
    while len(data) < n:
        got = s.recv(n - len(data))
        if not got:
            return None
        data += got
    return json.loads(data)


def next_job(s):
    while True:
        f = recv_frame(s)
        if f is None:
            sys.exit(0)
        if f.get("type") == "job":
            return f
        if f.get("type") == "ping":
            send(s, {"type": "pong"})


def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.02)


def answer(port, jtype, text, n):
    s = socket.create_connection(("127.0.0.1", int(port)))
    send(s, {"type": "join", "job_type": jtype})
    body = json.loads(text)
    for _ in range(int(n)):
        next_job(s)
        send(s, {"type": "response", "body": body})


def stream(port, jtype, d):
    s = socket.create_connection(("127.0.0.1", int(port)))
    send(s, {"type": "join", "job_type": jtype})
    job = next_job(s)
    with open(os.path.join(d, "job"), "w") as f:
        json.dump(job["body"], f)
    send(s, {"type": "partial", "body": {"status": 207, "headers":
         {"Content-Type": "text/plain", "X-Stream": "yes"}, "body": "first\n"}})
    wait_file(os.path.join(d, "go"))
    send(s, {"type": "partial", "body": "second\n"})
    send(s, {"type": "response", "body": {"body": "last\n"}})
    s.recv(1)  # until the daemon or the test closes


def slowsse(port, path, d, last):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", int(port)))
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
               % path).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1)
    # A chunk boundary may fall anywhere in an event: take the events from
    # the chunks' payload, as an EventSource does.
    chunked = b"transfer-encoding: chunked" in buf.lower()
    open(os.path.join(d, "ready"), "w").close()
    wait_file(os.path.join(d, "go"))
    data = 0
    missed = 0
    pending = ""
    text = ""
    raw = b""
    left = 0   # payload bytes still due in the current chunk
    while True:
        got = s.recv(65536)
        if not got:
            break
        if chunked:
            raw += got
            got = b""
            while raw:
                if left > 0:
                    take = raw[:left]
                    got += take
                    raw = raw[len(take):]
                    left -= len(take)
                    continue
                # CRLF after a chunk's payload, then the next size line
                if raw.startswith(b"\r\n"):
                    raw = raw[2:]
                    continue
                end = raw.find(b"\r\n")
                if end < 0:
                    break
                left = int(raw[:end].split(b";")[0], 16)
                raw = raw[end + 2:]
        text += got.decode("utf-8", "replace")
        lines = text.split("\n")
        text = lines.pop()
        done = False
        for line in lines:
            if line.startswith("event: missed"):
                pending = "missed"
            elif line.startswith("data: "):
                if pending == "missed":
                    missed += int(line[6:])
                else:
                    data += 1
                    if last in line:
                        done = True
                pending = ""
        if done:
            break
    with open(os.path.join(d, "result"), "w") as f:
        f.write("%d %d\n" % (data, missed))


def idlesse(port, path, n, d):
    socks = []
    for i in range(int(n)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", int(port)))
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
                   "Accept: text/event-stream\r\n\r\n" % (path, port)).encode())
        socks.append(s)
    end = time.time() + 60
    for s in socks:
        s.settimeout(max(0.1, end - time.time()))
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = s.recv(1)
            if not got:
                sys.exit(1)
            buf += got
    with open(os.path.join(d, "ready.tmp"), "w") as f:
        f.write("%d\n" % len(socks))
    os.rename(os.path.join(d, "ready.tmp"), os.path.join(d, "ready"))
    end = time.time() + 600
    while not os.path.exists(os.path.join(d, "go")) and time.time() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    {"answer": answer, "stream": stream, "slowsse": slowsse,
     "idlesse": idlesse}[mode](*sys.argv[2:])
