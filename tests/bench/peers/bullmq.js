// BullMQ's side of tests/bench/redis.sh's peers shape.  One process per
// role, as BullMQ is deployed: producers (masters) and workers apart.
//
//   node bullmq.js work  URL QUEUE CONCURRENCY [N]  a Worker; prints READY once
//       connected; with N, exits after N jobs completed and prints the drain
//       RESULT (timed from READY to the N-th completion)
//   node bullmq.js rt    URL QUEUE M K N BYTES      M producers (a Queue each,
//       K jobs in flight each) and one QueueEvents: a job is answered when
//       its "completed" event arrives with the body as the return value
//   node bullmq.js bulk  URL QUEUE N BYTES CHUNK     addBulk of N jobs, CHUNK
//       at a time, no worker
//
// Output: one "RESULT key=value ..." line (n, secs, jobs_per_sec, p50_us,
// p99_us, errors).  Bodies are strings of BYTES characters, checked on
// return.
'use strict';
const { Queue, Worker, QueueEvents } = require('bullmq');

function conn(url) {
	const u = new URL(url);
	return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

function body(i, bytes) {
	const s = `${i}-`;
	return s + String.fromCharCode(97 + (i % 26)).repeat(Math.max(0, bytes - s.length));
}

function pct(v, p) {
	if (!v.length) return 0;
	return v[Math.min(v.length - 1, Math.round(p * (v.length - 1)))];
}

function result(fields) {
	console.log('RESULT ' + Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' '));
}

async function work(url, name, concurrency, n) {
	let done = 0, t0 = 0;
	const w = new Worker(name, async (job) => job.data.b,
		{ connection: conn(url), concurrency, autorun: false });
	w.on('error', (e) => console.error('worker error:', e.message));
	await w.waitUntilReady();
	if (n) {
		w.on('completed', () => {
			if (++done === n) {
				const secs = (Date.now() - t0) / 1000;
				result({ n, secs: secs.toFixed(3), jobs_per_sec: (n / secs).toFixed(0), errors: 0 });
				w.close().then(() => process.exit(0));
			}
		});
	}
	t0 = Date.now();
	console.log('READY');
	w.run();
}

async function rt(url, name, M, K, N, bytes) {
	const qe = new QueueEvents(name, { connection: conn(url) });
	await qe.waitUntilReady();
	const queues = [];
	for (let m = 0; m < M; m++) {
		queues.push(new Queue(name, { connection: conn(url) }));
		await queues[m].waitUntilReady();
	}
	const pending = new Map(); // job id -> [index, start time]
	const lat = [];
	let next = 0, answered = 0, errors = 0;
	let finish;
	const over = new Promise((r) => { finish = r; });
	const send = (m) => {
		if (next >= N) return;
		const i = next++;
		const t = process.hrtime.bigint();
		queues[m].add('echo', { b: body(i, bytes) }).then((job) => {
			// The event may come before add() resolves: then it waits here.
			const early = pending.get(job.id);
			pending.set(job.id, [i, t, m]);
			if (early && early.done) settle(job.id, early.value);
		}, (e) => { errors++; console.error('add:', e.message); answered++; });
	};
	const settle = (id, value) => {
		const p = pending.get(id);
		if (!p || p.done) { pending.set(id, { done: true, value }); return; }
		pending.delete(id);
		const [i, t, m] = p;
		if (value !== body(i, bytes)) errors++;
		lat.push(Number(process.hrtime.bigint() - t) / 1000);
		if (++answered >= N) finish();
		else send(m);
	};
	qe.on('completed', ({ jobId, returnvalue }) => {
		let v = returnvalue;
		if (typeof v === 'string') { try { v = JSON.parse(v); } catch (e) { /* as is */ } }
		settle(jobId, v);
	});
	qe.on('failed', ({ jobId }) => { errors++; settle(jobId, null); });
	const t0 = process.hrtime.bigint();
	for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) send(m);
	await over;
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	lat.sort((a, b) => a - b);
	result({ n: N, secs: secs.toFixed(3), jobs_per_sec: (N / secs).toFixed(0),
		p50_us: pct(lat, 0.5).toFixed(1), p99_us: pct(lat, 0.99).toFixed(1), errors });
	await Promise.all(queues.map((q) => q.close()));
	await qe.close();
	process.exit(errors ? 1 : 0);
}

async function bulk(url, name, N, bytes, chunk) {
	const q = new Queue(name, { connection: conn(url) });
	await q.waitUntilReady();
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < N; i += chunk) {
		const jobs = [];
		for (let j = i; j < Math.min(N, i + chunk); j++)
			jobs.push({ name: 'echo', data: { b: body(j, bytes) } });
		await q.addBulk(jobs);
	}
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	result({ n: N, secs: secs.toFixed(3), jobs_per_sec: (N / secs).toFixed(0), errors: 0 });
	await q.close();
	process.exit(0);
}

const [mode, url, name, ...a] = process.argv.slice(2);
const num = (s) => Number(s);
const run = mode === 'work' ? work(url, name, num(a[0]), num(a[1] || 0))
	: mode === 'rt' ? rt(url, name, num(a[0]), num(a[1]), num(a[2]), num(a[3]))
	: mode === 'bulk' ? bulk(url, name, num(a[0]), num(a[1]), num(a[2] || 1000))
	: Promise.reject(new Error(`unknown mode ${mode}`));
run.catch((e) => { console.error('bullmq.js:', e.message); process.exit(1); });
