"""Framing, connection settings from the environment, and one connection.

Every message is a 4-byte big-endian length and that many bytes of JSON
holding one object.  A connection batches the frames written during one
turn of the event loop into one write.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import struct
from dataclasses import dataclass
from typing import Callable, List, Optional

from .errors import AuthError, ConnectionLost, ProtocolError

_LEN = struct.Struct(">I")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


def encode(msg: dict) -> bytes:
    """One frame: length prefix and compact JSON."""
    data = _dumps(msg).encode("utf-8", "surrogatepass")
    return _LEN.pack(len(data)) + data


def _env_true(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "no", "false", "off")


@dataclass
class Settings:
    """Where the daemon is and how to reach it.

    Each field left None is read from the environment that jobctl reads:
    JOBFS_HOST (127.0.0.1), JOBFS_MASTER_PORT (9998), JOBFS_WORKER_PORT
    (9999), JOBFS_TOKEN or JOBFS_TOKEN_FILE, JOBFS_TLS=1, JOBFS_CA,
    JOBFS_CERT and JOBFS_KEY (any of the last three turns TLS on).
    """

    host: Optional[str] = None
    master_port: Optional[int] = None
    worker_port: Optional[int] = None
    token: Optional[str] = None
    tls: Optional[bool] = None
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None

    def resolved(self) -> "Settings":
        env = os.environ
        s = Settings(**self.__dict__)
        if s.host is None:
            s.host = env.get("JOBFS_HOST") or "127.0.0.1"
        if s.master_port is None:
            s.master_port = int(env.get("JOBFS_MASTER_PORT") or 9998)
        if s.worker_port is None:
            s.worker_port = int(env.get("JOBFS_WORKER_PORT") or 9999)
        if s.token is None:
            if env.get("JOBFS_TOKEN"):
                s.token = env["JOBFS_TOKEN"]
            elif env.get("JOBFS_TOKEN_FILE"):
                with open(env["JOBFS_TOKEN_FILE"], encoding="utf-8") as f:
                    s.token = f.read().strip()
        if s.ca is None:
            s.ca = env.get("JOBFS_CA") or None
        if s.cert is None:
            s.cert = env.get("JOBFS_CERT") or None
        if s.key is None:
            s.key = env.get("JOBFS_KEY") or None
        if s.tls is None:
            s.tls = _env_true(env.get("JOBFS_TLS")) or bool(s.ca or s.cert or s.key)
        return s

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        """The TLS context for these settings, or None for plain TCP."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert or self.key:
            ctx.load_cert_chain(self.cert or self.key, self.key)  # type: ignore[arg-type]
        return ctx


class Conn(asyncio.BufferedProtocol):
    """One connection: frames in go to ``on_frame``, frames out are batched.

    ``on_lost(exc)`` is called once when the connection ends.  Input is
    read into one reused buffer (a plain Protocol would cost asyncio a
    fresh 256 KiB allocation, three system calls, per read).
    """

    def __init__(self, on_frame: Callable[[dict], None], on_lost: Callable[[Optional[Exception]], None]) -> None:
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.transport: Optional[asyncio.Transport] = None
        self.rbuf = bytearray(65536)
        self.rview = memoryview(self.rbuf)
        self.rstart = 0     # first byte not yet parsed
        self.rend = 0       # end of the bytes read
        self.want = 0       # bytes the frame at rstart needs, once known
        self.out: List[bytes] = []
        self.closed = False
        self.loop = asyncio.get_event_loop()
        self._drained: Optional[asyncio.Future] = None
        self.paused = False
        self.dispatching = False

    # asyncio.BufferedProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        size = len(self.rbuf)
        if self.rend == size or (self.want and self.rstart + self.want > size):
            held = self.rend - self.rstart
            need = max(held + 4096, self.want)
            if need > size // 2:
                # Grow: a frame larger than the buffer is on its way.
                grown = bytearray(max(size * 2, need + 65536))
                grown[:held] = self.rview[self.rstart:self.rend]
                self.rview.release()
                self.rbuf, self.rview = grown, memoryview(grown)
            else:
                self.rbuf[:held] = self.rbuf[self.rstart:self.rend]
            self.rstart, self.rend = 0, held
        return self.rview[self.rend:]

    def buffer_updated(self, nbytes: int) -> None:
        self.rend += nbytes
        buf, view = self.rbuf, self.rview
        pos, end = self.rstart, self.rend
        frames = []
        while end - pos >= 4:
            size = _LEN.unpack_from(buf, pos)[0]
            if end - pos - 4 < size:
                self.want = size + 4
                break
            frames.append(str(view[pos + 4:pos + 4 + size], "utf-8", "surrogateescape"))
            pos += 4 + size
        else:
            self.want = 0
        if pos == end:
            pos = end = 0
        self.rstart, self.rend = pos, end
        # What the frames' handlers send goes out in one write right after
        # them, not a loop turn later.
        self.dispatching = True
        try:
            for raw in frames:
                try:
                    msg = _loads(raw)
                except ValueError:   # not JSON
                    continue
                if isinstance(msg, dict):
                    self.on_frame(msg)
        finally:
            self.dispatching = False
        if self.out:
            self.flush()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self.on_lost(exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # sending
    def send(self, msg: dict) -> None:
        """Queue one frame; it is written at the end of this loop turn."""
        if self.closed:
            raise ConnectionLost("connection to jobfs is closed")
        if not self.out and not self.dispatching:
            self.loop.call_soon(self.flush)
        self.out.append(encode(msg))

    def flush(self) -> None:
        if self.out and not self.closed and self.transport is not None:
            data = b"".join(self.out)
            self.out.clear()
            self.transport.write(data)
        else:
            self.out.clear()

    async def drain(self) -> None:
        """Wait while the daemon reads more slowly than we write."""
        if self.paused and not self.closed:
            self._drained = self.loop.create_future()
            await self._drained

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()


async def open_conn(settings: Settings, port: int, on_frame: Callable[[dict], None],
                    on_lost: Callable[[Optional[Exception]], None],
                    dialect: str = "seed") -> Conn:
    """Connect to ``port`` (TLS if the settings say so) and authenticate.

    With a token the first frame is ``auth``; its answer is awaited here,
    and a refusal raises AuthError.
    """
    loop = asyncio.get_event_loop()
    ctx = settings.ssl_context()
    auth: Optional[asyncio.Future] = None

    def first(msg: dict) -> None:
        if auth is not None and not auth.done() and ("ok" in msg or "error" in msg) and "id" not in msg:
            auth.set_result(msg)
            return
        on_frame(msg)

    def lost(exc: Optional[Exception]) -> None:
        if auth is not None and not auth.done():
            auth.set_exception(ConnectionLost(f"connection closed during auth: {exc}"))
        on_lost(exc)

    _, conn = await loop.create_connection(
        lambda: Conn(first, lost), settings.host, port, ssl=ctx,
        server_hostname=settings.host if ctx else None)
    sock = conn.transport.get_extra_info("socket") if conn.transport else None
    if sock is not None:
        import socket
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    if settings.token:
        auth = loop.create_future()
        key = "action" if dialect == "action" else "type"
        conn.send({key: "auth", "token": settings.token})
        reply = await auth
        if reply.get("ok") is not True:
            conn.close()
            raise AuthError(reply)
    conn.on_frame = on_frame
    return conn


def raise_for(frame: dict) -> None:
    """Raise the ProtocolError an error frame stands for."""
    if frame.get("error") in ("auth_failed", "auth_required", "forbidden"):
        raise AuthError(frame)
    raise ProtocolError(frame)
