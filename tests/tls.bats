#!/usr/bin/env bats
# tls.bats — both TCP ports over TLS (--tls-cert, --tls-key),
# client certificates (--tls-ca) standing for token names, a plain client
# on a TLS port and a TLS client on a plain port (a clear error, no
# crash), and certificates reloaded on SIGHUP.  Stalled handshakes are
# closed by --tls-handshake-timeout, and a TLS client refused by a limit
# gets a TLS alert (checked with openssl s_client and Python's ssl).  The
# certificates are made here with openssl req.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'
load 'helpers/certs'

setup() {
	command -v openssl >/dev/null || skip "no openssl(1)"
	C=$BATS_TEST_TMPDIR/certs
	mkdir -p "$C"
	make_ca ca
	make_cert srv localhost ca 'subjectAltName=DNS:localhost,IP:127.0.0.1'
	# jobctl that speaks TLS, for the helpers that run "$JOBCTL".
	PLAIN_JOBCTL=$JOBCTL
	TLS_JOBCTL=$BATS_TEST_TMPDIR/jobctl-tls
	printf '#!/bin/sh\nexec "%s" --tls --ca "%s" "$@"\n' "$PLAIN_JOBCTL" "$C/ca.pem" >"$TLS_JOBCTL"
	chmod +x "$TLS_JOBCTL"
}

TLS_PEER=$BATS_TEST_DIRNAME/helpers/tls_peer.py

# closed_by_peer N: the daemon has seen N connections closed by their peer.
closed_by_peer() {
	[ "$(grep -c 'closed: peer closed' "$DAEMON_LOG")" -ge "$1" ]
}

start_tls_daemon() {
	start_daemon --tls-cert "$C/srv.pem" --tls-key "$C/srv.key" "$@"
	JOBCTL=$TLS_JOBCTL
}

@test "both ports over TLS: jobs round trip in both dialects, a large body included" {
	start_tls_daemon
	bg "$JOBCTL" work tt -- cat
	wait_until 10 workers_are tt 1
	[ "$("$JOBCTL" submit tt '{"over":"tls"}')" = '{"over":"tls"}' ]
	big=$(python3 -c 'import json; print(json.dumps({"s": "x" * 3000000}, separators=(",", ":")))')
	out=$(printf '%s' "$big" | "$JOBCTL" submit tt -)
	[ "${#out}" = "${#big}" ]
	[ "$out" = "$big" ]
	out=$(printf '%s\n' '{"action":"submit","type":"tt","id":"a1","body":[1]}' |
		"$JOBCTL" raw -n 2 -t 10000)
	[ "$out" = $'{"ok":true,"id":"a1"}\n{"id":"a1","body":[1]}' ]
	assert_daemon_healthy
}

@test "a plain client on a TLS port gets a plain tls_required frame; the daemon goes on" {
	start_tls_daemon
	run "$PLAIN_JOBCTL" stats
	[ "$status" != 0 ]
	[[ "$output" == *tls_required*'jobctl --tls'* ]]
	run "$PLAIN_JOBCTL" raw -n 1 -t 5000 <<<'{"type":"ping"}'
	[[ "$output" == *'"error":"tls_required"'* ]]
	grep -q 'a plain-text client on a TLS port' "$DAEMON_LOG"
	assert_daemon_healthy
}

@test "a TLS client on a plain port fails its handshake clearly; the daemon goes on" {
	start_daemon
	run "$TLS_JOBCTL" stats
	[ "$status" = 3 ]
	[[ "$output" == *'TLS handshake with 127.0.0.1 failed'*'does that port serve TLS?'* ]]
	wait_until 10 grep -q 'a TLS client on a plain port' "$DAEMON_LOG"
	assert_daemon_healthy
}

@test "a certificate that does not name the host, or from another CA, is refused by jobctl" {
	make_ca other
	start_tls_daemon
	run "$PLAIN_JOBCTL" --tls --ca "$C/other.pem" stats
	[ "$status" = 3 ]
	[[ "$output" == *"daemon's certificate"* ]]
	run "$PLAIN_JOBCTL" --tls --ca "$C/ca.pem" -H 127.0.0.2 stats
	[ "$status" = 3 ]
	assert_daemon_healthy
}

@test "--tls-ca: a client needs a certificate, and with --auth its CN stands for that token name" {
	make_cert wk wk ca
	make_cert alice alice ca
	make_cert eve eve ca
	make_ca rogue
	make_cert rogue-wk wk rogue
	start_auth_daemon --tls-cert "$C/srv.pem" --tls-key "$C/srv.key" --tls-ca "$C/ca.pem"
	mtls() {
		local who=$1
		shift
		env -u JOBFS_TOKEN "$PLAIN_JOBCTL" --ca "$C/ca.pem" --cert "$C/$who.pem" \
			--key "$C/$who.key" "$@"
	}
	# No certificate: the handshake is refused.
	run env -u JOBFS_TOKEN "$TLS_JOBCTL" stats
	[ "$status" = 3 ]
	[[ "$output" == *'certificate required'* ]]
	# A certificate from another CA, even with a known CN, is refused.
	run mtls rogue-wk stats
	[ "$status" = 3 ]
	# wk's and alice's certificates are their tokens: no token sent.
	bg mtls wk work mt -- cat
	wait_until 10 grep -q 'authenticated as wk by its certificate' "$DAEMON_LOG"
	[ "$(mtls alice submit mt '"cert"')" = '"cert"' ]
	# Roles still hold: alice's certificate cannot join.
	run mtls alice work mt -- cat
	[[ "$output" == *forbidden* ]]
	# A CN that names no token authenticates nobody: it needs a token.
	run mtls eve stats
	[[ "$output" == *auth_required* ]]
	printf '%s\n' "$TOK_BOB" >"$BATS_TEST_TMPDIR/bob.token"
	[ "$(mtls eve --token-file "$BATS_TEST_TMPDIR/bob.token" stats | grep -c '^submitted 1$')" = 1 ]
	JOBCTL=$BATS_TEST_TMPDIR/jobctl-mtls
	printf '#!/bin/sh\nexec "%s" --ca "%s" --cert "%s" --key "%s" "$@"\n' "$PLAIN_JOBCTL" \
		"$C/ca.pem" "$C/eve.pem" "$C/eve.key" >"$JOBCTL"
	chmod +x "$JOBCTL"
	auth_healthy
}

@test "SIGHUP reloads the certificates: new connections get the new one, open ones go on" {
	start_tls_daemon
	conn_open M
	send M '{"type":"ping"}'
	wait_lines M 1
	make_ca ca2
	make_cert srv localhost ca2 'subjectAltName=DNS:localhost,IP:127.0.0.1'
	kill -HUP "$DAEMON_PID"
	wait_until 10 grep -q 'SIGHUP: certificates loaded' "$DAEMON_LOG"
	run "$PLAIN_JOBCTL" --tls --ca "$C/ca.pem" stats
	[ "$status" = 3 ]
	run "$PLAIN_JOBCTL" --tls --ca "$C/ca2.pem" stats
	[ "$status" = 0 ]
	send M '{"type":"ping"}'
	wait_lines M 2
	# A key that does not match keeps the old pair.
	cp "$C/ca.key" "$C/srv.key"
	kill -HUP "$DAEMON_PID"
	wait_until 10 grep -q 'SIGHUP: keeping the old certificates' "$DAEMON_LOG"
	JOBCTL=$BATS_TEST_TMPDIR/jobctl-ca2
	printf '#!/bin/sh\nexec "%s" --tls --ca "%s" "$@"\n' "$PLAIN_JOBCTL" "$C/ca2.pem" >"$JOBCTL"
	chmod +x "$JOBCTL"
	assert_daemon_healthy
}

@test "every handshake has a deadline: peers that stall it (nothing sent, half a ClientHello, a trickle) are closed" {
	start_tls_daemon --tls-handshake-timeout 2
	conn_open M
	send M '{"type":"ping"}'
	wait_lines M 1
	# Each helper ends once the daemon has closed all its connections.
	for how in none half trickle; do
		mkdir -p "$BATS_TEST_TMPDIR/$how"
		bg python3 "$TLS_PEER" stall "$JOBFS_MASTER_PORT" 4 "$how" "$BATS_TEST_TMPDIR/$how"
	done
	for how in none half trickle; do
		wait_until 60 test -s "$BATS_TEST_TMPDIR/$how/open"
		[ "$(cat "$BATS_TEST_TMPDIR/$how/open")" = 0 ]
	done
	[ "$(daemon_stat .tls_handshake_timeouts)" = 12 ]
	[ "$(grep -c 'TLS handshake not finished in time' "$DAEMON_LOG")" = 12 ]
	# A connection whose handshake finished is not bound by the deadline.
	send M '{"type":"ping"}'
	wait_lines M 2
	conn_alive M
	assert_daemon_healthy
}

@test "past --max-conns-per-addr a TLS client gets a TLS alert, not a plain frame; then clients get in again" {
	make_cert cl cl ca
	start_tls_daemon --tls-ca "$C/ca.pem" --max-conns-per-addr 3 --tls-handshake-timeout 600
	JOBCTL=$BATS_TEST_TMPDIR/jobctl-mtls
	printf '#!/bin/sh\nexec "%s" --ca "%s" --cert "%s" --key "%s" "$@"\n' "$PLAIN_JOBCTL" \
		"$C/ca.pem" "$C/cl.pem" "$C/cl.key" >"$JOBCTL"
	chmod +x "$JOBCTL"
	# Three stalled handshakes take the address's places.
	hold=$BATS_TEST_TMPDIR/hold
	mkdir -p "$hold"
	bg python3 "$TLS_PEER" stall "$JOBFS_MASTER_PORT" 3 half "$hold"
	wait_until 30 test -s "$hold/ready"
	run openssl s_client -connect "127.0.0.1:$JOBFS_MASTER_PORT" -CAfile "$C/ca.pem" \
		-cert "$C/cl.pem" -key "$C/cl.key" </dev/null
	[ "$status" -ne 0 ]
	[[ "$output" == *'alert internal error'* ]]
	[[ "$output" != *'wrong version number'* ]]
	run python3 "$TLS_PEER" connect "$JOBFS_WORKER_PORT" "$C/ca.pem" "$C/cl.pem" "$C/cl.key"
	[[ "$output" == TLSV1_ALERT_INTERNAL_ERROR:* ]]
	run "$JOBCTL" stats
	[ "$status" = 3 ]
	[[ "$output" == *'alert internal error'*'refused the connection: too many connections'* ]]
	grep -q 'over --max-conns-per-addr' "$DAEMON_LOG"
	# The stalled ones were held all along; once they go, clients get in.
	touch "$hold/go"
	wait_until 30 test -s "$hold/open"
	[ "$(cat "$hold/open")" = 3 ]
	wait_until 30 closed_by_peer 3
	[ "$(daemon_stat .refused_per_addr)" = 3 ]
	[ "$(daemon_stat .tls_handshake_timeouts)" = 0 ]
	assert_daemon_healthy
}
