#!/usr/bin/env bats
# web_route.bats — Tempest's HTTP front: --http-route
# PREFIX=TYPE turns requests into jobs, and a worker's answer, in any
# language (jobctl work, a raw TCP worker), into the response; partial
# results stream as chunks.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

peer() {
	python3 "$BATS_TEST_DIRNAME/helpers/web_peer.py" "$@"
}

@test "a jobctl work worker answers Tempest's [code, headers, body]; the job body describes the request" {
	start_web --http-route /app=web --http-route /app/admin=admin
	bg "$JOBCTL" work web -- jq -c '[201, {"X-Echo": .query.q}, (.method + " " + .path + " " + .body + " " + .headers["X-Test"])]'
	run hcurl -i -H 'X-Test: t1' --data 'hello' "$H/app/x/y?q=1"
	[[ "$output" == "HTTP/1.1 201"* ]]
	[[ "$output" == *"X-Echo: 1"* ]]
	[[ "$output" == *"Content-Type: text/plain; charset=utf-8"* ]]
	[ "$(tail -n1 <<<"$output")" = 'POST /app/x/y hello t1' ]
	# Keep-alive: two requests on one connection.
	run hcurl -v "$H/app/a" "$H/app/b"
	[[ "$output" == *"Re-using existing connection"* ]]
	[[ "$output" == *"GET /app/a"*"GET /app/b"* ]]
	# A body that is not UTF-8 arrives as body_base64.
	bg "$JOBCTL" work admin -- jq -c '{status: 200, body: .}'
	run hcurl --data-binary $'\xff\xfe' "$H/app/admin/z"
	[ "$(jq -r .body_base64 <<<"$output")" = '//4=' ]
	[ "$(jq -r .path <<<"$output")" = /app/admin/z ]
	# The daemon's own paths stay its own; unrouted ones are 404.
	[ "$(hstatus "$H/stats")" = 200 ]
	[ "$(hstatus "$H/application")" = 404 ]
	[ "$(http_stat .http.routed)" = 4 ]
	other_clients_ok
}

@test "a raw TCP worker streams its answer as chunks from partial results" {
	start_web --http-route /big=big
	d=$BATS_TEST_TMPDIR
	peer stream "$JOBFS_WORKER_PORT" big "$d" &
	BG_PIDS+=("$!")
	hcurl -N -i "$H/big/file" >"$d/out" &
	BG_PIDS+=("$!")
	# The head and the first chunk come before the worker has finished.
	wait_until 10 grep -q '^first' "$d/out"
	grep -q '^HTTP/1.1 207' "$d/out"
	grep -qi '^Transfer-Encoding: chunked' "$d/out"
	grep -q '^X-Stream: yes' "$d/out"
	run ! grep -q '^second' "$d/out"
	touch "$d/go"
	wait_until 10 grep -q '^last' "$d/out"
	[ "$(sed -n '/^\r$/,$p' "$d/out" | tail -n +2)" = $'first\nsecond\nlast' ]
	other_clients_ok
}

@test "a raw TCP worker's {status, headers, body_base64} answer" {
	start_web --http-route /bin=bin
	peer answer "$JOBFS_WORKER_PORT" bin '{"status":200,"headers":{"Content-Type":"application/x-thing"},"body_base64":"AAEC/w=="}' 1 &
	BG_PIDS+=("$!")
	hcurl -D "$BATS_TEST_TMPDIR/head" "$H/bin/x" -o "$BATS_TEST_TMPDIR/body"
	grep -q 'Content-Type: application/x-thing' "$BATS_TEST_TMPDIR/head"
	[ "$(od -An -tx1 "$BATS_TEST_TMPDIR/body" | tr -d ' \n')" = 000102ff ]
	other_clients_ok
}

@test "no worker within --http-timeout: 503; an answer of the wrong shape: 502 with the reason; a failed job: 502" {
	start_web --http-route /r=r --http-route /bad=bad --http-route /fail=fail --http-timeout 1
	run hcurl -w ' %{http_code}' "$H/r/x"
	[[ "$output" == *'"error":"timeout"'*'--http-timeout'*' 503' ]]
	[ "$(daemon_stat '.types.r | [.queued,.cancelled]')" = '[0,1]' ]
	# Each worker has joined before its request (the timeout is 1 s).
	peer answer "$JOBFS_WORKER_PORT" bad '{"nope":1}' 1 &
	BG_PIDS+=("$!")
	wait_until 20 stat_is .types.bad.workers 1
	run hcurl -w ' %{http_code}' "$H/bad/x"
	[[ "$output" == *'"error":"invalid_type"'*'wrong shape'*' 502' ]]
	wait_until 20 stat_is '.types.bad.workers // 0' 0
	peer answer "$JOBFS_WORKER_PORT" bad '[700, {}, "x"]' 1 &
	BG_PIDS+=("$!")
	wait_until 20 stat_is .types.bad.workers 1
	run hcurl -w ' %{http_code}' "$H/bad/y"
	[[ "$output" == *'status must be'*' 502' ]]
	# A worker lost four times fails the job.
	for i in 1 2 3 4; do
		(printf '%s\n' '{"type":"join","job_type":"fail"}' | "$JOBCTL" raw --worker -n 1 -t 5000 >/dev/null) &
	done
	wait_until 20 stat_is .types.fail.workers 4
	run hcurl -w ' %{http_code}' "$H/fail/x"
	[[ "$output" == *'"error":"job_failed"'*' 502' ]]
	# A failing command under jobctl work: its report is not an answer.
	wait_until 20 stat_is '.types.bad.workers // 0' 0
	bg "$JOBCTL" work bad -- false
	wait_until 20 stat_is .types.bad.workers 1
	run hcurl -w ' %{http_code}' "$H/bad/z"
	[[ "$output" == *' 502' ]]
	other_clients_ok
}

# held_past SECONDS FILE: SECONDS have passed since FILE was written.
held_past() {
	[ $(( $(date +%s) - $(stat -c %Y "$2") )) -gt "$1" ]
}

# route_killed WHEN: a routed request whose job's one worker is killed
# (kill -9) WHEN is "at once" or "late" (after --http-timeout has passed
# while it held the job); no other worker: the client gets 503 timeout.
route_killed() {
	local d=$BATS_TEST_TMPDIR/$1 wpid cpid
	mkdir -p "$d"
	# A worker that takes the job and never answers.
	printf '%s\n' '{"type":"join","job_type":"r"}' >"$d/join"
	"$JOBCTL" raw --worker -t 600000 <"$d/join" >"$d/frames" &
	wpid=$!
	BG_PIDS+=("$wpid")
	wait_until 20 stat_is .types.r.workers 1
	curl -s --max-time 30 -o "$d/body" -w '%{http_code}' "$H/r/$1" >"$d/code" &
	cpid=$!
	BG_PIDS+=("$cpid")
	wait_until 20 grep -q '"job"' "$d/frames"
	if [ "$1" = late ]; then
		# The time is the thing under test: the timer has fired once
		# while the worker held the job.
		wait_until 20 held_past 4 "$d/frames"
		[ "$(daemon_stat .types.r.running)" = 1 ]
	fi
	kill -9 "$wpid"
	wait_until 20 stat_is '.types.r.workers // 0' 0
	# The client has its answer well before curl's own 30 s.
	wait "$cpid"
	[ "$(cat "$d/code")" = 503 ]
	grep -q '"error":"timeout"' "$d/body"
}

@test "the worker holding a routed request's job is killed and no other comes: --http-timeout still answers 503" {
	start_web --http-route /r=r --http-timeout 3
	route_killed now
	route_killed late
	[ "$(daemon_stat '.types.r | [.queued,.running,.cancelled]')" = '[0,0,2]' ]
	[ "$(http_stat .http.route_timeouts)" = 2 ]
	# A new worker answers the next request.
	bg "$JOBCTL" work r -- jq -c '[200, {}, "again"]'
	wait_until 20 stat_is .types.r.workers 1
	[ "$(hcurl "$H/r/y")" = again ]
	other_clients_ok
}
