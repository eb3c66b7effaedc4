// options.js — connection options, from the arguments or else from the
// environment that jobctl reads too.

import { readFileSync } from 'node:fs';

function envPort(name, dflt) {
	const v = process.env[name];
	if (v === undefined || v === '')
		return dflt;
	const n = Number(v);
	if (!Number.isInteger(n) || n < 1 || n > 65535)
		throw new TypeError(`${name}=${v}: not a port number`);
	return n;
}

function env(name) {
	const v = process.env[name];
	return v === undefined || v === '' ? undefined : v;
}

/** resolve(o): the options with every one not given taken from the
 * environment (JOBFS_HOST, JOBFS_MASTER_PORT, JOBFS_WORKER_PORT,
 * JOBFS_TOKEN or JOBFS_TOKEN_FILE, JOBFS_TLS, JOBFS_CA, JOBFS_CERT,
 * JOBFS_KEY) or the defaults. */
export function resolve(o = {}) {
	const r = {
		host: o.host ?? env('JOBFS_HOST') ?? '127.0.0.1',
		masterPort: o.masterPort ?? envPort('JOBFS_MASTER_PORT', 9998),
		workerPort: o.workerPort ?? envPort('JOBFS_WORKER_PORT', 9999),
		token: o.token,
		tokenFile: o.token === undefined ? env('JOBFS_TOKEN_FILE') : undefined,
		ca: o.ca ?? env('JOBFS_CA'),
		cert: o.cert ?? env('JOBFS_CERT'),
		key: o.key ?? env('JOBFS_KEY'),
		tls: o.tls,
		connectTimeout: o.connectTimeout ?? 10000,
	};
	if (r.token === undefined && env('JOBFS_TOKEN') !== undefined) {
		r.token = env('JOBFS_TOKEN');
		r.tokenFile = undefined;
	}
	if (r.tls === undefined)
		r.tls = env('JOBFS_TLS') === '1' || r.ca !== undefined ||
		    r.cert !== undefined || r.key !== undefined;
	if ((r.cert === undefined) !== (r.key === undefined))
		throw new TypeError('a client certificate needs both cert and key');
	return r;
}

/** token(r): the token to send, read from the token file at each
 * connection (so a changed file is picked up when a worker reconnects). */
export function token(r) {
	if (r.token !== undefined)
		return r.token;
	if (r.tokenFile === undefined)
		return undefined;
	const line = readFileSync(r.tokenFile, 'utf8').split('\n')[0].trim();
	if (line === '')
		throw new TypeError(`${r.tokenFile}: no token on its first line`);
	return line;
}

// A PEM given as text or a Buffer is used as it is; anything else names a
// file.
function pem(v) {
	if (v === undefined || Buffer.isBuffer(v) || /-----BEGIN /.test(v))
		return v;
	return readFileSync(v);
}

/** tlsOptions(r): the node:tls options for r (null without TLS). */
export function tlsOptions(r) {
	if (!r.tls)
		return null;
	const t = { minVersion: 'TLSv1.2' };
	if (r.ca !== undefined)
		t.ca = pem(r.ca);
	if (r.cert !== undefined) {
		t.cert = pem(r.cert);
		t.key = pem(r.key);
	}
	return t;
}
