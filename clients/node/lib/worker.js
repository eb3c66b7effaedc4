// worker.js — the worker side: join a job type on the worker port and
// hand its jobs out through an async iterator, answering pings, taking
// cancels, and reconnecting with backoff when the daemon goes away.

import { EventEmitter } from 'node:events';
import { Conn } from './conn.js';
import { resolve } from './options.js';
import { AuthError, RequestError, fromFrame } from './errors.js';

const RETRY_FIRST = 100;	// ms before the first reconnect
const RETRY_CAP = 2000;		// the longest wait between two tries
const RETRY_STABLE = 1000;	// a connection that lived this long resets it

/** One job given to this worker.  Emits "cancelled" when the daemon
 * takes it back (a cancel, or its timeout); j.signal aborts then too. */
export class WorkerJob extends EventEmitter {
	constructor(w, id, body, gen) {
		super();
		this.worker = w;
		this.id = id;
		this.body = body;
		this.type = w.type;
		this.gen = gen;		// the connection it came on
		this.ended = false;
		this.cancelled = false;
		this._ac = null;
	}

	/** An AbortSignal that aborts when the job is cancelled. */
	get signal() {
		if (this._ac === null) {
			this._ac = new AbortController();
			if (this.cancelled)
				this._ac.abort(new Error(`job ${this.id} cancelled`));
		}
		return this._ac.signal;
	}

	/** progress(body): a partial result (masters that stream get it). */
	progress(body) {
		if (!this.ended)
			this.worker._partial(this, body);
	}

	/** respond(body, {log}): the job's result; false if the job had
	 * already ended (answered, or cancelled). */
	respond(body, { log } = {}) {
		return this.worker._answer(this, 'response', body ?? null, log);
	}

	/** fail(err, {log}): the job failed; an Error is sent as
	 * {error: message, name}, anything else as it is. */
	fail(err, { log } = {}) {
		let body = err;
		if (err instanceof Error)
			body = { error: err.message, name: err.name };
		return this.worker._answer(this, 'fail', body ?? null, log);
	}

	_cancel() {
		if (this.ended)
			return;
		this.ended = true;
		this.cancelled = true;
		this._ac?.abort(new Error(`job ${this.id} cancelled`));
		this.emit('cancelled');
	}
}

/**
 * A worker of one job type: `for await (const j of worker("resize",
 * {capacity: 4})) {...}`.  Options: capacity (jobs at once, default 1),
 * heartbeat (ms: the daemon pings after that much silence), name, cancel
 * (default true: take cancels), dialect ("seed", the default, or
 * "action"), reconnect (default true), and the connection options of
 * Client.  With cancel false and no capacity, heartbeat or name it sends
 * exactly Gloom's frames.
 */
export class Worker extends EventEmitter {
	constructor(type, options = {}) {
		super();
		this.type = type;
		this.r = resolve(options);
		this.dialect = options.dialect ?? 'seed';
		if (this.dialect !== 'action' && this.dialect !== 'seed')
			throw new TypeError(`dialect: "seed" or "action", not ${this.dialect}`);
		this.capacity = options.capacity;
		this.cap = options.capacity ?? 1;
		this.heartbeat = options.heartbeat;
		this.name = options.name;
		this.takesCancel = options.cancel ?? true;
		this.reconnect = options.reconnect ?? true;
		// Answers name their job unless the worker speaks plain Gloom.
		this.withIds = this.takesCancel || this.capacity !== undefined;
		this.conn = null;
		this.gen = 0;
		this.jobs = new Map();		// String(id) -> WorkerJob running
		this.pending = [];		// answers of old connections, offline
		this.answered = new Set();	// ids answered across a reconnect
		this.joined = 0;		// capacity of the last join sent
		this.queue = [];		// jobs not yet taken by the iterator
		this.takers = [];		// iterator next() calls waiting
		this.closed = false;
		this.started = false;
		this.error = null;
	}

	[Symbol.asyncIterator]() {
		this.start();
		return {
			next: () => {
				if (this.queue.length > 0)
					return Promise.resolve({ value: this.queue.shift(), done: false });
				if (this.error !== null)
					return Promise.reject(this.error);
				if (this.closed)
					return Promise.resolve({ value: undefined, done: true });
				return new Promise((res, rej) => this.takers.push({ res, rej }));
			},
			return: () => {
				this.close();
				return Promise.resolve({ value: undefined, done: true });
			},
		};
	}

	/** start(): connect and join (the iterator does it). */
	start() {
		if (this.started)
			return;
		this.started = true;
		this._loop();
	}

	/** close(): leave; running jobs are requeued by the daemon. */
	close() {
		if (this.closed)
			return;
		this.closed = true;
		clearTimeout(this.retryTimer);
		this.retryWake?.();
		this.conn?.close();
		for (const t of this.takers.splice(0))
			t.res({ value: undefined, done: true });
	}

	_fatal(err) {
		this.error = err;
		for (const t of this.takers.splice(0))
			t.rej(err);
		this.close();
	}

	async _loop() {
		let delay = RETRY_FIRST, tries = 0, lostAt = 0;
		while (!this.closed) {
			const gen = ++this.gen;
			const c = new Conn(this.r, this.r.workerPort, this.dialect,
			    (m) => this._frame(c, m), null);
			const lost = new Promise((res) => { c.onClose = res; });
			let upAt = 0;
			try {
				await c.open();
				if (this.closed) {
					c.destroy();
					break;
				}
				upAt = Date.now();
				this.conn = c;
				if (tries > 0)
					this.emit('reconnect', { tries, ms: upAt - lostAt });
				tries = 0;
				this._up(gen);
				const why = await lost;
				this.conn = null;
				if (this.closed)
					break;
				this.emit('disconnect', why);
			} catch (e) {
				// A wrong token or role is not cured by trying again.
				if (e instanceof AuthError && this.gen === 1) {
					this._fatal(e);
					break;
				}
				if (tries === 0 && this.listenerCount('disconnect') > 0)
					this.emit('disconnect', e);
			}
			if (this.closed || !this.reconnect) {
				if (!this.closed)
					this.close();
				break;
			}
			if (tries++ === 0)
				lostAt = Date.now();
			if (upAt !== 0 && Date.now() - upAt >= RETRY_STABLE)
				delay = RETRY_FIRST;
			// Equal jitter: between half the delay and all of it.
			const ms = delay / 2 + Math.random() * delay / 2;
			delay = Math.min(delay * 2, RETRY_CAP);
			await new Promise((res) => {
				this.retryWake = res;
				this.retryTimer = setTimeout(res, ms);
			});
		}
	}

	_msg(kind, rest) {
		if (this.dialect === 'action')
			return { action: kind === 'response' ? 'respond' : kind, ...rest };
		return { type: kind, ...rest };
	}

	// _up: a new connection: join with the slots that jobs of the last
	// connection, still running here, leave free (none free: join later).
	_up(gen) {
		this.joined = 0;
		this._join();
		for (const a of this.pending.splice(0)) {
			this.answered.add(String(a.id));
			this.conn.send(a);
		}
	}

	_free() {
		let n = 0;
		for (const j of this.jobs.values())
			if (j.gen !== this.gen)
				n++;
		return this.cap - n;
	}

	_join() {
		const free = this._free();
		if (this.conn === null || free < 1 || free <= this.joined)
			return;
		const m = this.dialect === 'action' ?
		    { action: 'join', type: this.type } :
		    { type: 'join', job_type: this.type };
		if (this.capacity !== undefined)
			m.capacity = free;
		if (this.name !== undefined)
			m.worker = this.name;
		if (this.heartbeat !== undefined)
			m.heartbeat = this.heartbeat;
		if (this.takesCancel)
			m.cancel = true;
		this.joined = free;
		this.conn.send(m);
	}

	_frame(c, m) {
		if (c !== this.conn)
			return;
		const t = m.action ?? m.type;
		if (typeof m.error === 'string') {
			const key = m.id === undefined ? undefined : String(m.id);
			if (key !== undefined && this.answered.delete(key))
				return;		// an old answer that did not count
			if (m.error === 'unknown_id' || m.error === 'invalid_state')
				return;		// an answer for a job that ended meanwhile
			// Anything else is about the join: say so to the loop.
			const err = fromFrame(m);
			if (this.listenerCount('error') > 0)
				this.emit('error', err);
			else if (err instanceof AuthError || err instanceof RequestError)
				this._fatal(err);
			return;
		}
		if (t === 'job') {
			const key = String(m.id);
			// The daemon hands back a job we answered offline: that
			// answer ends it.
			if (this.answered.delete(key))
				return;
			const old = this.jobs.get(key);
			if (old !== undefined && old.gen !== this.gen) {
				old.gen = this.gen;	// still running here: it answers this one
				return;
			}
			const j = new WorkerJob(this, m.id, m.body ?? null, this.gen);
			this.jobs.set(key, j);
			if (this.takers.length > 0)
				this.takers.shift().res({ value: j, done: false });
			else
				this.queue.push(j);
		} else if (t === 'ping') {
			c.send(this._msg('pong', {}));
			if (this.listenerCount('ping') > 0)
				this.emit('ping');
		}
		else if (t === 'cancel' && m.id !== undefined) {
			const key = String(m.id);
			const j = this.jobs.get(key);
			if (j !== undefined && j.gen === this.gen) {
				this.jobs.delete(key);
				j._cancel();
			}
		}
	}

	_partial(j, body) {
		if (this.conn === null || j.gen !== this.gen)
			return;
		const m = this._msg('partial', {});
		if (this.withIds)
			m.id = j.id;
		m.body = body ?? null;
		this.conn.send(m);
	}

	_answer(j, kind, body, log) {
		if (j.ended)
			return false;
		j.ended = true;
		const key = String(j.id);
		if (this.jobs.get(key) === j)
			this.jobs.delete(key);
		const m = this._msg(kind, {});
		const old = j.gen !== this.gen || this.conn === null;
		if (this.withIds || old)
			m.id = j.id;
		m.body = body;
		if (log !== undefined)
			m.log = String(log);
		if (!old)
			this.conn.send(m);
		else {
			// Its connection is gone: the daemon requeued the job, and
			// takes this answer for it on the next connection.
			// The slot it held is free: join for it first, since the
			// daemon takes the answer only from a worker of its type.
			this._join();
			if (this.conn === null)
				this.pending.push(m);
			else {
				this.answered.add(key);
				this.conn.send(m);
			}
		}
		return true;
	}
}

/** worker(type, options): a Worker, to iterate with for await. */
export function worker(type, options) {
	return new Worker(type, options);
}
