// helpers.js — private daemons for the tests, on free ports, always
// stopped; processes the tests start are killed when the test file ends,
// however it ends.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TOP = path.resolve(HERE, '../../..');
export const BIN = process.env.JOBFS_BIN ?? path.join(TOP, 'build');
export const JOBFS = path.join(BIN, 'jobfs');
export const JOBCTL = path.join(BIN, 'jobctl');

const children = new Set();
export const TMP = mkdtempSync(path.join(tmpdir(), 'jobfs-node-'));

function killAll() {
	for (const p of children)
		try { p.kill('SIGKILL'); } catch { /* gone */ }
	rmSync(TMP, { recursive: true, force: true });
}
process.on('exit', killAll);

/** track(child): killed when the test file ends. */
export function track(p) {
	children.add(p);
	p.once('exit', () => children.delete(p));
	return p;
}

// A free port below the kernel's ephemeral range (a port a client socket
// holds cannot be listened on).
async function freePort() {
	for (;;) {
		const p = 10000 + Math.floor(Math.random() * 22000);
		const ok = await new Promise((res) => {
			const s = net.createServer();
			s.once('error', () => res(false));
			s.listen(p, '127.0.0.1', () => s.close(() => res(true)));
		});
		if (ok)
			return p;
	}
}

/** until(fn, ms): poll fn (maybe async) until it returns truthy. */
export async function until(fn, ms = 10000, what = String(fn)) {
	const end = Date.now() + ms;
	let delay = 10;
	for (;;) {
		const v = await fn();
		if (v)
			return v;
		if (Date.now() > end)
			throw new Error(`timed out waiting for: ${what}`);
		await new Promise((r) => setTimeout(r, delay));
		delay = Math.min(delay * 2, 200);
	}
}

let ndaemons = 0;

/** A jobfs -f on free ports (TCP only). */
export class Daemon {
	constructor(args = []) {
		this.args = args;
		this.log = path.join(TMP, `daemon${++ndaemons}.log`);
	}

	async start() {
		for (let attempt = 0; attempt < 5; attempt++) {
			if (this.masterPort === undefined || attempt > 0) {
				this.masterPort = await freePort();
				this.workerPort = await freePort();
			}
			if (await this._run())
				return this;
		}
		throw new Error(`jobfs did not start: ${readFileSync(this.log, 'utf8')}`);
	}

	async _run() {
		writeFileSync(this.log, '');
		const p = spawn(JOBFS, ['-f', '--master-port', String(this.masterPort),
			'--worker-port', String(this.workerPort), ...this.args],
		    { stdio: ['ignore', 'ignore', 'pipe'] });
		track(p);
		this.proc = p;
		let text = '';
		return new Promise((res) => {
			p.stderr.on('data', (d) => {
				text += d;
				writeFileSync(this.log, text);
				if (text.includes(' workers on '))
					res(true);
			});
			p.once('exit', () => res(false));
		});
	}

	/** The options a Client or worker needs to reach it. */
	get opts() {
		return { host: '127.0.0.1', masterPort: this.masterPort,
			workerPort: this.workerPort };
	}

	/** The environment jobctl and child processes read. */
	env(extra = {}) {
		return { ...process.env, JOBFS_HOST: '127.0.0.1',
			JOBFS_MASTER_PORT: String(this.masterPort),
			JOBFS_WORKER_PORT: String(this.workerPort), ...extra };
	}

	/** stop(): SIGTERM, and its exit status (a sanitizer's finding is
	 * not 0). */
	async stop() {
		const p = this.proc;
		if (p.exitCode !== null || p.signalCode !== null)
			return p.exitCode;
		return new Promise((res) => {
			p.once('exit', (code) => res(code));
			p.kill('SIGTERM');
		});
	}

	/** restart(): stopped and started again on the same ports. */
	async restart() {
		const code = await this.stop();
		for (let i = 0; i < 50; i++)
			if (await this._run())
				return code;
			else
				await new Promise((r) => setTimeout(r, 100));
		throw new Error('jobfs did not restart');
	}
}

/** jobctl(args, env): its stdout (throws on failure). */
export function jobctl(args, env) {
	return execFileSync(JOBCTL, args, { env, encoding: 'utf8', timeout: 20000 });
}

/** tokens(): a token file (alice master, wk worker, root admin). */
export const TOK = {
	alice: 'alice-0123456789abcdef0123',
	wk: 'wk-0123456789abcdef0123456789',
	root: 'root-0123456789abcdef012345',
};
export function tokenFile() {
	const f = path.join(TMP, 'tokens');
	writeFileSync(f, `# name roles... token\nalice master ${TOK.alice}\n` +
	    `wk worker ${TOK.wk}\nroot admin ${TOK.root}\n`);
	chmodSync(f, 0o600);
	return f;
}

/** certs(): a CA, a server certificate for 127.0.0.1 and client
 * certificates whose CNs are alice and wk, made with openssl as
 * tests/helpers/certs.bash does. */
export function certs() {
	const C = path.join(TMP, 'certs');
	execFileSync('mkdir', ['-p', C]);
	const sh = (cmd) => execFileSync('sh', ['-c', cmd], { cwd: C, stdio: 'ignore' });
	sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ca');
	const cert = (name, cn, ext) => {
		sh(`openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=${cn}`);
		writeFileSync(path.join(C, `${name}.ext`), `${ext}\n`);
		sh(`openssl x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial ` +
		    `-out ${name}.pem -days 2 -extfile ${name}.ext`);
	};
	cert('srv', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
	cert('alice', 'alice', 'basicConstraints=CA:FALSE');
	cert('wk', 'wk', 'basicConstraints=CA:FALSE');
	return C;
}

/** serve(w, fn): run worker w's jobs through fn(j) in the background. */
export function serve(w, fn = (j) => j.respond(j.body)) {
	(async () => {
		for await (const j of w)
			fn(j);
	})().catch(() => {});
	return w;
}
