#!/usr/bin/env bats
# web_https.bats — HTTPS on the web face: with --tls-cert and --tls-key
# the web face speaks TLS on its port (libmicrohttpd's GnuTLS), as the TCP
# ports do; curl with the test CA (--cacert) runs REST and /metrics over
# it, headless Chromium loads the dashboard with the test CA trusted in
# its profile's NSS database (certutil), plain HTTP to the port fails,
# --http-plain keeps the web face plain, a stalled handshake is closed by
# --http-header-timeout, SIGHUP reloads the certificate, --tls-ca asks
# for client certificates.  Under --auth, a token over plain HTTP from a
# peer beyond loopback (a network namespace joined by a veth pair, as in
# web_auth.bats) is refused unless --insecure.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/auth'
load 'helpers/peer_ns'
load 'helpers/certs'

setup() {
	command -v openssl >/dev/null || skip "no openssl(1)"
	C=$BATS_TEST_TMPDIR/certs
	mkdir -p "$C"
	make_ca ca
	make_cert srv localhost ca 'subjectAltName=DNS:localhost,IP:127.0.0.1'
	# jobctl over TLS, for the helpers that run "$JOBCTL" (the TCP ports
	# speak TLS too).
	JOBCTL_PLAIN=$JOBCTL
	TLS_JOBCTL=$BATS_TEST_TMPDIR/jobctl-tls
	printf '#!/bin/sh\nexec "%s" --tls --ca "%s" "$@"\n' "$JOBCTL_PLAIN" "$C/ca.pem" >"$TLS_JOBCTL"
	chmod +x "$TLS_JOBCTL"
}

# The helpers' curl, trusting the test CA.
hcurl() {
	curl -sS --max-time 20 --cacert "$C/ca.pem" "$@"
}

hstatus() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$C/ca.pem" "$@"
}

# start_https [opts]: the daemon with TLS on every port and --http; H is
# the https:// base URL.
start_https() {
	HTTP_PORT=$(random_port)
	start_daemon --tls-cert "$C/srv.pem" --tls-key "$C/srv.key" \
		--http "127.0.0.1:$HTTP_PORT" "$@" || return 1
	wait_for_port "$HTTP_PORT" || return 1
	H=https://127.0.0.1:$HTTP_PORT
	JOBCTL=$TLS_JOBCTL
}

@test "with --tls-cert the web face speaks HTTPS: REST round trip and /metrics with curl --cacert" {
	start_https
	grep -q "https on 127.0.0.1:$HTTP_PORT: dashboard at https://127.0.0.1:$HTTP_PORT/" "$DAEMON_LOG"
	bg "$JOBCTL" work tls -- cat
	wait_until 10 stat_is .workers 1
	id=$(hcurl --json '{"over":"https"}' "$H/types/tls/jobs" | jq -r .id)
	[ -n "$id" ]
	[ "$(hcurl "$H/jobs/$id/response")" = '{"over":"https"}' ]
	# The certificate is the daemon's: curl checked it against the CA.
	run curl -sS -v --max-time 20 --cacert "$C/ca.pem" -o /dev/null "$H/stats"
	[ "$status" = 0 ]
	[[ "$output" == *'subject: CN=localhost'* ]]
	[[ "$output" == *'issuer: CN=ca'* ]]
	# Without the CA, curl refuses the certificate.
	run curl -sS --max-time 20 -o /dev/null "$H/stats"
	[ "$status" = 60 ]
	# /metrics over HTTPS, and /stats says so.
	hcurl "$H/metrics" | grep -q '^jobfs_http_requests_total '
	[ "$(hcurl "$H/stats" | jq .http.https)" = true ]
	# An SSE stream over TLS gets its event.
	hcurl -N --max-time 5 "$H/sub/news" >"$BATS_TEST_TMPDIR/sse" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.streams 1
	hcurl --json '{"n":1}' "$H/pub/news" >/dev/null
	wait_until 10 grep -q '"n":1' "$BATS_TEST_TMPDIR/sse"
	other_clients_ok
}

@test "plain HTTP to the HTTPS port fails (no answer in clear), and the daemon serves on" {
	start_https
	run curl -sS --max-time 10 "http://127.0.0.1:$HTTP_PORT/stats"
	[ "$status" != 0 ]
	[[ "$output" == *'Empty reply from server'* || "$output" == *'reset'* ]]
	[[ "$output" != *'"uptime"'* ]]
	[ "$(hstatus "$H/stats")" = 200 ]
	other_clients_ok
}

@test "--http-plain keeps the web face in plain HTTP while the TCP ports speak TLS" {
	start_https --http-plain
	grep -q "http on 127.0.0.1:$HTTP_PORT: dashboard at http://" "$DAEMON_LOG"
	H=http://127.0.0.1:$HTTP_PORT
	[ "$(hstatus "$H/stats")" = 200 ]
	[ "$(hcurl "$H/stats" | jq .http.https)" = false ]
	# The TCP ports are TLS all the same: a plain jobctl is told so.
	run timeout 10 "$JOBCTL_PLAIN" stats
	[ "$status" != 0 ]
	other_clients_ok
}

@test "a stalled TLS handshake is closed by --http-header-timeout" {
	start_https --http-header-timeout 1
	# Half a ClientHello, then nothing: the daemon closes it (--http-idle,
	# MHD's own timeout, is 60 s: the close is the header deadline's).
	run timeout 20 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
s.settimeout(15)
try:
    print("eof" if s.recv(1) == b"" else "data")
except ConnectionResetError:
    print("eof")
' "$HTTP_PORT"
	[ "$output" = eof ]
	# And one that sends nothing at all.
	run timeout 20 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(15)
try:
    print("eof" if s.recv(1) == b"" else "data")
except ConnectionResetError:
    print("eof")
' "$HTTP_PORT"
	[ "$output" = eof ]
	[ "$(hcurl "$H/stats" | jq .http.header_timeouts)" = 2 ]
	other_clients_ok
}

@test "SIGHUP reloads the web face's certificate; one that cannot be used keeps the old" {
	start_https
	[ "$(hstatus "$H/stats")" = 200 ]
	make_ca ca2
	make_cert srv2 localhost ca2 'subjectAltName=DNS:localhost,IP:127.0.0.1'
	cp "$C/srv2.pem" "$C/srv.pem"
	cp "$C/srv2.key" "$C/srv.key"
	kill -HUP "$DAEMON_PID"
	wait_until 10 grep -q "web face's certificates reloaded" "$DAEMON_LOG"
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/ca2.pem" "$H/stats")" = 200 ]
	run curl -sS -o /dev/null --max-time 10 --cacert "$C/ca.pem" "$H/stats"
	[ "$status" = 60 ]
	# A key that is not the certificate's: the old pair stays.
	cp "$C/ca.key" "$C/srv.key"
	kill -HUP "$DAEMON_PID"
	wait_until 10 grep -q "web face keeps its old certificates" "$DAEMON_LOG"
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/ca2.pem" "$H/stats")" = 200 ]
	cp "$C/ca2.pem" "$C/ca.pem"   # other_clients_ok's curl and jobctl
	other_clients_ok
}

@test "--tls-ca: the web face needs a client certificate of those CAs" {
	make_ca cli
	make_ca rogue
	make_cert alice alice cli 'extendedKeyUsage=clientAuth'
	make_cert mallory mallory rogue 'extendedKeyUsage=clientAuth'
	start_https --tls-ca "$C/cli.pem"
	run hcurl -w ' %{http_code}' "$H/stats"
	[[ "$output" == *'"error":"forbidden"'*'--tls-ca'*' 403' ]]
	run hcurl -w ' %{http_code}' --cert "$C/mallory.pem" --key "$C/mallory.key" "$H/stats"
	[[ "$output" == *'--tls-ca'*' 403' ]]
	[ "$(hstatus --cert "$C/alice.pem" --key "$C/alice.key" "$H/stats")" = 200 ]
	[ "$(hcurl --cert "$C/alice.pem" --key "$C/alice.key" "$H/stats" | jq .http.refused_client_cert)" = 2 ]
	# The TCP ports' jobctl and the helpers' curl present alice's.
	printf '#!/bin/sh\nexec "%s" --tls --ca "%s" --cert "%s" --key "%s" "$@"\n' \
		"$JOBCTL_PLAIN" "$C/ca.pem" "$C/alice.pem" "$C/alice.key" >"$TLS_JOBCTL"
	hcurl() { curl -sS --max-time 20 --cacert "$C/ca.pem" --cert "$C/alice.pem" --key "$C/alice.key" "$@"; }
	other_clients_ok
}

@test "headless Chromium loads the dashboard over HTTPS, the test CA trusted in its profile" {
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	[ -n "$CHROMIUM" ] || skip "no chromium: install the Debian package chromium"
	command -v certutil >/dev/null || skip "no certutil: install libnss3-tools"
	start_https
	bg "$JOBCTL" work dash -- cat
	wait_until 10 stat_is .workers 1
	# Chromium on Linux trusts the CAs of $HOME/.pki/nssdb: a home of its own.
	home=$BATS_TEST_TMPDIR/home
	mkdir -p "$home/.pki/nssdb"
	certutil -d "sql:$home/.pki/nssdb" -N --empty-password
	certutil -d "sql:$home/.pki/nssdb" -A -t 'C,,' -n jobfs-test-ca -i "$C/ca.pem"
	run env HOME="$home" python3 "$BATS_TEST_DIRNAME/helpers/cdp.py" "$CHROMIUM" "$H/" \
		'wait:location.protocol === "https:" && document.getElementById("total-workers")' \
		'wait:document.getElementById("total-workers").textContent === "1"' \
		'eval:location.href'
	echo "$output"
	[ "$status" = 0 ]
	[[ "$output" == *"\"$H/\""* ]]
	other_clients_ok
}

@test "under --auth a token over plain HTTP from beyond loopback is refused unless --insecure; over HTTPS it serves" {
	make_peer_ns
	HTTP_PORT=$(random_port)
	start_auth_daemon --listen 0.0.0.0 --http "0.0.0.0:$HTTP_PORT"
	wait_for_port "$HTTP_PORT"
	grep -q "without TLS: with --auth, peers beyond loopback are refused" "$DAEMON_LOG"
	H=http://127.0.0.1:$HTTP_PORT
	run from_ns curl -s --max-time 10 -i -H "Authorization: Bearer $TOK_ROOT" "http://$HOST_IP:$HTTP_PORT/stats"
	[[ "$output" == *'403 Forbidden'* ]]
	[[ "$output" == *'"error":"tls_required"'*'in clear'*'--insecure'* ]]
	# Without a token: refused as well, and no Basic challenge (a browser
	# would answer it in clear).
	run from_ns curl -s --max-time 10 -i "http://$HOST_IP:$HTTP_PORT/stats"
	[[ "$output" == *'"error":"tls_required"'*'https://'* ]]
	[[ "$output" != *'WWW-Authenticate'* ]]
	# Loopback is not the network: its token is taken.
	[ "$(hstatus -H "Authorization: Bearer $TOK_ROOT" "$H/stats")" = 200 ]
	[ "$(hcurl -H "Authorization: Bearer $TOK_ROOT" "$H/stats" | jq .http.refused_plain)" = 2 ]
	stop_daemon
	# --insecure: the operator said so.
	start_auth_daemon --listen 0.0.0.0 --insecure --http "0.0.0.0:$HTTP_PORT"
	wait_for_port "$HTTP_PORT"
	run from_ns curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $TOK_ROOT" "http://$HOST_IP:$HTTP_PORT/stats"
	[ "$output" = 200 ]
	stop_daemon
	# HTTPS: the token goes in TLS, and serves.
	make_cert far "$HOST_IP" ca "subjectAltName=IP:$HOST_IP,IP:127.0.0.1"
	start_auth_daemon --listen 0.0.0.0 --tls-cert "$C/far.pem" --tls-key "$C/far.key" \
		--http "0.0.0.0:$HTTP_PORT"
	wait_for_port "$HTTP_PORT"
	run ! grep -q "without TLS" "$DAEMON_LOG"
	run from_ns curl -s --max-time 10 --cacert "$C/ca.pem" -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $TOK_ROOT" "https://$HOST_IP:$HTTP_PORT/stats"
	[ "$output" = 200 ]
	# A worker and an HTTPS client with the admin token complete a job.
	H=https://127.0.0.1:$HTTP_PORT
	as root "$TLS_JOBCTL" work art -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	id=$(hcurl -H "Authorization: Bearer $TOK_ROOT" --json '{"ok":1}' "$H/types/art/jobs" | jq -r .id)
	[ "$(hcurl -H "Authorization: Bearer $TOK_ROOT" "$H/jobs/$id/response")" = '{"ok":1}' ]
	[ "$(as alice "$TLS_JOBCTL" submit art '{"tcp":1}')" = '{"tcp":1}' ]
}
