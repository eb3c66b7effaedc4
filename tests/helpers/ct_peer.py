#!/usr/bin/env python3
"""ct_peer.py PORT CHANNEL ME NPEERS NMSG DIR — one ClusterTalk-style peer.

The peer subscribes to CHANNEL, says it is ready (DIR/ready.ME), waits for
DIR/go, then broadcasts NMSG messages {"from":ME,"seq":1..NMSG,"text":...}
on CHANNEL while reading everything that arrives.  Publishing is paced by
a ping every WINDOW messages (at most two pings unanswered), as a real
peer reading its socket would be, so no subscriber's backlog can pass the
daemon's limit.  It stops once it has every message of all NPEERS peers
(its own included: pub/sub delivers to the publisher too), or after a
deadline, and writes a summary to DIR/result.ME as JSON:

  {"others": N, "own": N, "in_order": bool, "intact": bool,
   "missed": N, "unexpected": N, "per_sender": {ME: N, ...}}
"""
import json
import os
import select
import socket
import struct
import sys
import time

WINDOW = 500


def frame(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


def main():
    port, channel, me, npeers, nmsg, d = sys.argv[1:7]
    port, me, npeers, nmsg = int(port), int(me), int(npeers), int(nmsg)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(frame({"type": "subscribe", "channel": channel}) +
                 frame({"type": "ping"}))
    inbuf = bytearray()
    outbuf = bytearray()
    pongs = 0
    pings = 1
    per_sender = {}
    last_seq = {}
    in_order = intact = True
    missed = unexpected = 0
    ready = False
    sent = 0
    total = npeers * nmsg
    received = 0
    deadline = time.time() + 120
    sock.setblocking(False)

    while received < total or pongs < pings:
        if time.time() > deadline:
            break
        if ready and sent < nmsg and pings - pongs < 2:
            upto = min(nmsg, sent + WINDOW)
            for seq in range(sent + 1, upto + 1):
                outbuf += frame({"type": "publish", "channel": channel,
                                 "body": {"from": me, "seq": seq,
                                          "text": "peer %d message %d" % (me, seq)}})
            outbuf += frame({"type": "ping"})
            pings += 1
            sent = upto
        if not ready and pongs == 1:
            open(os.path.join(d, "ready.%d" % me), "w").close()
            while not os.path.exists(os.path.join(d, "go")):
                if time.time() > deadline:
                    sys.exit("no go")
                time.sleep(0.01)
            ready = True
            continue
        r, w, _ = select.select([sock], [sock] if outbuf else [], [], 0.5)
        if w:
            n = sock.send(outbuf)
            del outbuf[:n]
        if r:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            inbuf += chunk
            off = 0
            while len(inbuf) - off >= 4:
                n = struct.unpack_from(">I", inbuf, off)[0]
                if len(inbuf) - off - 4 < n:
                    break
                m = json.loads(bytes(inbuf[off + 4:off + 4 + n]))
                off += 4 + n
                if m == {"type": "pong"}:
                    pongs += 1
                    continue
                if m.get("type") != "message" or m.get("channel") != channel:
                    unexpected += 1
                    continue
                missed += m.get("missed", 0)
                b = m.get("body")
                src, seq = b.get("from"), b.get("seq")
                if b != {"from": src, "seq": seq,
                         "text": "peer %d message %d" % (src, seq)}:
                    intact = False
                if seq != last_seq.get(src, 0) + 1:
                    in_order = False
                last_seq[src] = seq
                per_sender[src] = per_sender.get(src, 0) + 1
                received += 1
            del inbuf[:off]

    own = per_sender.get(me, 0)
    result = {"others": received - own, "own": own, "in_order": in_order,
              "intact": intact, "missed": missed, "unexpected": unexpected,
              "per_sender": {str(k): v for k, v in sorted(per_sender.items())}}
    with open(os.path.join(d, "result.%d.tmp" % me), "w") as f:
        json.dump(result, f, sort_keys=True)
    os.rename(os.path.join(d, "result.%d.tmp" % me),
              os.path.join(d, "result.%d" % me))


main()
