// conn.js — one connection to a jobfs port: TCP or TLS, the token, and
// frames (a 4-byte big-endian length, then that many bytes of JSON).
//
// Writes are gathered: every frame sent during one turn of the event loop
// goes out in one write, just after it (setImmediate), so a busy client
// makes one syscall for many frames.

import net from 'node:net';
import tls from 'node:tls';
import { ConnectionError, fromFrame } from './errors.js';
import { token as readToken, tlsOptions } from './options.js';

export class Conn {
	/**
	 * @param r resolved options (options.js)
	 * @param port the port to reach
	 * @param dialect 'seed' or 'action': how the auth message is spelled
	 * @param onFrame called with each frame received after auth
	 * @param onClose called once with the reason (an Error) when the
	 *   connection ends after open() resolved
	 */
	constructor(r, port, dialect, onFrame, onClose) {
		this.r = r;
		this.port = port;
		this.dialect = dialect;
		this.onFrame = onFrame;
		this.onClose = onClose;
		this.sock = null;
		this.out = [];
		this.outBytes = 0;
		this.flushing = false;
		this.chunks = [];
		this.have = 0;
		this.closed = false;
		this.ready = false;
		this.name = undefined;
		this._flush = this._flush.bind(this);
	}

	/** open(): connected, through TLS and authenticated; rejects with a
	 * ConnectionError or an AuthError. */
	open() {
		return new Promise((resolve, reject) => {
			let settled = false;
			const fail = (err) => {
				if (settled)
					return;
				settled = true;
				this.closed = true;
				clearTimeout(timer);
				this.sock?.destroy();
				reject(err);
			};
			const timer = setTimeout(() => fail(new ConnectionError(
			    `${this.r.host}:${this.port}: no connection within ` +
			    `${this.r.connectTimeout} ms`)), this.r.connectTimeout);
			let tok;
			try {
				tok = readToken(this.r);
			} catch (e) {
				fail(e);
				return;
			}
			const t = tlsOptions(this.r);
			const where = `${this.r.host}:${this.port}`;
			let sock;
			try {
				if (t) {
					t.host = this.r.host;
					t.port = this.port;
					if (net.isIP(this.r.host) === 0)
						t.servername = this.r.host;
					sock = tls.connect(t);
				} else
					sock = net.connect({ host: this.r.host, port: this.port });
			} catch (e) {
				fail(new ConnectionError(`${where}: ${e.message}`, { cause: e }));
				return;
			}
			this.sock = sock;
			sock.setNoDelay(true);
			const up = () => {
				if (tok === undefined) {
					settled = true;
					clearTimeout(timer);
					this.ready = true;
					this._flush();
					resolve(this);
					return;
				}
				// The token first; nothing else until it is taken.
				this.onFrame = (m) => {
					if (m.ok === true) {
						settled = true;
						clearTimeout(timer);
						this.name = m.name;
						this.onFrame = this._userFrame;
						this.ready = true;
						this._flush();
						resolve(this);
					} else if (m.error !== undefined)
						fail(fromFrame(m));
				};
				const a = this.dialect === 'action' ?
				    { action: 'auth', token: tok } : { type: 'auth', token: tok };
				this._write([JSON.stringify(a)]);
			};
			this._userFrame = this.onFrame;
			sock.once(t ? 'secureConnect' : 'connect', up);
			sock.on('data', (d) => this._data(d));
			sock.on('error', (e) => {
				this.lastError = e;
				fail(new ConnectionError(`${where}: ${e.message}`, { cause: e }));
			});
			sock.on('close', () => {
				const wasReady = settled && !this.closedByUs;
				this.closed = true;
				this.ready = false;
				if (!settled) {
					fail(new ConnectionError(`${where}: connection closed` +
					    (this.lastFrameError ? ` (${this.lastFrameError.message})` : '')));
					return;
				}
				if (wasReady || this.closedByUs)
					this.onClose?.(new ConnectionError(`${where}: ` +
					    (this.lastError ? this.lastError.message : 'connection closed') +
					    (this.lastFrameError ? ` (${this.lastFrameError.message})` : '')));
			});
		});
	}

	/** send(m): queue frame m (an object) for the next write. */
	send(m) {
		if (this.closed)
			return false;
		this.out.push(JSON.stringify(m));
		if (!this.flushing && this.ready) {
			this.flushing = true;
			setImmediate(this._flush);
		}
		return true;
	}

	_flush() {
		this.flushing = false;
		if (this.out.length === 0 || this.closed || !this.ready)
			return;
		const out = this.out;
		this.out = [];
		this._write(out);
	}

	_write(strs) {
		let bound = 0;
		for (const s of strs)
			bound += 4 + s.length * 3;
		const buf = Buffer.allocUnsafe(bound);
		let off = 0;
		for (const s of strs) {
			const n = buf.write(s, off + 4, 'utf8');
			buf.writeUInt32BE(n, off);
			off += 4 + n;
		}
		this.sock.write(buf.subarray(0, off));
	}

	_data(d) {
		let buf;
		if (this.have === 0)
			buf = d;
		else {
			this.chunks.push(d);
			this.have += d.length;
			// Wait for the whole frame before joining its pieces.
			if (this.have < this.need)
				return;
			buf = Buffer.concat(this.chunks, this.have);
			this.chunks = [];
			this.have = 0;
		}
		let off = 0;
		const len = buf.length;
		while (len - off >= 4) {
			const n = buf.readUInt32BE(off);
			if (len - off - 4 < n)
				break;
			const s = buf.toString('utf8', off + 4, off + 4 + n);
			off += 4 + n;
			let m;
			try {
				m = JSON.parse(s);
			} catch {
				continue;	// not ours to judge: skip it
			}
			if (m === null || typeof m !== 'object')
				continue;
			if (m.error !== undefined)
				this.lastFrameError = fromFrame(m);
			this.onFrame(m);
			if (this.closed)
				return;
		}
		if (off < len) {
			const rest = buf.subarray(off);
			this.chunks = [rest];
			this.have = rest.length;
			this.need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
		}
	}

	/** close(): end the connection once queued frames are written. */
	close() {
		if (this.closed)
			return;
		this._flush();
		this.closedByUs = true;
		this.closed = true;
		this.ready = false;
		this.sock?.end();
		// A peer that does not close its side is not waited for.
		const s = this.sock;
		setTimeout(() => s?.destroy(), 1000).unref();
	}

	/** destroy(): end the connection at once. */
	destroy() {
		this.closedByUs = true;
		this.closed = true;
		this.sock?.destroy();
	}
}
