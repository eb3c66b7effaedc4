#!/usr/bin/env bats
# web_limits.bats — the web face's limits: bodies over
# --max-frame, heads over the header limit, malformed requests,
# --http-max-conn, --http-idle, and clients that vanish mid-request or
# while they wait.  After each, other clients' jobs still complete.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

# raw_http REQUEST: write REQUEST on a fresh connection and print what
# comes back until the daemon closes it (at most 10 s).
raw_http() {
	exec 7<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf '%b' "$1" >&7
	timeout 10 cat <&7
	exec 7>&-
}

@test "a body over --max-frame gets 413 frame_too_large, announced or chunked" {
	start_web --max-frame 1024
	head -c 3000 /dev/zero | tr '\0' 1 >"$BATS_TEST_TMPDIR/big"
	run hcurl -w ' %{http_code}' --json @"$BATS_TEST_TMPDIR/big" "$H/types/x/jobs"
	[[ "$output" == '{"error":"frame_too_large",'*' 413' ]]
	run hcurl -w ' %{http_code}' -H 'Transfer-Encoding: chunked' \
		--json @"$BATS_TEST_TMPDIR/big" "$H/types/x/jobs"
	[[ "$output" == '{"error":"frame_too_large",'*' 413' ]]
	run hcurl -w ' %{http_code}' --json @"$BATS_TEST_TMPDIR/big" "$H/pub/c"
	[[ "$output" == *' 413' ]]
	[ "$(http_stat .submitted)" = 0 ]
	other_clients_ok
}

@test "a head over the header limit gets 431; a malformed request 400" {
	start_web
	[ "$(hstatus -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "$H/stats")" = 431 ]
	# Not HTTP at all: closed without an answer.
	run raw_http 'GARBAGE\r\n\r\n'
	[ "$status" = 0 ]
	[ -z "$output" ]
	run raw_http 'GET /x\r\n\r\n'
	[[ "$output" == "HTTP/1.1 400"* ]]
	run raw_http 'GET /stats HTTP/1.1\r\nNoHostHere\r\n\r\n'
	[[ "$output" == "HTTP/1.1 400"* ]]
	run raw_http 'GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n'
	[[ "$output" == "HTTP/1.1 400"* ]]
	other_clients_ok
}

@test "connections over --http-max-conn are closed at once; the others are served" {
	# No --http-header-timeout: the three may wait as long as the test does.
	start_web --http-max-conn 3 --http-header-timeout 0
	# Nothing else open (start_web's probe of the port, say) before the three.
	wait_until 10 http_stat_is .http.connections 1
	exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	exec 5<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	run curl -s --max-time 5 "$H/stats"
	[ "$status" -ne 0 ]
	[ -z "$output" ]
	# One of the three is still served.
	printf 'GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&4
	run timeout 10 cat <&4
	[[ "$output" == "HTTP/1.1 200"* ]]
	[[ "$output" == *'"connections_refused":1'* ]]
	exec 4>&- 5>&- 6>&-
	wait_until 10 http_stat_is .http.connections 1
	other_clients_ok
}

@test "an idle connection is closed after --http-idle" {
	start_web --http-idle 1
	exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	# The daemon closes it: cat sees the end (timeout would say 124).
	run timeout 10 cat <&4
	[ "$status" = 0 ]
	exec 4>&-
	# And one that sent half a head.
	exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'GET /st' >&4
	run timeout 10 cat <&4
	[ "$status" = 0 ]
	exec 4>&-
	other_clients_ok
}

@test "clients that vanish mid-request or while waiting lose nothing and leak nothing" {
	start_web --http-route /r=rt --http-idle 2
	# mid-body
	exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'POST /types/v/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":' >&4
	exec 4>&-
	# while a long-poll waits
	hcurl --json '{"v":1}' "$H/types/v/jobs?id=v1" >/dev/null
	run curl -s --max-time 1 "$H/jobs/v1/response"
	[ "$status" = 28 ]
	# while a route waits for a worker: its job is cancelled (nobody to answer)
	run curl -s --max-time 1 "$H/r/x"
	[ "$status" = 28 ]
	# while a stream is open
	run curl -s --max-time 1 "$H/sub/c"
	[ "$status" = 28 ]
	run curl -s --max-time 1 "$H/events"
	[ "$status" = 28 ]
	wait_until 10 http_stat_is '.http | [.connections,.waiting,.streams]' '[1,0,0]'
	[ "$(daemon_stat '| [.submitted,.types.rt.cancelled,.types.v.queued]')" = '[2,1,1]' ]
	# The job v1 waited for is intact: a worker does it.
	bg "$JOBCTL" work v -- cat
	wait_until 10 status_is '"v1"' done
	[ "$(hcurl "$H/jobs/v1/response")" = '{"v":1}' ]
	other_clients_ok
}
