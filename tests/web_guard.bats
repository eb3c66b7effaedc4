#!/usr/bin/env bats
# web_guard.bats — what a stranger can do to the web face before it has
# authenticated, and what a page of another origin can make a browser do:
# bodies refused from their head and bounded together by --max-input,
# trickling heads dropped by --http-header-timeout and --http-max-unauth,
# --max-conns-per-addr, foreign Host names (DNS rebinding), cross-site and
# non-JSON requests that would change something, and a real cross-origin
# page in headless Chromium.  After each, other clients' jobs complete.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/auth'

ATTACK=$BATS_TEST_DIRNAME/helpers/web_attack.py

# start_auth_web [opts]: start_auth_daemon with --http; http_stat and
# hcurl_admin use the admin's token.
start_auth_web() {
	HTTP_PORT=$(random_port)
	start_auth_daemon --http "127.0.0.1:$HTTP_PORT" "$@" || return 1
	wait_for_port "$HTTP_PORT" || return 1
	H=http://127.0.0.1:$HTTP_PORT
	HTTP_AUTH="Authorization: Bearer $TOK_ROOT"
	export HTTP_PORT H HTTP_AUTH
}

hcurl_admin() {
	hcurl -H "Authorization: Bearer $TOK_ROOT" "$@"
}

# rss_kib: the daemon's resident memory.
rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON_PID/status"
}

# admin_round_trip: a worker and the admin over HTTP complete a job.
admin_round_trip() {
	local id
	as root "$JOBCTL" work art -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	id=$(hcurl_admin --json '{"ok":1}' "$H/types/art/jobs" | jq -r .id)
	[ "$(hcurl_admin "$H/jobs/$id/response")" = '{"ok":1}' ]
	[ "$(as root "$JOBCTL" submit art '{"tcp":1}')" = '{"tcp":1}' ]
}

# all_closed DIR: the daemon closed every connection web_attack.py opened.
all_closed() {
	[ "$(cat "$1/closed")" = "$(cat "$1/ready")" ]
}

@test "with --auth a body without a token is refused from its head and never read: memory stays flat" {
	start_auth_web
	d=$BATS_TEST_TMPDIR/a
	mkdir "$d"
	before=$(rss_kib)
	# 30 strangers announce 15 MiB each and send 4 MiB of it (bb42b37 read
	# and kept all 120 MiB, checking the token only once a body was whole).
	bg python3 "$ATTACK" bodies "$HTTP_PORT" 30 $((15 << 20)) $((4 << 20)) "$d" \
		'Content-Type: application/json'
	wait_until 120 test -e "$d/ready"
	cat "$d/ready"
	[ "$(jq -c .said "$d/ready")" = '{"401":30}' ]
	after=$(rss_kib)
	echo "RSS $before KiB before, $after KiB after"
	[ "$after" -lt $((before + 24 * 1024)) ]
	[ "$(http_stat .http.input_bytes)" = 0 ]
	[ "$(http_stat .submitted)" = 0 ]
	touch "$d/go"
	admin_round_trip
}

@test "bodies being received count in --max-input: past it 503 full at once (announced) or at the end (chunked)" {
	start_web --max-input $((8 << 20))
	d=$BATS_TEST_TMPDIR/a
	mkdir "$d"
	# Ten bodies of 4 MiB, each sent but for its last 1 MiB: two fit.
	bg python3 "$ATTACK" bodies "$HTTP_PORT" 10 $((4 << 20)) $((3 << 20)) "$d" \
		'Content-Type: application/json'
	wait_until 120 test -e "$d/ready"
	cat "$d/ready"
	[ "$(jq -c '.said | [."503", .open]' "$d/ready")" = '[8,2]' ]
	[ "$(http_stat .http.input_bytes)" = $((8 << 20)) ]
	[ "$(http_stat .http.input_refused)" = 8 ]
	# A chunked body finds no room either, and is told so when it ends.
	head -c $((1 << 20)) /dev/zero | tr '\0' 1 >"$BATS_TEST_TMPDIR/big"
	run hcurl -w ' %{http_code}' -H 'Transfer-Encoding: chunked' \
		--json @"$BATS_TEST_TMPDIR/big" "$H/types/x/jobs"
	[[ "$output" == '{"error":"full",'*'--max-input'*' 503' ]]
	# The two that fit are let go: their room is given back.
	touch "$d/go"
	wait_until 30 http_stat_is .http.input_bytes 0
	[ "$(http_stat .submitted)" = 0 ]
	other_clients_ok
}

@test "trickling heads: an admin still gets in, and every stalled peer is dropped by its deadline" {
	# The defaults but for --http-max-conn.
	start_auth_web --http-max-conn 100
	d=$BATS_TEST_TMPDIR/t
	mkdir "$d"
	# 150 connections, more than --http-max-conn, each sending a byte of
	# its head every second (bb42b37 kept each as long as it trickled, and
	# refused everyone else).
	WEB_ATTACK_LIMIT=100 bg python3 "$ATTACK" trickle "$HTTP_PORT" 150 1 "$d"
	wait_until 60 test -e "$d/ready"
	# The admin's request is answered.
	wait_until 60 http_stat_is '.http.unauth_dropped > 0' true
	run hcurl_admin "$H/types"
	[ "$status" = 0 ]
	[ "$output" = '{}' ]
	# Every trickler is closed, the last ones by --http-header-timeout.
	wait_until 60 all_closed "$d"
	[ "$(http_stat '.http.header_timeouts > 0')" = true ]
	[ "$(http_stat .http.unauthenticated)" = 0 ]
	admin_round_trip
}

# admin_keepalive FD: open FD to the web face and send one request with
# the admin's token: the connection is authenticated from then on.
admin_keepalive() {
	local line
	eval "exec $1<>/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'GET /types HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n' \
		"$TOK_ROOT" >&"$1"
	read -r -t 20 -u "$1" line
	[[ "$line" == "HTTP/1.1 200"* ]]
}

# admin_keepalive_ok FD: a last request on FD is answered.
admin_keepalive_ok() {
	printf 'GET /types HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n' \
		"$TOK_ROOT" >&"$1"
	run timeout 20 cat <&"$1"
	[[ "$output" == *"HTTP/1.1 200"* ]]
}

@test "--http-max-unauth: a newcomer drops the oldest unauthenticated connection; an admin's stays" {
	start_auth_web --http-max-unauth 2 --http-header-timeout 0
	admin_keepalive 6
	exec 7<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'GET /st' >&7
	exec 8<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'GET /st' >&8
	# The next connection (this request's) makes the oldest go.
	[ "$(http_stat .http.unauth_dropped)" = 1 ]
	run timeout 20 cat <&7
	[ "$status" = 0 ]
	[ "$(http_stat .http.unauthenticated)" = 1 ]
	[ "$(http_stat .http.unauth_dropped)" = 1 ]
	admin_keepalive_ok 6
	exec 6>&- 7>&- 8>&-
	admin_round_trip
}

@test "--http-header-timeout: a connection whose request does not arrive in time is dropped; an admin's stays" {
	start_auth_web --http-header-timeout 2
	admin_keepalive 6
	# Half a head, then a byte a second: --http-idle (60 s) never ends it.
	exec 7<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'GET /stats HTTP/1.1\r\nX: ' >&7
	bg sh -c 'while printf a; do sleep 1; done >&7'
	run timeout 20 cat <&7
	[ "$status" = 0 ]
	[ "$(http_stat .http.header_timeouts)" = 1 ]
	admin_keepalive_ok 6
	exec 6>&- 7>&-
	admin_round_trip
}

@test "--max-conns-per-addr counts HTTP connections: past it a new one is closed at once" {
	start_web --max-conns-per-addr 3
	wait_until 10 http_stat_is .http.connections 1
	# Three kept-alive connections, each past its first request.
	for fd in 4 5 6; do
		admin_keepalive "$fd"
	done
	run curl -s --max-time 10 "$H/stats"
	[ "$status" -ne 0 ]
	[ -z "$output" ]
	exec 4>&-
	# Two left, and the one asking.
	wait_until 10 http_stat_is .http.connections 3
	[ "$(http_stat .http.refused_per_addr)" -ge 1 ]
	exec 5>&- 6>&-
	wait_until 10 http_stat_is .http.connections 1
	other_clients_ok
}

@test "a Host that is not the daemon's (DNS rebinding) gets 421 and no data" {
	start_web --http-route /app=app --http-timeout 1
	hcurl --json '{"secret":1}' "$H/types/s/jobs?id=s1" >/dev/null
	for path in /jobs/s1/body /jobs/s1 /stats /events /; do
		run hcurl -i -H "Host: evil.example:$HTTP_PORT" "$H$path"
		[[ "$output" == "HTTP/1.1 421"* ]]
		[[ "$output" == *'"error":"unknown_host"'* ]]
		[[ "$output" != *secret* ]]
	done
	run hcurl -i -H 'Host: evil.example' --json '{"x":1}' "$H/types/s/jobs"
	[[ "$output" == "HTTP/1.1 421"* ]]
	[ "$(http_stat .http.refused_host)" = 6 ]
	[ "$(http_stat .submitted)" = 1 ]
	# The daemon's own names and addresses are served.
	for host in "localhost:$HTTP_PORT" "127.0.0.1:$HTTP_PORT" '[::1]' "$(hostname)" "a.localhost:$HTTP_PORT"; do
		[ "$(hstatus -H "Host: $host" "$H/jobs/s1/body")" = 200 ]
	done
	# A route is the front the operator opened: its worker sees the Host.
	[ "$(hstatus -H 'Host: app.example' "$H/app/x")" = 503 ]
	other_clients_ok
	stop_daemon
	start_web --http-host jobs.example --http-host other.example
	[ "$(hstatus -H "Host: jobs.example:$HTTP_PORT" "$H/stats")" = 200 ]
	[ "$(hstatus -H 'Host: OTHER.example' "$H/stats")" = 200 ]
	[ "$(hstatus -H 'Host: evil.example' "$H/stats")" = 421 ]
	stop_daemon
	start_web --http-host '*'
	[ "$(hstatus -H 'Host: evil.example' "$H/stats")" = 200 ]
	other_clients_ok
}

@test "requests that change something: refused when cross-site, or with a body that is not declared JSON" {
	start_web
	hcurl --json 1 "$H/types/v/jobs?id=victim" >/dev/null
	# What a page of another origin can send without asking (no-cors):
	# text/plain or a form, with its Origin.
	run hcurl -w ' %{http_code}' -H 'Origin: http://evil.example' \
		-H 'Content-Type: text/plain' --data '{"x":1}' "$H/types/x/jobs"
	[[ "$output" == '{"error":"forbidden",'*' 403' ]]
	[ "$(hstatus -H 'Content-Type: text/plain' --data '{"x":1}' "$H/types/x/jobs")" = 415 ]
	run hcurl -w ' %{http_code}' --data 'x=1' "$H/types/x/jobs"
	[[ "$output" == '{"error":"unsupported_media_type",'*' 415' ]]
	[ "$(hstatus -H 'Content-Type: text/plain' --data '1' "$H/pub/c")" = 415 ]
	[ "$(hstatus -H 'Origin: http://evil.example' --json 1 "$H/types/x/jobs")" = 403 ]
	[ "$(hstatus -H "Origin: http://127.0.0.1:$HTTP_PORT.evil.example" --json 1 "$H/types/x/jobs")" = 403 ]
	[ "$(hstatus -H 'Origin: null' --json 1 "$H/types/x/jobs")" = 403 ]
	[ "$(hstatus -H 'Sec-Fetch-Site: same-site' --json 1 "$H/types/x/jobs")" = 403 ]
	[ "$(hstatus -H 'Sec-Fetch-Site: cross-site' -X POST "$H/jobs/victim/cancel")" = 403 ]
	[ "$(hstatus -H 'Origin: http://evil.example' -X POST "$H/jobs/victim/cancel")" = 403 ]
	[ "$(hstatus -H 'Origin: http://evil.example' -X DELETE "$H/jobs/victim")" = 403 ]
	[ "$(http_stat .http.refused_cross_site)" = 11 ]
	[ "$(http_stat .submitted)" = 1 ]
	http_job_is victim queued
	# The daemon's own origin (its dashboard) and clients without one are served.
	[ "$(hstatus -H "Origin: http://127.0.0.1:$HTTP_PORT" -H 'Sec-Fetch-Site: same-origin' \
		--json 2 "$H/types/x/jobs")" = 201 ]
	[ "$(hstatus -H 'Content-Type: application/json; charset=utf-8' --data 3 "$H/types/x/jobs")" = 201 ]
	[ "$(hstatus -H "Origin: http://127.0.0.1:$HTTP_PORT" -X POST "$H/jobs/victim/cancel")" = 200 ]
	http_job_is victim cancelled
	other_clients_ok
}

@test "a page of another origin in Chromium can neither create nor cancel a job" {
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	[ -n "$CHROMIUM" ] || skip "no chromium: install the Debian package chromium to run the browser test"
	start_web
	hcurl --json 1 "$H/types/v/jobs?id=victim" >/dev/null
	# The attacker's site: a second origin on another port.
	site=$BATS_TEST_TMPDIR/site
	mkdir "$site"
	cat >"$site/evil.html" <<HTML
<!doctype html><title>evil</title><script>
const D = "$H";
Promise.allSettled([
  fetch(D + "/types/evil/jobs?id=e1", { mode: "no-cors", method: "POST", body: '{"evil":1}' }),
  fetch(D + "/types/evil/jobs?id=e2", { mode: "no-cors", method: "POST", body: new URLSearchParams("evil=1") }),
  fetch(D + "/jobs/victim/cancel", { mode: "no-cors", method: "POST" }),
]).then(() => { window.done = true; });
</script>
HTML
	port=$(random_port)
	bg python3 -m http.server "$port" --bind 127.0.0.1 --directory "$site" \
		2>"$BATS_TEST_TMPDIR/site.log"
	wait_for_port "$port"
	run python3 "$BATS_TEST_DIRNAME/helpers/cdp.py" "$CHROMIUM" \
		"http://127.0.0.1:$port/evil.html" 'wait:window.done === true'
	echo "$output"
	[ "$status" = 0 ]
	# All three reached the daemon, and changed nothing.
	wait_until 30 http_stat_is .http.refused_cross_site 3
	[ "$(http_stat .submitted)" = 1 ]
	http_job_is victim queued
	other_clients_ok
}
