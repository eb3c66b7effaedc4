#!/usr/bin/env python3
"""cdp.py — drive headless Chromium through the DevTools protocol, with
the standard library only (a minimal WebSocket client), for
web_dashboard.bats.

  cdp.py CHROMIUM URL STEP...

Starts CHROMIUM headless on a private profile, opens URL, then runs each
STEP in order; exits 0 when all pass, 1 (with the reason on stderr) when
one fails, and always stops the browser.  Steps:

  wait:EXPR        poll the JS expression until it is truthy (20 s at most)
  eval:EXPR        print the expression's value (JSON) on a line
  click:SELECTOR   click the first element matching SELECTOR
  shot:FILE        save a PNG screenshot of the page to FILE
  header:NAME: VAL send this header with every request from now on (a
                   header step before all others applies to the page's load)
"""
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

WAIT_SECONDS = 20


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames."""

    def __init__(self, url):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.s = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            got = self.s.recv(1)
            if not got:
                raise RuntimeError("websocket handshake failed")
            head += got
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("websocket handshake refused: %r" % head[:80])

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.s.sendall(head + mask + masked)

    def _read(self, n):
        out = b""
        while len(out) < n:
            got = self.s.recv(n - len(out))
            if not got:
                raise RuntimeError("websocket closed")
            out += got
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0F
            if op == 0x9:  # ping: answer, keep reading
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next = 0

    def call(self, method, **params):
        self.next += 1
        mid = self.next
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r["result"].get("value")


def main():
    chromium, url, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
    profile = tempfile.mkdtemp(prefix="cdp-")
    args = [chromium, "--headless=new", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions",
            "--disable-dev-shm-usage", "--remote-debugging-port=0",
            "--user-data-dir=" + profile, "--window-size=1280,1000", "about:blank"]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root otherwise
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Chromium writes the port it chose into the profile directory.
        port = None
        active = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while port is None and time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("chromium exited with %s" % proc.returncode)
            try:
                with open(active) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    port = int(first)
            except OSError:
                pass
            time.sleep(0.1)
        if port is None:
            raise RuntimeError("chromium did not open its DevTools port")
        targets = json.load(urllib.request.urlopen(
            "http://127.0.0.1:%d/json/list" % port, timeout=30))
        ws_url = [t for t in targets if t.get("type") == "page"][0]["webSocketDebuggerUrl"]
        page = Page(WebSocket(ws_url))
        page.call("Page.enable")
        page.call("Network.enable")
        headers = {}

        def header(arg):
            name, _, value = arg.partition(":")
            headers[name.strip()] = value.strip()
            page.call("Network.setExtraHTTPHeaders", headers=headers)

        while steps and steps[0].startswith("header:"):
            header(steps.pop(0).partition(":")[2])
        page.call("Page.navigate", url=url)
        for step in steps:
            kind, _, arg = step.partition(":")
            if kind == "header":
                header(arg)
            elif kind == "wait":
                end = time.time() + WAIT_SECONDS
                while page.eval("!!(%s)" % arg) is not True:
                    if time.time() > end:
                        raise RuntimeError("timed out waiting for: " + arg)
                    time.sleep(0.1)
            elif kind == "eval":
                print(json.dumps(page.eval(arg)), flush=True)
            elif kind == "click":
                # A list the page redraws (it fetches, then fills) can be
                # empty for a moment after a wait saw the element: look
                # again until the same bound as a wait.
                end = time.time() + WAIT_SECONDS
                while page.eval("(() => { const e = document.querySelector(%s);"
                                " if (!e) return false; e.click(); return true; })()"
                                % json.dumps(arg)) is not True:
                    if time.time() > end:
                        raise RuntimeError("nothing to click: " + arg)
                    time.sleep(0.1)
            elif kind == "shot":
                png = page.call("Page.captureScreenshot", format="png")["data"]
                with open(arg, "wb") as f:
                    f.write(base64.b64decode(png))
            else:
                raise RuntimeError("unknown step: " + step)
        return 0
    except Exception as e:  # report, then stop the browser
        print("cdp.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
