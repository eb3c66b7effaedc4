#!/usr/bin/env bats
# wait.bats — {"type":"wait","id":ID} and its action twin: any
# master gets a job's ending frame, exactly as its submitter does, when the
# job ends or at once if it has; unknown_id if there is no such job.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

@test "wait on a running job answers with its submitter's frame when it ends" {
	start_daemon
	conn_open M
	join_worker W t
	send M '{"type":"job","job_type":"t","id":"w1","body":1}'
	wait_jobs W 1
	conn_open O
	send O '{"type":"wait","id":"w1"}' '{"action":"wait","id":"w1"}'
	settle O
	[ "$(received O | wc -l)" = 0 ]
	respond W '{"r":1}'
	wait_lines M 1
	wait_lines O 3
	same_json "$(line M 1)" '{"id":"w1","body":{"r":1}}'
	[ "$(received O | sed -n 1p)" = "$(line M 1)" ]
	[ "$(received O | sed -n 2p)" = "$(line M 1)" ]
	assert_daemon_healthy
}

@test "wait on an ended job answers at once; on a failed one with its error; unknown_id for none" {
	start_daemon
	conn_open M
	join_worker W t
	send M '{"type":"job","job_type":"t","id":5,"body":1}' '{"type":"job","job_type":"t","id":"c","body":2}'
	respond W '"five"'
	wait_lines M 1
	send M '{"type":"cancel","id":"c"}'
	wait_lines M 2
	conn_open O
	send O '{"type":"wait","id":5}' '{"type":"wait","id":"c"}' '{"type":"wait","id":"nope"}'
	wait_lines O 3
	same_json "$(line O 1)" '{"id":5,"body":"five"}'
	is_error "$(line O 2)" cancelled '"c"'
	is_error "$(line O 3)" unknown_id '"nope"'
	# jobctl wait prints the result, or fails on an ending error (6:
	# cancelled; 1: no such job).
	[ "$("$JOBCTL" wait 5)" = '"five"' ]
	run "$JOBCTL" wait c
	[ "$status" = 6 ]
	run "$JOBCTL" wait nope
	[ "$status" = 1 ]
	assert_daemon_healthy
}

@test "a waiter that leaves first is no trouble when the job ends" {
	start_daemon
	conn_open M
	join_worker W t
	send M '{"type":"job","job_type":"t","id":"x","body":1}'
	wait_jobs W 1
	conn_open O
	send O '{"type":"wait","id":"x"}'
	settle O
	conn_kill O
	conn_open O2
	send O2 '{"type":"wait","id":"x"}'
	settle O2
	respond W 2
	wait_lines M 1
	wait_lines O2 2
	same_json "$(received O2)" '{"id":"x","body":2}'
	assert_daemon_healthy
}
