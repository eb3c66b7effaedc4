// client.js — the master side: submit jobs and wait for their results,
// ask about jobs, publish and subscribe, all on one connection to the
// master port with any number of jobs in flight.

import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Conn } from './conn.js';
import { resolve } from './options.js';
import {
	ConnectionError, RequestError, WaitTimeoutError, fromFrame, isEnding,
} from './errors.js';

// The job options of a submission, as the daemon spells them.
const JOB_OPTIONS = ['priority', 'timeout', 'detach', 'notify', 'stream',
	'worker', 'retries', 'backoff', 'delay', 'at', 'after'];

/** A submitted job.  Emits "running" ({worker}) when a worker takes it,
 * if submitted with notify, and "partial" (body) for each partial result,
 * if submitted with stream. */
export class Job extends EventEmitter {
	constructor(client, id, type) {
		super();
		this.client = client;
		this.id = id;
		this.type = type;
		this.done = false;
		this._ok = true;	// once done: a result (else an error)
		this._v = undefined;	// the result, or the error
		this._p = null;		// made when someone asks for it
	}

	_promise() {
		if (this._p === null) {
			if (this.done)
				this._p = this._ok ? Promise.resolve(this._v) : Promise.reject(this._v);
			else
				this._p = new Promise((res, rej) => {
					this._resolve = res;
					this._reject = rej;
				});
		}
		return this._p;
	}

	/** result({timeout}): the job's result; rejects with JobFailedError,
	 * JobTimeoutError, JobCancelledError, ResultDroppedError,
	 * ConnectionError, or WaitTimeoutError after timeout ms (the job goes
	 * on). */
	result({ timeout } = {}) {
		if (!timeout)
			return this._promise();
		return new Promise((res, rej) => {
			const t = setTimeout(() => rej(new WaitTimeoutError(
			    `job ${this.id}: no result within ${timeout} ms`,
			    { id: this.id })), timeout);
			this._promise().then((v) => { clearTimeout(t); res(v); },
			    (e) => { clearTimeout(t); rej(e); });
		});
	}

	/** status(): the job's status object (state in .status). */
	status() {
		return this.client.status(this.id);
	}

	/** cancel(): true once the job is cancelled, false if it had already
	 * ended. */
	cancel() {
		return this.client.cancel(this.id);
	}

	// _event: emit, or hold the event until a listener comes (a notice
	// or partial can arrive with the acknowledgement, before submit()'s
	// caller could listen).
	_event(ev, v) {
		if (this.listenerCount(ev) > 0) {
			this.emit(ev, v);
			return;
		}
		if (this._held === undefined) {
			this._held = [];
			this.on('newListener', (e) => {
				if (this._held.some((h) => h[0] === e))
					queueMicrotask(() => this._release(e));
			});
		}
		this._held.push([ev, v]);
	}

	_release(e) {
		const held = this._held;
		this._held = [];
		for (const h of held)
			if (h[0] === e)
				this.emit(h[0], h[1]);
			else
				this._held.push(h);
	}

	_end(m) {
		if (this.done)
			return;
		if (m.error !== undefined)
			this._fail(fromFrame(m));
		else {
			this.done = true;
			this._v = m.body;
			if (this._p !== null)
				this._resolve(m.body);
		}
	}

	_fail(err) {
		if (this.done)
			return;
		this.done = true;
		this._ok = false;
		this._v = err;
		if (this._p !== null)
			this._reject(err);
	}
}

/** A master connection.  new Client({host, masterPort, token, tls, ca,
 * cert, key, dialect}): any option not given is read from the
 * environment (JOBFS_HOST, JOBFS_MASTER_PORT, JOBFS_TOKEN,
 * JOBFS_TOKEN_FILE, JOBFS_TLS, JOBFS_CA, JOBFS_CERT, JOBFS_KEY).  It
 * connects at the first request, and again at the next request after a
 * loss. */
export class Client extends EventEmitter {
	constructor(options = {}) {
		super();
		this.r = resolve(options);
		this.dialect = options.dialect ?? 'action';
		if (this.dialect !== 'action' && this.dialect !== 'seed')
			throw new TypeError(`dialect: "seed" or "action", not ${this.dialect}`);
		this.idPrefix = options.idPrefix ?? randomBytes(6).toString('hex') + '-';
		this.seq = 0;
		this.conn = null;
		this.connecting = null;
		this.jobs = new Map();		// String(id) -> Job, until it ends
		this.fifo = [];			// requests answered in order
		this.waits = new Map();		// String(id) -> [{res, rej}]
		this.cancels = new Map();	// String(id) -> [res]
		this.subs = new Map();		// channel -> Set of listeners
		this.closed = false;
	}

	/** connect(): the connection, made if needed. */
	connect() {
		if (this.closed)
			return Promise.reject(new ConnectionError('client closed'));
		if (this.conn !== null)
			return Promise.resolve(this.conn);
		if (this.connecting === null) {
			const c = new Conn(this.r, this.r.masterPort, this.dialect,
			    (m) => this._frame(m), (err) => this._lost(c, err));
			this.connecting = c.open().then(() => {
				this.connecting = null;
				if (this.closed) {
					c.destroy();
					throw new ConnectionError('client closed');
				}
				this.conn = c;
				// Subscriptions outlive a reconnect.
				for (const ch of this.subs.keys())
					c.send(this._msg('subscribe', { channel: ch }));
				return c;
			}, (e) => {
				this.connecting = null;
				throw e;
			});
		}
		return this.connecting;
	}

	_msg(kind, rest) {
		return this.dialect === 'action' ?
		    { action: kind, ...rest } : { type: kind, ...rest };
	}

	/**
	 * submit(type, body, options): a Job.  options: id (default: a
	 * unique string), priority, timeout (ms), detach, notify, stream,
	 * worker, retries, backoff (ms), delay (ms), at (ms since the epoch,
	 * or a Date), after (ids or Jobs).  In the action dialect it resolves
	 * once the daemon took the job (and rejects if refused); in the seed
	 * dialect once it is sent, and a refusal rejects job.result().
	 */
	async submit(type, body, options = {}) {
		const conn = this.conn ?? await this.connect();
		const id = options.id ?? this.idPrefix + (++this.seq);
		const key = String(id);
		if (this.jobs.has(key))
			throw new RequestError(`id ${key} is in flight on this client`,
			    { code: 'id_exists', id });
		const m = this.dialect === 'action' ?
		    { action: 'submit', id, type, body: body ?? null } :
		    { type: 'job', job_type: type, id, body: body ?? null };
		for (const k of JOB_OPTIONS) {
			let v = options[k];
			if (v === undefined)
				continue;
			if (k === 'at' && v instanceof Date)
				v = v.getTime();
			else if (k === 'after')
				v = v.map((a) => (a instanceof Job ? a.id : a));
			m[k] = v;
		}
		const job = new Job(this, id, type);
		this.jobs.set(key, job);
		conn.send(m);
		if (this.dialect === 'action') {
			try {
				await this._expect('ack', id);
			} catch (e) {
				if (this.jobs.get(key) === job)
					this.jobs.delete(key);
				job._fail(e);
				throw e;
			}
		}
		return job;
	}

	/** job(id): a handle on a job this client did not submit (or
	 * submitted before a reconnect); its result() waits for it. */
	job(id) {
		const job = new Job(this, id, undefined);
		this.wait(id).then((b) => job._end({ body: b }), (e) => job._fail(e));
		return job;
	}

	/** wait(id): the result of any job (this client's or not). */
	async wait(id) {
		const conn = this.conn ?? await this.connect();
		return new Promise((res, rej) => {
			const k = String(id);
			if (!this.waits.has(k))
				this.waits.set(k, []);
			this.waits.get(k).push({ res, rej });
			conn.send(this._msg('wait', { id }));
		});
	}

	/** status(id): the job's status object. */
	async status(id) {
		const conn = this.conn ?? await this.connect();
		conn.send(this._msg('status', { id }));
		return this._expect('status', id);
	}

	/** cancel(id): true once the job is cancelled, false if it had
	 * already ended (or no such job). */
	async cancel(id) {
		const conn = this.conn ?? await this.connect();
		return new Promise((res) => {
			const k = String(id);
			if (!this.cancels.has(k))
				this.cancels.set(k, []);
			this.cancels.get(k).push(res);
			conn.send(this._msg('cancel', { id }));
		});
	}

	/** stats(type?): the daemon's counters. */
	async stats(type) {
		const conn = this.conn ?? await this.connect();
		const m = this._msg('stats', {});
		if (type !== undefined)
			m[this.dialect === 'action' ? 'type' : 'job_type'] = type;
		conn.send(m);
		return (await this._expect('stats')).stats;
	}

	/** ping(): resolves when the daemon has handled every earlier
	 * message of this client. */
	async ping() {
		const conn = this.conn ?? await this.connect();
		conn.send(this._msg('ping', {}));
		await this._expect('pong');
	}

	/** publish(channel, body): to every subscriber of channel. */
	async publish(channel, body) {
		const conn = this.conn ?? await this.connect();
		conn.send(this._msg('publish', { channel, body: body ?? null }));
	}

	/** subscribe(channel, fn): fn(body, message) for each message on
	 * channel; resolves to a function that unsubscribes fn. */
	async subscribe(channel, fn) {
		const conn = this.conn ?? await this.connect();
		let set = this.subs.get(channel);
		if (set === undefined) {
			this.subs.set(channel, set = new Set());
			conn.send(this._msg('subscribe', { channel }));
		}
		set.add(fn);
		await this.ping();	// subscribed before it resolves
		return () => {
			if (!set.delete(fn) || set.size > 0 || this.subs.get(channel) !== set)
				return;
			this.subs.delete(channel);
			this.conn?.send(this._msg('unsubscribe', { channel }));
		};
	}

	/** close(): end the connection; unfinished results reject with
	 * ConnectionError. */
	close() {
		this.closed = true;
		if (this.conn !== null) {
			const c = this.conn;
			this.conn = null;
			c.close();
			this._lost(c, new ConnectionError('client closed'));
		}
	}

	_expect(kind, id) {
		return new Promise((res, rej) => this.fifo.push({ kind, id, res, rej }));
	}

	_lost(c, err) {
		if (this.conn === c)
			this.conn = null;
		const fifo = this.fifo, jobs = this.jobs, waits = this.waits,
		    cancels = this.cancels;
		this.fifo = [];
		this.jobs = new Map();
		this.waits = new Map();
		this.cancels = new Map();
		for (const q of fifo)
			q.rej(err);
		for (const j of jobs.values())
			j._fail(err);
		for (const l of waits.values())
			for (const w of l)
				w.rej(err);
		for (const l of cancels.values())
			for (const res of l)
				res(false);
		if (!this.closed && this.listenerCount('disconnect') > 0)
			this.emit('disconnect', err);
	}

	// _ended(m): job m.id ended (its result or an ending error).
	_ended(key, m) {
		const job = this.jobs.get(key);
		if (job !== undefined) {
			this.jobs.delete(key);
			job._end(m);
		}
		const w = this.waits.get(key);
		if (w !== undefined) {
			this.waits.delete(key);
			for (const x of w)
				if (m.error !== undefined)
					x.rej(fromFrame(m));
				else
					x.res(m.body);
		}
		const c = this.cancels.get(key);
		if (c !== undefined) {
			this.cancels.delete(key);
			for (const res of c)
				res(m.error === 'cancelled');
		}
	}

	_frame(m) {
		const id = m.id;
		// A status reply (whose "error" is a job's last error, and whose
		// "type" is the job's type) before anything else.
		if (id !== undefined && m.status !== undefined && m.submitted !== undefined) {
			this._answer('status', id, m);
			return;
		}
		if (typeof m.error === 'string') {
			this._error(m);
			return;
		}
		const t = m.action ?? m.type;
		if (t === 'message' && m.channel !== undefined) {
			const set = this.subs.get(m.channel);
			if (set)
				for (const fn of set)
					fn(m.body, m);
			return;
		}
		if (t === 'pong') {
			this._answer('pong', undefined, m);
			return;
		}
		if (t === 'ping') {
			this.conn?.send(this._msg('pong', {}));
			return;
		}
		if (m.stats !== undefined) {
			this._answer('stats', undefined, m);
			return;
		}
		if (m.ok === true) {
			this._answer('ack', id, m);
			return;
		}
		if (id === undefined)
			return;
		const key = String(id);
		if (m.partial === true) {
			const job = this.jobs.get(key);
			if (job)
				job._event('partial', m.body);
		} else if (Object.hasOwn(m, 'body'))
			this._ended(key, m);
		else if (m.status === 'running') {
			const job = this.jobs.get(key);
			if (job)
				job._event('running', { worker: m.worker });
		}
	}

	// _answer: the reply to the oldest request of that kind.
	_answer(kind, id, m) {
		const i = this.fifo.findIndex((q) => q.kind === kind &&
		    (id === undefined || String(q.id) === String(id)));
		if (i < 0)
			return;
		const [q] = this.fifo.splice(i, 1);
		q.res(m);
	}

	_error(m) {
		const id = m.id;
		const key = id === undefined ? undefined : String(id);
		if (key !== undefined && isEnding(m.error)) {
			this._ended(key, m);
			return;
		}
		// A refusal answers the oldest request it can be about: replies
		// come in order.
		const i = this.fifo.findIndex((q) => key === undefined ?
		    q.id === undefined : q.id !== undefined && String(q.id) === key);
		if (i >= 0) {
			const [q] = this.fifo.splice(i, 1);
			q.rej(fromFrame(m));
			return;
		}
		if (key === undefined) {
			if (this.listenerCount('error') > 0)
				this.emit('error', fromFrame(m));
			return;
		}
		if (this.cancels.has(key) && m.error === 'unknown_id') {
			const c = this.cancels.get(key);
			c.shift()(false);
			if (c.length === 0)
				this.cancels.delete(key);
			return;
		}
		if (this.waits.has(key)) {
			const w = this.waits.get(key);
			w.shift().rej(fromFrame(m));
			if (w.length === 0)
				this.waits.delete(key);
			return;
		}
		// A submission refused in the seed dialect.
		const job = this.jobs.get(key);
		if (job !== undefined) {
			this.jobs.delete(key);
			job._fail(fromFrame(m));
		}
	}
}
