#!/usr/bin/env bats
# auth_protected.bats — protected mode.  Without --auth only
# loopback peers are served; a peer from elsewhere (here a network
# namespace joined to this one by a veth pair that the test makes) gets
# one error frame saying how to open the daemon up, and is closed.

load 'helpers/daemon'
load 'helpers/frames'
source "$BATS_TEST_DIRNAME/helpers/conn.bash"
load 'helpers/auth'
load 'helpers/peer_ns'

@test "without --auth a non-loopback peer gets one error frame naming --auth and --insecure and is closed" {
	make_peer_ns
	start_daemon --listen 0.0.0.0
	grep -q 'listening on 0.0.0.0 without --auth: protected mode' "$DAEMON_LOG"
	run from_ns timeout 10 "$JOBCTL" -H "$HOST_IP" raw -t 5000 </dev/null
	[[ "$output" == *'"error":"auth_required"'*'--auth FILE'*'--insecure'* ]]
	run from_ns timeout 10 "$JOBCTL" -H "$HOST_IP" work pm -- cat
	[ "$status" != 0 ]
	[ "$(daemon_stat .refused_protected)" = 2 ]
	# Loopback peers are served as before.
	assert_daemon_healthy
}

@test "--insecure serves the non-loopback peer, with a warning at start" {
	make_peer_ns
	start_daemon --listen 0.0.0.0 --insecure
	grep -q 'without --auth: --insecure' "$DAEMON_LOG"
	bg from_ns "$JOBCTL" -H "$HOST_IP" work far -- cat
	[ "$(timeout 20 "$JOBCTL" submit far '{"from":"far"}')" = '{"from":"far"}' ]
	assert_daemon_healthy
}

@test "with --auth the non-loopback peer is served once it gives a token" {
	make_peer_ns
	start_auth_daemon --listen 0.0.0.0
	run ! grep -q 'without --auth' "$DAEMON_LOG"
	run from_ns env -u JOBFS_TOKEN timeout 10 "$JOBCTL" -H "$HOST_IP" stats
	[[ "$output" == *auth_required* ]]
	bg from_ns env JOBFS_TOKEN="$TOK_WK" "$JOBCTL" -H "$HOST_IP" work far -- cat
	[ "$(as alice timeout 20 "$JOBCTL" submit far '[1]')" = '[1]' ]
	auth_healthy
}

@test "README, Exposing jobfs: a worker on another host with a token file, over TLS" {
	command -v openssl >/dev/null || skip "no openssl(1)"
	make_peer_ns
	local c=$BATS_TEST_TMPDIR/certs
	mkdir -p "$c"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$c/ca.key" -out "$c/ca.pem" \
		-days 2 -subj "/CN=jobfs CA" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout "$c/key.pem" -out "$c/cert.csr" \
		-subj "/CN=$HOST_IP" 2>/dev/null
	printf 'subjectAltName=IP:%s,IP:127.0.0.1\n' "$HOST_IP" >"$c/san.ext"
	openssl x509 -req -in "$c/cert.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" \
		-CAcreateserial -days 2 -extfile "$c/san.ext" -out "$c/cert.pem" 2>/dev/null
	start_auth_daemon --listen 0.0.0.0 --tls-cert "$c/cert.pem" --tls-key "$c/key.pem"
	printf '%s\n' "$TOK_WK" >"$BATS_TEST_TMPDIR/wk.token"
	chmod 600 "$BATS_TEST_TMPDIR/wk.token"
	bg from_ns env -u JOBFS_TOKEN "$JOBCTL" -H "$HOST_IP" --tls --ca "$c/ca.pem" \
		--token-file "$BATS_TEST_TMPDIR/wk.token" work render -- tr a-z A-Z
	[ "$(as alice timeout 20 "$JOBCTL" --tls --ca "$c/ca.pem" submit render '"far away"')" = '"FAR AWAY"' ]
	grep -q "10\.[0-9.]*:[0-9]*: authenticated as wk" "$DAEMON_LOG"
	# Plain text from the other host is refused.
	run from_ns env -u JOBFS_TOKEN "$JOBCTL" -H "$HOST_IP" stats
	[[ "$output" == *tls_required* ]]
	printf '#!/bin/sh\nexec "%s" --tls --ca "%s" "$@"\n' "$JOBCTL" "$c/ca.pem" >"$BATS_TEST_TMPDIR/jt"
	chmod +x "$BATS_TEST_TMPDIR/jt"
	JOBCTL=$BATS_TEST_TMPDIR/jt auth_healthy
}

@test "protected mode on a TLS port: the non-loopback TLS client gets an access_denied alert, not a plain frame" {
	command -v openssl >/dev/null || skip "no openssl(1)"
	make_peer_ns
	local c=$BATS_TEST_TMPDIR/certs
	mkdir -p "$c"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$c/ca.key" -out "$c/ca.pem" \
		-days 2 -subj "/CN=jobfs CA" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout "$c/key.pem" -out "$c/cert.csr" \
		-subj "/CN=$HOST_IP" 2>/dev/null
	printf 'subjectAltName=IP:%s,IP:127.0.0.1\n' "$HOST_IP" >"$c/san.ext"
	openssl x509 -req -in "$c/cert.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" \
		-CAcreateserial -days 2 -extfile "$c/san.ext" -out "$c/cert.pem" 2>/dev/null
	start_daemon --listen 0.0.0.0 --tls-cert "$c/cert.pem" --tls-key "$c/key.pem"
	run from_ns timeout 10 openssl s_client -connect "$HOST_IP:$JOBFS_MASTER_PORT" \
		-CAfile "$c/ca.pem" </dev/null
	[ "$status" -ne 0 ]
	[[ "$output" == *'alert access denied'* ]]
	[[ "$output" != *'wrong version number'* ]]
	run from_ns timeout 10 "$JOBCTL" -H "$HOST_IP" --tls --ca "$c/ca.pem" stats
	[ "$status" = 3 ]
	[[ "$output" == *'refused the connection: it serves this address only with --auth or --insecure'* ]]
	printf '#!/bin/sh\nexec "%s" --tls --ca "%s" "$@"\n' "$JOBCTL" "$c/ca.pem" >"$BATS_TEST_TMPDIR/jt"
	chmod +x "$BATS_TEST_TMPDIR/jt"
	JOBCTL=$BATS_TEST_TMPDIR/jt
	[ "$(daemon_stat .refused_protected)" = 2 ]
	assert_daemon_healthy
}
