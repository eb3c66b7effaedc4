#!/usr/bin/env python3
"""slow_sub.py PORT CHANNEL DIR — a channel subscriber that stops reading.

Subscribes to CHANNEL on the master port, waits for the pong of a ping (so
the subscription is in place), creates DIR/ready, then reads nothing until
DIR/go exists.  From then on it reads every frame until one whose body has
a "last" key, and writes what it received to DIR/got (one frame per line).
The socket's receive buffer is kept small so the daemon's backlog for it
builds up quickly.
"""
import json
import os
import socket
import struct
import sys
import time


def send(sock, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def frames(sock):
    buf = b""
    while True:
        while len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            yield buf[4:4 + n]
            buf = buf[4 + n:]
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        buf += chunk


def main():
    port, channel, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.connect(("127.0.0.1", port))
    send(sock, {"type": "subscribe", "channel": channel})
    send(sock, {"type": "ping"})
    it = frames(sock)
    first = json.loads(next(it))
    assert first == {"type": "pong"}, first
    open(os.path.join(d, "ready"), "w").close()
    # Only a bound so that a helper left behind ends: a loaded machine
    # under ASan takes minutes to publish the flood.
    deadline = time.time() + 900
    while not os.path.exists(os.path.join(d, "go")):
        if time.time() > deadline:
            sys.exit("no go")
        time.sleep(0.02)
    with open(os.path.join(d, "got.tmp"), "w") as out:
        for raw in it:
            m = json.loads(raw)
            body = m.get("body")
            # Keep the record small: the sequence number, not the padding.
            if isinstance(body, dict) and "pad" in body:
                m["body"] = {"seq": body.get("seq"), "pad": len(body["pad"])}
            out.write(json.dumps(m, separators=(",", ":")) + "\n")
            if isinstance(body, dict) and "last" in body:
                break
    os.rename(os.path.join(d, "got.tmp"), os.path.join(d, "got"))


main()
