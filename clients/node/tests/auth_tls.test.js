// auth_tls.test.js — tokens (argument, JOBFS_TOKEN, JOBFS_TOKEN_FILE) and
// TLS (CA, client certificates) on both ports.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AuthError, Client, ConnectionError, worker } from '../index.js';
import { Daemon, TMP, TOK, certs, serve, tokenFile } from './helpers.js';

let C, tokens, auth, tls;
before(async () => {
	C = certs();
	tokens = tokenFile();
	auth = await new Daemon(['--auth', tokens]).start();
	tls = await new Daemon(['--auth', tokens, '--tls-cert', path.join(C, 'srv.pem'),
		'--tls-key', path.join(C, 'srv.key'), '--tls-ca', path.join(C, 'ca.pem')]).start();
});
after(async () => {
	assert.equal(await auth.stop(), 0);
	assert.equal(await tls.stop(), 0);
});

// withEnv(vars, fn): fn() with those environment variables set.
async function withEnv(vars, fn) {
	const old = {};
	for (const k of Object.keys(vars)) {
		old[k] = process.env[k];
		process.env[k] = vars[k];
	}
	try {
		return await fn();
	} finally {
		for (const k of Object.keys(vars))
			if (old[k] === undefined)
				delete process.env[k];
			else
				process.env[k] = old[k];
	}
}

test('auth: tokens as arguments, from JOBFS_TOKEN and from JOBFS_TOKEN_FILE', async (t) => {
	const w = serve(worker('secure', { ...auth.opts, token: TOK.wk }), (j) => j.respond(j.body + 1));
	t.after(() => w.close());
	const a = new Client({ ...auth.opts, token: TOK.alice });
	t.after(() => a.close());
	assert.equal(await (await a.submit('secure', 1)).result(), 2);
	const f = path.join(TMP, 'alice.token');
	writeFileSync(f, `${TOK.alice}\n`);
	await withEnv({ ...auth.env(), JOBFS_TOKEN_FILE: f }, async () => {
		const b = new Client();
		assert.equal(await (await b.submit('secure', 10)).result(), 11);
		b.close();
	});
	await withEnv({ ...auth.env(), JOBFS_TOKEN: TOK.root, JOBFS_TOKEN_FILE: '/nonexistent' }, async () => {
		const r = new Client();
		assert.equal((await r.status((await r.submit('secure', 20)).id)).owner, 'root');
		r.close();
	});
});

test('auth: a wrong token, no token or a wrong role is a clear AuthError', async (t) => {
	const bad = new Client({ ...auth.opts, token: 'nope' });
	await assert.rejects(bad.submit('secure', 1), (e) => e instanceof AuthError && e.code === 'auth_failed');
	const none = new Client(auth.opts);
	await assert.rejects(none.submit('secure', 1), (e) => e instanceof AuthError && e.code === 'auth_required');
	const wk = new Client({ ...auth.opts, token: TOK.wk });
	t.after(() => wk.close());
	await assert.rejects(wk.submit('secure', 1), (e) => e instanceof AuthError && e.code === 'forbidden');
	const w = worker('secure', { ...auth.opts, token: 'nope' });
	await assert.rejects((async () => { for await (const j of w) j.respond(0); })(), AuthError);
	const wm = worker('secure', { ...auth.opts, token: TOK.alice });
	await assert.rejects((async () => { for await (const j of wm) j.respond(0); })(),
	    (e) => e instanceof AuthError && e.code === 'forbidden');
	// Others' work goes on.
	const ok = serve(worker('secure2', { ...auth.opts, token: TOK.wk }));
	t.after(() => ok.close());
	const a = new Client({ ...auth.opts, token: TOK.alice });
	t.after(() => a.close());
	assert.equal(await (await a.submit('secure2', 'fine')).result(), 'fine');
});

test('TLS: CA and client certificates on both ports, from options and the environment', async (t) => {
	const ca = path.join(C, 'ca.pem');
	const w = serve(worker('tls', { ...tls.opts, ca, cert: path.join(C, 'wk.pem'),
		key: path.join(C, 'wk.key') }), (j) => j.respond(`tls ${j.body}`));
	t.after(() => w.close());
	await withEnv({ ...tls.env(), JOBFS_CA: ca, JOBFS_CERT: path.join(C, 'alice.pem'),
		JOBFS_KEY: path.join(C, 'alice.key') }, async () => {
		const a = new Client();
		const j = await a.submit('tls', 1);
		assert.equal(await j.result(), 'tls 1');
		// The certificate's CN is the name the daemon knows it by.
		assert.equal((await j.status()).owner, 'alice');
		a.close();
	});
	// A token over TLS, the certificate PEMs given as text.
	const { readFileSync } = await import('node:fs');
	const b = new Client({ ...tls.opts, tls: true, ca: readFileSync(ca, 'utf8'),
		cert: readFileSync(path.join(C, 'alice.pem')), key: readFileSync(path.join(C, 'alice.key')),
		token: TOK.alice });
	assert.equal(await (await b.submit('tls', 2)).result(), 'tls 2');
	b.close();
	// Without the CA the daemon's certificate is not trusted.
	const nc = new Client({ ...tls.opts, tls: true, cert: path.join(C, 'alice.pem'),
		key: path.join(C, 'alice.key') });
	await assert.rejects(nc.submit('tls', 3), ConnectionError);
	// Plain frames to a TLS port: refused with tls_required.
	const plain = new Client({ ...tls.opts, token: TOK.alice, tls: false });
	await assert.rejects(plain.submit("tls", 4), /tls_required/);
});
