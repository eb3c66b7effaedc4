#!/usr/bin/env node
// bench.js — make bench's throughput shape with this client on both
// sides: M masters (Clients) with K jobs in flight each in one process, W
// workers (capacity 1 each) in another, S-byte bodies, N jobs.  Prints
// jobs/s and the CPU per job of each client process.
//
//   node clients/node/bench.js [--masters 4] [--inflight 64] [--workers 8]
//       [--size 100] [--n 200000] [--dialect action|seed]
//
// The daemon is the one the environment names (JOBFS_MASTER_PORT, ...),
// or, with --jobfs PATH, one started here on free ports.

import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { Client, worker } from './index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
	const i = args.indexOf(`--${name}`);
	return i < 0 ? dflt : args[i + 1];
};
const M = Number(opt('masters', 4)), K = Number(opt('inflight', 64));
const W = Number(opt('workers', 8)), S = Number(opt('size', 100));
const N = Number(opt('n', 200000));
const dialect = opt('dialect', 'action');
const role = opt('role', 'main');

function cpu() {
	const u = process.cpuUsage();
	return (u.user + u.system) / 1e6;
}

// body(i): a JSON string of exactly S bytes, as the C load generator's.
function body(i) {
	const head = `${i}-`;
	return head + 'abcdefghijklmnopqrstuvwxyz'[i % 26].repeat(Math.max(0, S - 2 - head.length));
}

if (role === 'worker') {
	const ws = [];
	for (let i = 0; i < W; i++) {
		const w = worker('echo', {});
		ws.push(w);
		(async () => {
			for await (const j of w)
				j.respond(j.body);
		})();
	}
	const c0 = cpu();
	process.on('message', (m) => {
		if (m === 'stop') {
			process.send({ cpu: cpu() - c0 });
			for (const w of ws)
				w.close();
			process.exit(0);
		}
	});
	process.send('up');
} else if (role === 'master') {
	const clients = Array.from({ length: M }, () => new Client({ dialect }));
	await Promise.all(clients.map((c) => c.ping()));
	let next = 0, done = 0, errors = 0;
	const c0 = cpu(), t0 = process.hrtime.bigint();
	async function lane(c) {
		while (next < N) {
			const i = next++;
			const b = body(i);
			const j = await c.submit('echo', b);
			if (await j.result() !== b)
				errors++;
			done++;
		}
	}
	const lanes = [];
	for (const c of clients)
		for (let k = 0; k < K; k++)
			lanes.push(lane(c));
	await Promise.all(lanes);
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	process.send({ secs, cpu: cpu() - c0, done, errors });
	for (const c of clients)
		c.close();
} else {
	const self = fileURLToPath(import.meta.url);
	let daemon = null;
	const env = { ...process.env };
	const jobfs = opt('jobfs', null);
	if (jobfs !== null) {
		const free = () => new Promise((res) => {
			const s = net.createServer().listen(0, '127.0.0.1', () => {
				const p = s.address().port;
				s.close(() => res(p));
			});
		});
		env.JOBFS_MASTER_PORT = String(await free());
		env.JOBFS_WORKER_PORT = String(await free());
		daemon = spawn(jobfs, ['-f', '--master-port', env.JOBFS_MASTER_PORT,
			'--worker-port', env.JOBFS_WORKER_PORT], { stdio: ['ignore', 'ignore', 'pipe'] });
		await new Promise((res) => {
			let t = '';
			daemon.stderr.on('data', (d) => { t += d; if (t.includes(' workers on ')) res(); });
		});
		Object.assign(process.env, env);
	}
	// BENCH_NODE_ARGS: node options for the two client processes
	// (--cpu-prof, say).
	const execArgv = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
	const once = (p) => new Promise((res) => p.once('message', res));
	const wk = fork(self, [...args, '--role', 'worker'], { env, execArgv });
	await once(wk);
	const probe = new Client();
	while (((await probe.stats('echo')).types.echo?.workers ?? 0) < W)
		await new Promise((r) => setTimeout(r, 20));
	probe.close();
	// The daemon's CPU (when started here), from /proc, in seconds.
	const { readFileSync } = await import('node:fs');
	const dcpu = () => {
		if (!daemon)
			return NaN;
		const f = readFileSync(`/proc/${daemon.pid}/stat`, 'utf8').split(') ')[1].split(' ');
		return (Number(f[11]) + Number(f[12])) / 100;
	};
	const d0 = dcpu();
	const ms = fork(self, [...args, '--role', 'master'], { env, execArgv });
	const r = await once(ms);
	const d1 = dcpu();
	wk.send('stop');
	const wr = await once(wk);
	if (daemon)
		daemon.kill('SIGTERM');
	const rate = r.done / r.secs;
	console.log(`node client: M=${M} K=${K} W=${W} S=${S} N=${N} dialect=${dialect}: ` +
	    `${Math.round(rate)} jobs/s (${r.secs.toFixed(2)} s, errors ${r.errors}); CPU per job: ` +
	    `masters ${(r.cpu / r.done * 1e6).toFixed(1)} us, workers ${(wr.cpu / r.done * 1e6).toFixed(1)} us` +
	    (daemon ? `, daemon ${((d1 - d0) / r.done * 1e6).toFixed(1)} us` : ''));
	process.exitCode = r.errors === 0 && r.done === N ? 0 : 1;
}
