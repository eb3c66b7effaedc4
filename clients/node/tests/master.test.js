// master.test.js — submitting and waiting, both dialects, every job
// option, partials, cancels, heartbeats and capacity, against one daemon.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
	Client, worker, JobCancelledError, JobFailedError, JobTimeoutError,
	RequestError, WaitTimeoutError,
} from '../index.js';
import { Daemon, serve, until } from './helpers.js';

let d, c;
before(async () => {
	d = await new Daemon().start();
	c = new Client(d.opts);
});
after(async () => {
	c.close();
	assert.equal(await d.stop(), 0, 'the daemon exits cleanly');
});

// A worker of a fresh type, answering with fn; closed after the test.
function echo(t, type, opts = {}, fn) {
	const w = serve(worker(type, { ...d.opts, ...opts }), fn);
	t.after(() => w.close());
	return w;
}

async function workersOf(type) {
	const s = await c.stats(type);
	return s.types[type]?.workers ?? 0;
}

test('both dialects: action and seed masters, seed and action workers', async (t) => {
	echo(t, 'dia-s', { dialect: 'seed' });
	echo(t, 'dia-a', { dialect: 'action', capacity: 2 });
	const seed = new Client({ ...d.opts, dialect: 'seed' });
	t.after(() => seed.close());
	for (const m of [c, seed])
		for (const type of ['dia-s', 'dia-a']) {
			const j = await m.submit(type, { via: m.dialect, type });
			assert.deepEqual(await j.result({ timeout: 10000 }), { via: m.dialect, type });
		}
});

test('many jobs in flight on one connection come back to their own jobs', async (t) => {
	echo(t, 'many', { capacity: 16 }, (j) => j.respond({ n: j.body.n * 2 }));
	const jobs = await Promise.all(Array.from({ length: 2000 },
	    (_, n) => c.submit('many', { n })));
	const res = await Promise.all(jobs.map((j) => j.result()));
	assert.deepEqual(res.map((r) => r.n), jobs.map((_, n) => n * 2));
});

test('priority: higher first, in submission order within one', async (t) => {
	const order = [];
	await c.submit('prio', 'low', { priority: -1 });
	await c.submit('prio', 'mid1');
	await c.submit('prio', 'high', { priority: 5 });
	const last = await c.submit('prio', 'mid2', { priority: 0 });
	echo(t, 'prio', {}, (j) => { order.push(j.body); j.respond(null); });
	await until(() => order.length === 4);
	await last.result();
	assert.deepEqual(order, ['high', 'mid1', 'mid2', 'low']);
});

test('timeout: a job nobody takes ends with JobTimeoutError', async () => {
	const j = await c.submit('nobody', 1, { timeout: 50 });
	await assert.rejects(j.result(), (e) => e instanceof JobTimeoutError &&
	    e.code === 'timeout' && e.id === j.id);
	assert.equal((await j.status()).status, 'timeout');
});

test('result({timeout}) gives up waiting, the job goes on', async () => {
	const j = await c.submit('later', 1);
	await assert.rejects(j.result({ timeout: 30 }), WaitTimeoutError);
	assert.equal((await j.status()).status, 'queued');
	assert.equal(await j.cancel(), true);
	await assert.rejects(j.result(), JobCancelledError);
});

test('detach: the job outlives its master, another client waits for it', async (t) => {
	const m = new Client(d.opts);
	const kept = await m.submit('det', 'kept', { detach: true });
	const gone = await m.submit('det', 'gone');
	m.close();
	await assert.rejects(kept.result());
	await until(async () => (await c.status(gone.id)).status === 'cancelled');
	echo(t, 'det');
	assert.equal(await c.wait(kept.id), 'kept');
	assert.equal(await c.job(kept.id).result(), 'kept');
});

test('notify and stream: running notice and partials, in order', async (t) => {
	echo(t, 'prog', { name: 'prog-1' }, (j) => {
		j.progress({ pct: 50 });
		j.progress({ pct: 90 });
		j.respond('done');
	});
	const j = await c.submit('prog', 0, { notify: true, stream: true });
	const seen = [];
	j.on('running', (r) => seen.push(['running', r.worker]));
	j.on('partial', (b) => seen.push(['partial', b.pct]));
	assert.equal(await j.result(), 'done');
	assert.deepEqual(seen, [['running', 'prog-1'], ['partial', 50], ['partial', 90]]);
	// Without stream, partials are not sent.
	const q = await c.submit('prog', 0);
	q.on('partial', () => assert.fail('a partial without stream'));
	assert.equal(await q.result(), 'done');
});

test('worker: a job aimed at a named worker waits for it', async (t) => {
	echo(t, 'aim', { name: 'other' }, (j) => j.respond('other'));
	await until(async () => (await workersOf('aim')) === 1);
	const j = await c.submit('aim', 0, { worker: 'target' });
	const k = await c.submit('aim', 0);
	assert.equal(await k.result(), 'other');
	assert.equal((await j.status()).status, 'queued');
	echo(t, 'aim', { name: 'target' }, (x) => x.respond('target'));
	assert.equal(await j.result(), 'target');
});

test('retries and backoff: a failed attempt runs again; fail after the last', async (t) => {
	let n = 0;
	echo(t, 'retry', {}, (j) => {
		if (j.body === 'flaky' && ++n === 1)
			j.fail(new Error('first try fails'));
		else if (j.body === 'bad')
			j.fail({ exit: 3 }, { log: 'no such file\n' });
		else
			j.respond('ok');
	});
	const j = await c.submit('retry', 'flaky', { retries: 2, backoff: 10 });
	assert.equal(await j.result(), 'ok');
	const st = await j.status();
	assert.equal(st.attempts.length, 2);
	assert.deepEqual(st.attempts[0].error, { error: 'first try fails', name: 'Error' });
	const b = await c.submit('retry', 'bad', { retries: 1, backoff: 10 });
	await assert.rejects(b.result(), (e) => e instanceof JobFailedError &&
	    e.lastError.exit === 3);
	assert.equal((await b.status()).log, 'no such file\n');
});

test('delay, at and after: held, then run in order', async (t) => {
	const order = [];
	echo(t, 'hold', {}, (j) => { order.push(j.body); j.respond(j.body); });
	const first = await c.submit('hold', 'delayed', { delay: 300 });
	const atJob = await c.submit('hold', 'at', { at: new Date(Date.now() + 300) });
	const dep = await c.submit('hold', 'after', { after: [first, atJob.id] });
	assert.equal((await first.status()).status, 'delayed');
	assert.equal((await atJob.status()).status, 'delayed');
	assert.equal((await dep.status()).status, 'waiting');
	assert.equal(await dep.result(), 'after');
	assert.equal(order[2], 'after');
	assert.deepEqual(order.slice(0, 2).sort(), ['at', 'delayed']);
});

test('cancel: the running worker sees its signal and event, the master JobCancelledError', async (t) => {
	let got;
	echo(t, 'cx', {}, (j) => { got = j; });
	const j = await c.submit('cx', 1);
	await until(() => got);
	const events = [];
	got.on('cancelled', () => events.push('event'));
	got.signal.addEventListener('abort', () => events.push('signal'));
	assert.equal(await j.cancel(), true);
	await assert.rejects(j.result(), (e) => e instanceof JobCancelledError && e.id === j.id);
	await until(() => events.length === 2);
	assert.equal(got.respond('late'), false, 'nothing is sent for a cancelled job');
	// The slot is free: the next job runs on the same worker.
	got = null;
	const k = await c.submit('cx', 2);
	await until(() => got);
	got.respond('next');
	assert.equal(await k.result(), 'next');
	assert.equal(await k.cancel(), false, 'an ended job is not cancelled');
	// A job's own timeout cancels its running worker too.
	got = null;
	const tj = await c.submit('cx', 3, { timeout: 200 });
	await until(() => got);
	await until(() => got.signal.aborted);
	await assert.rejects(tj.result(), JobTimeoutError);
});

test('refusals: action submit rejects, seed result rejects, status of no job', async (t) => {
	const j = await c.submit('refuse', 1, { id: 'dup-1' });
	const other = new Client(d.opts);
	const seed = new Client({ ...d.opts, dialect: 'seed' });
	t.after(() => { other.close(); seed.close(); });
	await assert.rejects(other.submit('refuse', 1, { id: 'dup-1' }),
	    (e) => e instanceof RequestError && e.code === 'id_exists');
	const s = await seed.submit('refuse', 1, { id: 'dup-1' });
	await assert.rejects(s.result(), (e) => e.code === 'id_exists');
	await assert.rejects(c.submit('bad/type', 1), (e) => e.code === 'invalid_type');
	await assert.rejects(c.status('no-such-job'), (e) => e.code === 'unknown_id');
	assert.equal(await c.cancel('no-such-job'), false);
	// Still usable: the first job completes.
	echo(t, 'refuse');
	assert.equal(await j.result(), 1);
});

test('heartbeat: the worker answers pings and is kept; a job still completes', async (t) => {
	// Heartbeats of 300 ms: a loaded machine may hold the worker's loop up
	// for a while, and three missed ones would drop it.
	const w = echo(t, 'hb', { heartbeat: 300 });
	let pings = 0, lost = 0;
	w.on('ping', () => pings++);
	w.on('disconnect', () => lost++);
	await until(() => pings >= 4, 20000, 'four pings');
	assert.equal(lost, 0);
	assert.equal(await workersOf('hb'), 1);
	assert.equal(await (await c.submit('hb', 'beat')).result(), 'beat');
});

test('capacity: never more jobs at once than asked for', async (t) => {
	const running = new Set();
	let most = 0;
	echo(t, 'cap', { capacity: 3 }, (j) => {
		running.add(j);
		most = Math.max(most, running.size);
		setTimeout(() => { running.delete(j); j.respond(null); }, 5);
	});
	const jobs = await Promise.all(Array.from({ length: 30 }, () => c.submit('cap', 0)));
	await Promise.all(jobs.map((j) => j.result()));
	assert.equal(most, 3);
});

test('channels: publish reaches subscribers until they unsubscribe', async () => {
	const got = [];
	const other = new Client(d.opts);
	const off = await other.subscribe('news', (b) => got.push(b));
	await c.publish('news', { n: 1 });
	await until(() => got.length === 1);
	off();
	await other.ping();
	await c.publish('news', { n: 2 });
	await c.ping();
	await other.ping();
	other.close();
	assert.deepEqual(got, [{ n: 1 }]);
});
