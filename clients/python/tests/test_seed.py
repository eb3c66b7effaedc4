"""Gloom's exchange frame for frame (gloom.txt; tests/master.bats and
tests/dialect_action.bats record the same), seen by a recording proxy
between the client and the daemon."""

import json
import socket
import struct
import threading

import jobfs


class Recorder:
    """A TCP proxy to PORT that keeps every frame, each way, as bytes."""

    def __init__(self, port):
        self.port = port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.listen_port = self.lsock.getsockname()[1]
        self.up = []     # client -> daemon
        self.down = []   # daemon -> client
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.port))
            for a, b, log in ((c, s, self.up), (s, c, self.down)):
                t = threading.Thread(target=self._pump, args=(a, b, log), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(a, b, log):
        buf = b""
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            buf += data
            while len(buf) >= 4:
                n = struct.unpack(">I", buf[:4])[0]
                if len(buf) < 4 + n:
                    break
                log.append(buf[4:4 + n])
                buf = buf[4 + n:]
            b.sendall(data)

    def close(self):
        self.lsock.close()
        for t in self.threads:
            t.join(10)


BODY = {"text": "hello", "n": [1, 2.5, None]}


def run_exchange(daemon, workers, dialect, **worker_opts):
    wp = Recorder(daemon.worker_port)
    mp = Recorder(daemon.master_port)
    w = workers.start(jobfs.Worker("echo", lambda b, j: {"echo": b["text"]}, dialect=dialect,
                                   master_port=0, worker_port=wp.listen_port, **worker_opts))
    c = jobfs.Client(master_port=mp.listen_port, dialect=dialect)
    job = c.submit("echo", BODY, id="message_id")
    assert job.result(10) == {"echo": "hello"}
    c.close()
    workers.loop.call_soon_threadsafe(w.stop)
    wp.close()
    mp.close()
    return wp, mp


def test_seed_exchange_frame_for_frame(daemon, workers):
    wp, mp = run_exchange(daemon, workers, "seed", cancel=False, heartbeat=0)
    assert wp.up == [b'{"type":"join","job_type":"echo"}',
                     b'{"type":"response","body":{"echo":"hello"}}']
    assert wp.down == [b'{"type":"job","id":"message_id","body":{"text":"hello","n":[1,2.5,null]}}']
    assert mp.up == [b'{"type":"job","job_type":"echo","id":"message_id",'
                     b'"body":{"text":"hello","n":[1,2.5,null]}}']
    assert mp.down == [b'{"id":"message_id","body":{"echo":"hello"}}']


def test_action_dialect_exchange_frame_for_frame(daemon, workers):
    wp, mp = run_exchange(daemon, workers, "action", cancel=False, heartbeat=0)
    assert [json.loads(f) for f in wp.up] == [
        {"action": "join", "type": "echo"},
        {"action": "respond", "body": {"echo": "hello"}}]
    assert [json.loads(f) for f in wp.down] == [
        {"ok": True},
        {"action": "job", "id": "message_id", "type": "echo", "body": BODY},
        {"ok": True}]
    assert [json.loads(f) for f in mp.up] == [
        {"action": "submit", "id": "message_id", "type": "echo", "body": BODY}]
    assert [json.loads(f) for f in mp.down] == [
        {"ok": True, "id": "message_id"},
        {"id": "message_id", "body": {"echo": "hello"}}]


def test_default_worker_adds_only_opt_in_keys(daemon, workers):
    """The default worker asks for cancels and heartbeats; its answers then
    name their job (a response that crosses a cancel must say which)."""
    wp, _ = run_exchange(daemon, workers, "seed", capacity=2, name="w7")
    assert [json.loads(f) for f in wp.up] == [
        {"type": "join", "job_type": "echo", "worker": "w7", "capacity": 2,
         "heartbeat": 5000, "cancel": True},
        {"type": "response", "id": "message_id", "body": {"echo": "hello"}}]
