// seed.test.js — Gloom's seed exchange, frame for frame: a seed-dialect
// master and a worker with no extension option send exactly the frames of
// Gloom's README and get exactly its replies, recorded byte for byte by a
// proxy between them and the daemon.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Client, worker } from '../index.js';
import { Daemon, until } from './helpers.js';

// A proxy to port that records each frame's JSON text, per direction.
function proxy(port) {
	const rec = { up: [], down: [] };
	const frames = (into) => {
		let buf = Buffer.alloc(0);
		return (d) => {
			buf = Buffer.concat([buf, d]);
			while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
				const n = buf.readUInt32BE(0);
				into.push(buf.toString('utf8', 4, 4 + n));
				buf = buf.subarray(4 + n);
			}
		};
	};
	const srv = net.createServer((a) => {
		const b = net.connect(port, '127.0.0.1');
		a.on('data', frames(rec.up));
		b.on('data', frames(rec.down));
		a.pipe(b);
		b.pipe(a);
		a.on('error', () => b.destroy());
		b.on('error', () => a.destroy());
		a.on('close', () => b.destroy());
		b.on('close', () => a.destroy());
	});
	return new Promise((res) => srv.listen(0, '127.0.0.1',
	    () => res({ rec, port: srv.address().port, srv })));
}

let d;
before(async () => {
	d = await new Daemon().start();
});
after(async () => {
	assert.equal(await d.stop(), 0);
});

test("Gloom's seed exchange, frame for frame, both sides", async () => {
	const wp = await proxy(d.workerPort);
	const mp = await proxy(d.masterPort);
	const w = worker('echo', { ...d.opts, workerPort: wp.port, cancel: false });
	const it = w[Symbol.asyncIterator]();
	await until(() => wp.rec.up.length === 1);
	const c = new Client({ ...d.opts, masterPort: mp.port, dialect: 'seed' });
	const job = await c.submit('echo', { n: 1 }, { id: 'message_id' });
	const { value: j } = await it.next();
	assert.equal(j.id, 'message_id');
	assert.deepEqual(j.body, { n: 1 });
	j.respond({ n: 1 });
	assert.deepEqual(await job.result(), { n: 1 });
	// A second job on the same connections: the same frames again.
	const job2 = await c.submit('echo', 'two', { id: 2 });
	const { value: j2 } = await it.next();
	j2.respond('owt');
	assert.equal(await job2.result(), 'owt');
	await until(() => mp.rec.down.length === 2);
	assert.deepEqual(wp.rec.up, [
		'{"type":"join","job_type":"echo"}',
		'{"type":"response","body":{"n":1}}',
		'{"type":"response","body":"owt"}',
	]);
	assert.deepEqual(wp.rec.down, [
		'{"type":"job","id":"message_id","body":{"n":1}}',
		'{"type":"job","id":2,"body":"two"}',
	]);
	assert.deepEqual(mp.rec.up, [
		'{"type":"job","job_type":"echo","id":"message_id","body":{"n":1}}',
		'{"type":"job","job_type":"echo","id":2,"body":"two"}',
	]);
	assert.deepEqual(mp.rec.down, [
		'{"id":"message_id","body":{"n":1}}',
		'{"id":2,"body":"owt"}',
	]);
	c.close();
	w.close();
	wp.srv.close();
	mp.srv.close();
});

test('the action dialect, frame for frame: acks awaited, jobs and answers spelled with action', async () => {
	const wp = await proxy(d.workerPort);
	const mp = await proxy(d.masterPort);
	const w = worker('later', { ...d.opts, workerPort: wp.port, cancel: false, dialect: 'action' });
	const it = w[Symbol.asyncIterator]();
	await until(() => wp.rec.down.length === 1);
	const c = new Client({ ...d.opts, masterPort: mp.port });
	const job = await c.submit('later', [1], { id: 'a1', priority: 5 });
	const { value: j } = await it.next();
	j.respond([2]);
	assert.deepEqual(await job.result(), [2]);
	await until(() => wp.rec.down.length === 3);
	assert.deepEqual(wp.rec.up, [
		'{"action":"join","type":"later"}',
		'{"action":"respond","body":[2]}',
	]);
	assert.deepEqual(wp.rec.down, [
		'{"ok":true}',
		'{"action":"job","id":"a1","type":"later","body":[1]}',
		'{"ok":true}',
	]);
	assert.deepEqual(mp.rec.up, ['{"action":"submit","id":"a1","type":"later","body":[1],"priority":5}']);
	assert.deepEqual(mp.rec.down, ['{"ok":true,"id":"a1"}', '{"id":"a1","body":[2]}']);
	c.close();
	w.close();
	wp.srv.close();
	mp.srv.close();
});
