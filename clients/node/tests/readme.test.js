// readme.test.js — the README's code blocks, run as they stand against a
// daemon of their own.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '../index.js';
import { Daemon, HERE, TMP, track } from './helpers.js';

let d;
before(async () => { d = await new Daemon().start(); });
after(async () => assert.equal(await d.stop(), 0, 'the daemon exits cleanly'));

// ended(p, ms): p's stdout and how it exited; SIGKILL if it has not
// exited within ms.
function ended(p, ms) {
	let out = '';
	p.stdout.on('data', (b) => { out += b; });
	return new Promise((res) => {
		const timer = setTimeout(() => p.kill('SIGKILL'), ms);
		p.once('exit', (code, signal) => {
			clearTimeout(timer);
			res({ out, code, signal });
		});
	});
}

test('the README worker and master run as written: id and result, the partial first; SIGTERM ends the worker', async (t) => {
	const blocks = [...readFileSync(path.join(HERE, '..', 'README.md'), 'utf8')
	    .matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
	assert.equal(blocks.length, 2, 'a README js block that no test runs');
	// A directory whose node_modules/jobfs is this client, as after npm install.
	const dir = path.join(TMP, 'readme');
	mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
	symlinkSync(path.resolve(HERE, '..'), path.join(dir, 'node_modules', 'jobfs'));
	writeFileSync(path.join(dir, 'worker.mjs'), blocks[0]);
	writeFileSync(path.join(dir, 'master.mjs'), blocks[1]);
	const opts = { cwd: dir, env: d.env(), stdio: ['ignore', 'pipe', 'inherit'] };
	const w = track(spawn(process.execPath, ['worker.mjs'], opts));
	const wEnd = ended(w, 120000);
	t.after(() => w.kill('SIGKILL'));
	const m = await ended(track(spawn(process.execPath, ['master.mjs'], opts)), 60000);
	assert.equal(m.code, 0, `master: ${JSON.stringify(m)}`);
	const out = m.out.split('\n');
	assert.equal(out.length, 3, m.out);
	assert.equal(out[0], 'progress { pct: 50 }');
	assert.match(out[1], /^\S+ \{ ok: true, w: 100 \}$/);
	assert.equal(out[2], '');
	const c = new Client(d.opts);
	t.after(() => c.close());
	assert.equal((await c.status(out[1].split(' ')[0])).status, 'done');
	// The worker serves until it is stopped.
	assert.equal(w.exitCode, null, 'the worker ended before it was stopped');
	w.kill('SIGTERM');
	assert.equal((await wEnd).signal, 'SIGTERM');
});
