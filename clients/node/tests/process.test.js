// process.test.js — worker processes killed with SIGKILL, daemons
// restarted under workers, and a master and a worker in a few lines.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, worker } from '../index.js';
import { Daemon, HERE, TMP, jobctl, serve, track, until } from './helpers.js';

let d, c;
before(async () => {
	d = await new Daemon().start();
	c = new Client(d.opts);
});
after(async () => {
	c.close();
	assert.equal(await d.stop(), 0, 'the daemon exits cleanly');
});

// lines(p): the lines process p printed so far (an array that grows).
function lines(p) {
	const out = [];
	let part = '';
	p.stdout.on('data', (b) => {
		const l = (part + b).split('\n');
		part = l.pop();
		out.push(...l);
	});
	return out;
}

test('kill -9 of a worker process: its job is requeued and completes elsewhere', async (t) => {
	const p = track(spawn(process.execPath, [path.join(HERE, 'hold-worker.js'), 'k9'],
	    { env: d.env(), stdio: ['ignore', 'pipe', 'inherit'] }));
	const out = lines(p);
	const j = await c.submit('k9', 'body');
	await until(() => out.includes(`got ${j.id}`));
	const dead = new Promise((r) => p.once('exit', r));
	p.kill('SIGKILL');
	await dead;
	await until(async () => (await j.status()).status === 'queued');
	const w = serve(worker('k9', d.opts), (x) => x.respond(`again: ${x.body}`));
	t.after(() => w.close());
	assert.equal(await j.result(), 'again: body');
	const st = await j.status();
	assert.equal(st.losses, 1);
	assert.equal(st.requeues, 1);
});

test('a master and a worker in a few lines of one file run as they stand, and the worker survives a daemon restart', async (t) => {
	const dir = path.join(TMP, 'app');
	mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
	symlinkSync(path.resolve(HERE, '..'), path.join(dir, 'node_modules', 'jobfs'));
	writeFileSync(path.join(dir, 'app.mjs'), `import { Client, worker } from "jobfs";
const c = new Client();
const job = await c.submit("resize", { w: 100 });
console.log(job.id, await job.result());
for await (const j of worker("resize", { capacity: 4 })) { j.progress({ pct: 50 }); j.respond({ ok: true }); }
`);
	// Its first job is answered by a jobctl worker.
	const w = serve(worker('resize', d.opts), (j) => j.respond({ seen: j.body }));
	const app = track(spawn(process.execPath, ['app.mjs'],
	    { cwd: dir, env: d.env(), stdio: ['ignore', 'pipe', 'inherit'] }));
	t.after(() => app.kill('SIGKILL'));
	const out = lines(app);
	await until(() => out.length > 0);
	assert.match(out[0], /^\S+ \{ seen: \{ w: 100 \} \}$/);
	w.close();
	// Now the snippet's own worker serves resize, with a partial.
	await until(async () => (await c.stats('resize')).types.resize?.workers === 1);
	const j = await c.submit('resize', {}, { stream: true });
	const parts = [];
	j.on('partial', (b) => parts.push(b));
	assert.deepEqual(await j.result(), { ok: true });
	assert.deepEqual(parts, [{ pct: 50 }]);
	// The daemon goes away and comes back on the same ports.
	c.close();
	assert.equal(await d.restart(), 0);
	c = new Client(d.opts);
	await until(async () => (await c.stats('resize')).types.resize?.workers === 1);
	assert.equal(jobctl(['submit', 'resize', '{"w":7}'], d.env()).trim(), '{"ok":true}');
});

test('a job held across a restart of a daemon with a journal: the answer counts', async (t) => {
	const dd = await new Daemon(['--data', path.join(TMP, 'journal')]).start();
	t.after(() => dd.stop());
	let got = null;
	const w = serve(worker('held', dd.opts), (j) => { got = j; });
	t.after(() => w.close());
	let m = new Client(dd.opts);
	const j = await m.submit('held', 'x', { detach: true });
	await until(() => got);
	const back = new Promise((r) => w.once('reconnect', r));
	m.close();
	assert.equal(await dd.restart(), 0);
	await back;
	got.respond('held answer');
	m = new Client(dd.opts);
	t.after(() => m.close());
	assert.equal(await m.wait(j.id), 'held answer');
	// The worker serves new jobs after that.
	got = null;
	const k = await m.submit('held', 'y');
	await until(() => got && got.id === k.id);
	got.respond('new');
	assert.equal(await k.result(), 'new');
});
