#!/usr/bin/env bats
# seed_only.bats — "A client that never uses these keys never receives a
# frame outside 1.1" (SPEC 1.3): seed clients sharing a type with clients
# that use every extension see exactly the seed protocol.
#
# The seed clients never send a 1.3 message, so they are not synced with
# ping here: their progress is watched through their output and through
# requests on other connections.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

# Every frame a seed worker gets is {"type":"job","id":..,"body":..}, and
# every frame a seed master gets is {"id":..,"body":..}: nothing else.
only_seed_worker_frames() {
	[ "$(jq -c 'keys' "$(conn_file "$1")" | sort -u)" = '["body","id","type"]' ] &&
		[ "$(jq -r .type "$(conn_file "$1")" | sort -u)" = job ]
}

only_seed_master_frames() {
	[ "$(jq -c 'keys' "$(conn_file "$1")" | sort -u)" = '["body","id"]' ]
}

@test "seed clients see only seed frames while extension clients use every option on the same type" {
	# The seed worker joins first, so the idle list starts with it.
	conn_open SW --worker
	send SW '{"type":"join","job_type":"mix"}'
	wait_until 5 workers_are mix 1
	conn_open EW --worker
	send EW '{"type":"join","job_type":"mix","worker":"ext","capacity":1,"cancel":true,"heartbeat":5000}'
	settle EW
	conn_open SM
	conn_open EM
	send EM '{"type":"subscribe","channel":"mix"}'
	settle EM

	# Phase 1: the seed master's jobs go one to each worker.
	send SM '{"type":"job","job_type":"mix","id":"s1","body":{"n":1}}'
	wait_lines SW 1
	send SM '{"type":"job","job_type":"mix","id":"s2","body":{"n":2}}'
	wait_frame EW '.type == "job"'
	# The extension worker streams partials for the seed master's job.
	send EW '{"type":"partial","body":"p1"}' '{"type":"partial","body":"p2"}' \
		'{"type":"response","body":"r2"}'
	wait_lines SM 1
	[ "$(out_of SM)" = '{"id":"s2","body":"r2"}' ]
	# The extension master streams, is notified, publishes.
	send EM '{"type":"job","job_type":"mix","id":"e1","body":0,"stream":true,"notify":true,"timeout":60000}' \
		'{"type":"publish","channel":"mix","body":"hello"}'
	wait_frame EW '.id == "e1"'
	send EW '{"type":"partial","body":"e1 half"}' '{"type":"response","body":"e1 whole"}'
	wait_frame EM '.id == "e1" and has("body") and .partial != true'
	send SW '{"type":"response","body":"r1"}'
	wait_lines SM 2
	[ "$(out_of SM)" = '{"id":"s2","body":"r2"}
{"id":"s1","body":"r1"}' ]

	# Phase 2: extension jobs aimed at the seed worker by its address.
	sw=$(status_json '"s1"' | jq -r .worker)
	[[ $sw =~ ^127\.0\.0\.1:[0-9]+$ ]]
	send EM "{\"type\":\"job\",\"job_type\":\"mix\",\"id\":\"e2\",\"body\":2,\"stream\":true,\"notify\":true,\"worker\":\"$sw\"}"
	wait_lines SW 2
	send SW '{"type":"response","body":"e2 done"}'
	wait_frame EM '.id == "e2" and has("body")'
	# Cancelled while the seed worker runs it: no cancel frame to it, and
	# it is pinged never, though it holds the job past the extension
	# worker's heartbeat (which is pinged meanwhile).
	send EM "{\"type\":\"job\",\"job_type\":\"mix\",\"id\":\"e3\",\"body\":3,\"worker\":\"$sw\"}"
	wait_lines SW 3
	send EM '{"type":"cancel","id":"e3"}'
	wait_frame EM '.id == "e3" and .error == "cancelled"'
	wait_frame EW '.type == "ping"'
	# (Then it stops heartbeats, so a slow run cannot see it dropped.)
	send EW '{"type":"pong"}' '{"type":"join","job_type":"mix","heartbeat":0}'
	send SW '{"type":"response","body":"e3 late"}'
	# Timed out while the seed worker runs it: the same.
	send EM "{\"type\":\"job\",\"job_type\":\"mix\",\"id\":\"e4\",\"body\":4,\"worker\":\"$sw\",\"timeout\":300}"
	wait_lines SW 4
	wait_frame EM '.id == "e4" and .error == "timeout"'
	send SW '{"type":"response","body":"e4 late"}'
	send EM '{"type":"publish","channel":"mix","body":"bye"}'
	# A last seed job proves the late answers were taken and dropped.
	send SM '{"type":"job","job_type":"mix","id":"s3","body":{"n":3}}'
	wait_until 5 status_is '"s3"' running
	s3_on_sw=
	if [ "$(status_json '"s3"' | jq -r .worker)" = "$sw" ]; then
		s3_on_sw=$'\n{"type":"job","id":"s3","body":{"n":3}}'
		wait_lines SW 5
		send SW '{"type":"response","body":"r3"}'
	else
		wait_frame EW '.id == "s3"'
		send EW '{"type":"response","body":"r3"}'
	fi
	wait_lines SM 3
	settle EM EW

	[ "$(out_of SW)" = '{"type":"job","id":"s1","body":{"n":1}}
{"type":"job","id":"e2","body":2}
{"type":"job","id":"e3","body":3}
{"type":"job","id":"e4","body":4}'"$s3_on_sw" ]
	only_seed_worker_frames SW
	[ "$(out_of SM)" = '{"id":"s2","body":"r2"}
{"id":"s1","body":"r1"}
{"id":"s3","body":"r3"}' ]
	only_seed_master_frames SM
	# Meanwhile the extension master got all it asked for.
	[ "$(frames EM)" = '{"id":"e1","status":"running","worker":"ext"}
{"type":"message","channel":"mix","body":"hello"}
{"id":"e1","body":"e1 half","partial":true}
{"id":"e1","body":"e1 whole"}
{"id":"e2","status":"running","worker":"'"$sw"'"}
{"id":"e2","body":"e2 done"}
{"error":"cancelled","reason":"e3","id":"e3"}
{"error":"timeout","reason":"e4","id":"e4"}
{"type":"message","channel":"mix","body":"bye"}' ]
	[ "$(job_status '"e3"') $(job_status '"e4"')" = "cancelled timeout" ]
}

# pings_at_least NAME N: connection NAME has been pinged N times.
pings_at_least() {
	local n
	n=$(grep -c '"type":"ping"' "$(conn_file "$1")" || true)
	[ "$((n))" -ge "$2" ]
}

@test "a seed worker gets no ping however long it holds a job" {
	conn_open SW --worker
	send SW '{"type":"join","job_type":"hold"}'
	wait_until 5 workers_are hold 1
	conn_open HB --worker
	# Heartbeats of 1 s: the test answers each ping itself, and a loaded
	# machine may take a while to; three unanswered ones drop a worker.
	send HB '{"type":"join","job_type":"hold2","heartbeat":1000}'
	wait_until 5 workers_are hold2 1
	conn_open SM
	send SM '{"type":"job","job_type":"hold","id":1,"body":"x"}'
	wait_lines SW 1
	# Two heartbeats of the other worker pass (each answered) while the
	# seed worker holds its job.
	wait_until 10 pings_at_least HB 1
	send HB '{"type":"pong"}'
	wait_until 10 pings_at_least HB 2
	send HB '{"type":"pong"}'
	send SW '{"type":"response","body":"y"}'
	wait_lines SM 1
	[ "$(out_of SW)" = '{"type":"job","id":1,"body":"x"}' ]
	[ "$(out_of SM)" = '{"id":1,"body":"y"}' ]
	[ "$(workers_of hold2)" = 1 ]
}

@test "seed replies carry no extension keys whatever the worker sends" {
	conn_open EW --worker
	send EW '{"type":"join","job_type":"keys","capacity":2,"worker":"named","cancel":true}'
	settle EW
	conn_open SM
	send SM '{"type":"job","job_type":"keys","id":10,"body":null}' \
		'{"type":"job","job_type":"keys","id":"eleven","body":[]}'
	wait_frame EW '.type == "job"' 2
	# Partials, and responses naming their job with "id".
	send EW '{"type":"partial","id":10,"body":1}' '{"type":"partial","id":"eleven","body":2}' \
		'{"type":"response","id":"eleven","body":{"partial":true}}' \
		'{"type":"response","id":10,"body":"ten"}'
	wait_lines SM 2
	[ "$(out_of SM)" = '{"id":"eleven","body":{"partial":true}}
{"id":10,"body":"ten"}' ]
	only_seed_master_frames SM
}
