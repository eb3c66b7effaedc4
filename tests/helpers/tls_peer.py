#!/usr/bin/env python3
"""tls_peer.py MODE ... — TLS peers for tls.bats, with Python's ssl as the
outside client.

  stall PORT N HOW DIR
      Open N connections to PORT and stall their handshakes: HOW is
      "none" (send nothing), "half" (send the first half of a real
      ClientHello) or "trickle" (send it a byte every 200 ms, never all
      of it).  Write DIR/ready once all are open, then wait, reading,
      until the daemon has closed every one (EOF or reset) or DIR/go
      exists; write to DIR/open how many the daemon left open, and exit.
  connect PORT CA [CERT KEY]
      One TLS client (certificate checked against CA, for host localhost;
      with CERT and KEY, a client certificate): print "connected", or the
      error the TLS stack reports (its reason code and text).
"""
import os
import select
import socket
import ssl
import sys
import time


def client_hello():
    """The bytes of a real ClientHello, from an ssl object on memory BIOs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def stall(port, n, how, d):
    hello = client_hello()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        if how == "half":
            s.sendall(hello[: len(hello) // 2])
        socks.append(s)
    with open(os.path.join(d, "ready"), "w") as f:
        f.write("%d\n" % len(socks))
    go = os.path.join(d, "go")
    sent, last = 0, time.monotonic()
    while socks and not os.path.exists(go):
        readable, _, _ = select.select(socks, [], [], 0.1)
        for s in readable:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                socks.remove(s)
                s.close()
        if how == "trickle" and time.monotonic() - last >= 0.2 and sent < len(hello) - 1:
            for s in socks:
                try:
                    s.send(hello[sent:sent + 1])
                except OSError:
                    pass
            sent, last = sent + 1, time.monotonic()
    with open(os.path.join(d, "open"), "w") as f:
        f.write("%d\n" % len(socks))


def connect(port, ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        with ctx.wrap_socket(raw, server_hostname="localhost"):
            print("connected")
    except ssl.SSLError as e:
        print("%s: %s" % (e.reason, e))
    except OSError as e:
        print("%s: %s" % (type(e).__name__, e))


def main():
    mode = sys.argv[1]
    if mode == "stall":
        stall(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif mode == "connect":
        connect(int(sys.argv[2]), *sys.argv[3:])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
