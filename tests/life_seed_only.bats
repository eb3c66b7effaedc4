#!/usr/bin/env bats
# life_seed_only.bats — the job lifecycle is opt-in (SPEC 1.3): a
# seed master and a seed worker on a type that others pause, limit, give
# default retries, fill with delayed, waiting and dead jobs, and whose jobs
# an extension worker fails, see only seed frames.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

only_seed_worker_frames() {
	[ "$(jq -c 'keys' "$(conn_file "$1")" | sort -u)" = '["body","id","type"]' ] &&
		[ "$(jq -r .type "$(conn_file "$1")" | sort -u)" = job ]
}

@test "seed clients see only seed frames while others use every lifecycle feature on their type" {
	start_daemon --dead-max 5
	conn_open SW --worker
	send SW '{"type":"join","job_type":"mix"}'
	conn_open SM
	conn_open EM
	# Others configure the type: default retries, a limit, a pause.
	send EM '{"type":"configure","job_type":"mix","retries":1,"backoff":10,"limit":1}' \
		'{"type":"pause","job_type":"mix"}' \
		'{"type":"job","job_type":"mix","id":"e-delayed","body":0,"delay":600000}' \
		'{"type":"job","job_type":"mix","id":"e-wait","body":0,"after":["e-delayed"]}'
	wait_lines EM 2
	send SM '{"type":"job","job_type":"mix","id":"s1","body":1}'
	settle EM
	[ "$(job_status '"s1"')" = queued ]
	send EM '{"type":"resume","job_type":"mix"}'
	wait_lines SW 1
	send SW '{"type":"response","body":"r1"}'
	wait_lines SM 1
	# An extension worker fails a seed master's job twice (the type's
	# default retries): the seed master hears job_failed as 1.1 says.
	conn_kill SW
	wait_until 10 stat_is .types.mix.workers 0
	conn_open EW --worker
	send EW '{"type":"join","job_type":"mix","worker":"ext"}'
	send SM '{"type":"job","job_type":"mix","id":"s2","body":2}'
	wait_frame_ew() { [ "$(jq -c 'select(.id == "s2")' "$(conn_file EW)" | wc -l)" -ge "$1" ]; }
	wait_until 10 wait_frame_ew 1
	send EW '{"type":"fail","body":{"why":"one"}}'
	wait_until 10 wait_frame_ew 2
	send EW '{"type":"fail","body":{"why":"two"}}'
	wait_lines SM 2
	[ "$(line SM 1)" = '{"id":"s1","body":"r1"}' ]
	same_json "$(line SM 2)" '{"error":"job_failed","reason":"s2","id":"s2"}'
	[ "$(job_status '"s2"')" = failed ]
	[ "$(daemon_stat .dead)" = 1 ]
	# A seed worker on a limited, retried type, with kicks around it.
	conn_kill EW
	conn_open SW2 --worker
	send SW2 '{"type":"join","job_type":"mix"}'
	send EM '{"type":"kick","id":"s2"}'
	wait_lines SW2 1
	send SW2 '{"type":"response","body":"kicked"}'
	wait_until 10 status_is '"s2"' done
	send SM '{"type":"job","job_type":"mix","id":"s3","body":3}'
	wait_lines SW2 2
	send SW2 '{"type":"response","body":"r3"}'
	wait_lines SM 3
	[ "$(line SM 3)" = '{"id":"s3","body":"r3"}' ]
	only_seed_worker_frames SW
	only_seed_worker_frames SW2
	[ "$(jq -c 'keys' "$(conn_file SM)" | sort -u | tr '\n' ' ')" = '["body","id"] ["error","id","reason"] ' ]
	[ "$(nlines SM)" = 3 ]
	assert_daemon_healthy
}
