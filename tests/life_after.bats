#!/usr/bin/env bats
# life_after.bats — dependencies: "after":[ID,...] makes a job
# wait until every job named is done; if one fails, is cancelled or times
# out, the job is cancelled with a reason naming it.  Self-dependencies
# and unknown ids are refused at submission (so no cycle can form).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "a job waits for every job it names, then runs" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"a","body":"a","delay":600000}' \
		'{"type":"job","job_type":"t","id":"b","body":"b"}' \
		'{"type":"job","job_type":"t","id":"c","body":"c","after":["a","b"]}'
	wait_jobs W 1
	[ "$(job_status '"c"')" = waiting ]
	[ "$(status_json '"c"' | jq -c '[.after,.waiting_for]')" = '[["a","b"],2]' ]
	[ "$(daemon_stat .waiting)" = 1 ]
	respond W '"b done"'
	wait_until 10 status_is '"b"' done
	[ "$(status_json '"c"' | jq -c .waiting_for)" = 1 ]
	[ "$(job_status '"c"')" = waiting ]
	# a was delayed; kick it out of its delay by cancelling? No: finish it.
	request '{"type":"cancel","id":"a"}' >/dev/null
	wait_until 10 status_is '"c"' cancelled
	status_json '"c"' | jq -e '.reason | test("job a, which it waits for, ended cancelled")'
	wait_frame_c=$(received M | jq -c 'select(.id == "c")')
	[ "$(jq -r .reason <<<"$wait_frame_c")" = "job a, which it waits for, ended cancelled" ]
	[ "$(daemon_stat .waiting)" = 0 ]
}

@test "a chain: 3 after c after b; each runs only when the one before is done" {
	conn_open W --worker
	send W '{"type":"join","job_type":"t","capacity":3}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"t","id":"b","body":1}' \
		'{"type":"job","job_type":"t","id":"c","body":2,"after":["b"]}' \
		'{"type":"job","job_type":"t","id":3,"body":3,"after":["c"]}'
	settle M W
	# Three free slots, yet only b runs.
	[ "$(conn_njobs W)" = 1 ]
	[ "$(job_status '"c"')" = waiting ]
	send W '{"type":"response","id":"b","body":"b"}'
	wait_jobs W 2
	settle W
	[ "$(conn_njobs W)" = 2 ]
	[ "$(job_status 3)" = waiting ]
	send W '{"type":"response","id":"c","body":"c"}'
	wait_jobs W 3
	send W '{"type":"response","id":3,"body":"3"}'
	wait_lines M 3
	[ "$(jobs_of W | jq -c .id | tr '\n' ' ')" = '"b" "c" 3 ' ]
}

@test "a failed dependency cancels the chain after it, naming it" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"x","body":1}' \
		'{"type":"job","job_type":"t","id":"y","body":2,"after":["x"]}' \
		'{"type":"job","job_type":"t","id":"z","body":3,"after":["y"]}'
	wait_jobs W 1
	send W '{"type":"fail","body":"no"}'
	wait_lines M 3
	[ "$(received M | jq -c '[.id,.error,.reason]' | sort | tr '\n' ' ')" = '["x","job_failed","x"] ["y","cancelled","job x, which it waits for, ended failed"] ["z","cancelled","job y, which it waits for, ended cancelled"] ' ]
	# A job submitted after a dependency that already failed is cancelled at once.
	send M '{"type":"job","job_type":"t","id":"late","body":4,"after":["x"]}'
	wait_lines M 4
	[ "$(line M 4 | jq -c '[.id,.error]')" = '["late","cancelled"]' ]
	assert_daemon_healthy
}

@test "after a done job runs at once; unknown ids and self are refused" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"d","body":1}'
	serve W 1
	wait_lines M 1
	send M '{"type":"job","job_type":"t","id":"e","body":2,"after":["d"]}' \
		'{"type":"job","job_type":"t","id":"f","body":3,"after":["nope"]}' \
		'{"type":"job","job_type":"t","id":"d","body":3,"after":["d"]}' \
		'{"type":"job","job_type":"t","id":"g","body":3,"after":"d"}' \
		'{"type":"job","job_type":"t","id":"h","body":3,"after":[{"x":1}]}'
	serve W 1
	wait_lines M 6
	[ "$(line M 2)" = '{"id":"e","body":{"done":"e"}}' ] || [ "$(line M 6)" = '{"id":"e","body":{"done":"e"}}' ]
	received M | grep -q '"error":"unknown_id","reason":"\\"after\\" names nope'
	received M | jq -se 'map(select(.id == "d" and .error == "invalid_type" and (.reason | test("itself")))) | length == 1'
	received M | jq -se 'map(select(.id == "g" and .error == "invalid_type")) | length == 1'
	received M | jq -se 'map(select(.id == "h" and .error == "invalid_type")) | length == 1'
	assert_daemon_healthy
}

@test "after: at most 64 ids" {
	conn_open M
	ids=$(seq 1 65 | jq -sc 'map(tostring)')
	send M "{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"big\",\"body\":1,\"after\":$ids}"
	wait_lines M 1
	is_error "$(line M 1)" invalid_type '"big"'
	line M 1 | grep -q 'at most 64'
	assert_daemon_healthy
}
