#!/usr/bin/env bats
# capacity.bats — "capacity":N in join: up to N jobs at once on one
# connection, responses naming their job with "id" (SPEC 1.3).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

submit4() {
	send M '{"type":"job","job_type":"cap","id":1,"body":"one"}' \
		'{"type":"job","job_type":"cap","id":"two","body":{"n":2}}' \
		'{"type":"job","job_type":"cap","id":3,"body":[3]}' \
		'{"type":"job","job_type":"cap","id":4,"body":4}'
}

@test "a worker with capacity 3 gets three jobs at once and no fourth" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cap","capacity":3}'
	settle W
	conn_open M
	submit4
	settle M W
	[ "$(frames W)" = '{"type":"job","id":1,"body":"one"}
{"type":"job","id":"two","body":{"n":2}}
{"type":"job","id":3,"body":[3]}' ]
	[ "$(daemon_stat .types.cap.running)" = 3 ]
	[ "$(daemon_stat .types.cap.queued)" = 1 ]
	[ "$(job_status 4)" = queued ]
	[ "$(nlines M)" = 1 ]  # only its pong: nothing has ended
}

@test "responses with ids reach the right master in any order and free slots" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cap","capacity":3}'
	settle W
	conn_open M
	submit4
	settle M W
	send W '{"type":"response","id":3,"body":"r3"}'
	settle W M
	[ "$(frames M)" = '{"id":3,"body":"r3"}' ]
	# The freed slot takes the fourth job.
	[ "$(frames W '.type == "job"' | tail -n 1)" = '{"type":"job","id":4,"body":4}' ]
	send W '{"type":"response","id":"two","body":{"r":2}}' \
		'{"type":"response","id":4,"body":null}' \
		'{"type":"response","id":1,"body":"r1"}'
	settle W M
	[ "$(frames M)" = '{"id":3,"body":"r3"}
{"id":"two","body":{"r":2}}
{"id":4,"body":null}
{"id":1,"body":"r1"}' ]
	# No error frame ever went to the worker.
	[ "$(count W 'has("error")')" = 0 ]
	[ "$(daemon_stat .types.cap.done)" = 4 ]
	[ "$(daemon_stat .types.cap.running)" = 0 ]
}

@test "a response without id while two jobs run is refused with missing_field id" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cap","capacity":3}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cap","id":1,"body":1}' \
		'{"type":"job","job_type":"cap","id":2,"body":2}'
	settle M W
	send W '{"type":"response","body":"which?"}'
	settle W M
	[ "$(frames W 'has("error")')" = '{"error":"missing_field","name":"id"}' ]
	# Nothing ended: both still run, the master heard nothing.
	[ "$(frames M)" = "" ]
	[ "$(job_status 1)" = running ]
	[ "$(job_status 2)" = running ]
	# The connection stays usable; with one job left, no id is needed.
	send W '{"type":"response","id":2,"body":"two"}'
	send W '{"type":"response","body":"one"}'
	settle W M
	[ "$(frames M)" = '{"id":2,"body":"two"}
{"id":1,"body":"one"}' ]
	[ "$(count W 'has("error")')" = 1 ]
	assert_daemon_healthy
}

@test "a response naming a job this worker does not run gets unknown_id" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cap","capacity":2}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cap","id":1,"body":1}'
	settle M W
	send W '{"type":"response","id":99,"body":"x"}'
	settle W
	[ "$(frames W 'has("error")' | jq -c '{error,id}')" = '{"error":"unknown_id","id":99}' ]
	[ "$(job_status 1)" = running ]
	# A job running on another worker cannot be answered from here either.
	conn_open V --worker
	send V '{"type":"join","job_type":"cap2"}'
	send M '{"type":"job","job_type":"cap2","id":2,"body":2}'
	settle V M W
	[ "$(frames V)" = '{"type":"job","id":2,"body":2}' ]
	send V '{"type":"response","id":1,"body":"not yours"}'
	settle V M
	[ "$(frames V 'has("error")' | jq -c '{error,id}')" = '{"error":"unknown_id","id":1}' ]
	[ "$(frames M)" = "" ]
	send W '{"type":"response","id":1,"body":"mine"}'
	settle W
	send V '{"type":"response","body":"two"}'
	settle V M
	[ "$(frames M)" = '{"id":1,"body":"mine"}
{"id":2,"body":"two"}' ]
	assert_daemon_healthy
}

@test "capacity must be an integer from 1 to 4096" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cap","capacity":0}' \
		'{"type":"join","job_type":"cap","capacity":4097}' \
		'{"type":"join","job_type":"cap","capacity":-1}' \
		'{"type":"join","job_type":"cap","capacity":"3"}' \
		'{"type":"join","job_type":"cap","capacity":2.5}'
	settle W
	[ "$(frames W '.error' | jq -r .error | sort | uniq -c | tr -s ' ')" = ' 5 invalid_type' ]
	# None of them joined.
	[ "$(workers_of cap)" = 0 ]
	send W '{"type":"join","job_type":"cap","capacity":4096}'
	settle W
	[ "$(workers_of cap)" = 1 ]
	assert_daemon_healthy
}

@test "join options of the wrong type are refused and leave the worker unjoined" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cap","worker":""}' \
		'{"type":"join","job_type":"cap","worker":7}' \
		'{"type":"join","job_type":"cap","cancel":"yes"}' \
		'{"type":"join","job_type":"cap","heartbeat":true}'
	settle W
	[ "$(frames W | jq -r .error | sort | uniq -c | tr -s ' ')" = ' 4 invalid_type' ]
	[ "$(workers_of cap)" = 0 ]
	assert_daemon_healthy
}

@test "two workers with capacity 2 share four jobs and take the fifth when one frees a slot" {
	conn_open A --worker
	conn_open B --worker
	send A '{"type":"join","job_type":"cap","capacity":2}'
	send B '{"type":"join","job_type":"cap","capacity":2}'
	settle A B
	conn_open M
	for i in 1 2 3 4 5; do
		send M "{\"type\":\"job\",\"job_type\":\"cap\",\"id\":$i,\"body\":$i}"
	done
	settle M A B
	[ "$(count A '.type == "job"')" = 2 ]
	[ "$(count B '.type == "job"')" = 2 ]
	[ "$(job_status 5)" = queued ]
	id=$(frames B '.type == "job"' | head -n 1 | jq .id)
	send B "{\"type\":\"response\",\"id\":$id,\"body\":\"b\"}"
	settle B M
	[ "$(frames B '.type == "job"' | tail -n 1)" = '{"type":"job","id":5,"body":5}' ]
	[ "$(frames M)" = "{\"id\":$id,\"body\":\"b\"}" ]
}

@test "jobctl work --capacity 3 runs three commands at the same time" {
	mkdir "$BATS_TEST_TMPDIR/meet"
	# Each command checks in, then waits until three have: only
	# concurrent runs can all see three.
	cat >"$BATS_TEST_TMPDIR/meet.sh" <<-EOF
		#!/bin/sh
		mktemp "$BATS_TEST_TMPDIR/meet/XXXXXX" >/dev/null
		i=0
		while [ \$(ls "$BATS_TEST_TMPDIR/meet" | wc -l) -lt 3 ] && [ \$i -lt 200 ]; do
			sleep 0.05; i=\$((i + 1))
		done
		ls "$BATS_TEST_TMPDIR/meet" | wc -l
	EOF
	chmod +x "$BATS_TEST_TMPDIR/meet.sh"
	bg "$JOBCTL" work --capacity 3 meet -- "$BATS_TEST_TMPDIR/meet.sh"
	wait_until 10 workers_are meet 1
	pids=()
	for i in 1 2 3; do
		timeout 20 "$JOBCTL" submit --id "m$i" meet '{}' >"$BATS_TEST_TMPDIR/r$i" &
		pids+=("$!")
	done
	wait "${pids[@]}"
	for i in 1 2 3; do
		[ "$(cat "$BATS_TEST_TMPDIR/r$i")" = 3 ]
	done
}
