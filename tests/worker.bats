#!/usr/bin/env bats
# worker.bats — the worker port of the seed dialect (gloom.txt, SPEC 1.1):
# one job at a time, re-joining, vanishing workers and requeues, and
# malformed worker messages.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "a worker runs one job at a time and gets the next after its response" {
	conn_open M
	send M '{"type":"job","job_type":"one","id":"a","body":1}' \
		'{"type":"job","job_type":"one","id":"b","body":2}'
	settle M
	join_worker W one
	settle W
	[ "$(jobs_of W)" = '{"type":"job","id":"a","body":1}' ]
	[ "$(job_status '"b"')" = queued ]
	respond W '"ra"'
	wait_jobs W 2
	[ "$(jobs_of W | tail -n 1)" = '{"type":"job","id":"b","body":2}' ]
	respond W '"rb"'
	wait_lines M 3
	same_lines "$(received M)" '{"id":"a","body":"ra"}
{"id":"b","body":"rb"}'
}

@test "idle workers share the jobs, one each" {
	join_worker W1 share
	join_worker W2 share
	join_worker W3 share
	conn_open M
	send M '{"type":"job","job_type":"share","id":1,"body":1}' \
		'{"type":"job","job_type":"share","id":2,"body":2}' \
		'{"type":"job","job_type":"share","id":3,"body":3}'
	settle M
	settle W1 W2 W3
	[ "$(conn_njobs W1)" = 1 ]
	[ "$(conn_njobs W2)" = 1 ]
	[ "$(conn_njobs W3)" = 1 ]
	[ "$(cat "$BATS_TEST_TMPDIR"/conn.W?.out | jq -r 'select(.type == "job") | .id' | sort | tr '\n' ' ')" = "1 2 3 " ]
}

@test "a job whose worker vanishes goes to another worker and its master still gets the result" {
	join_worker W1 req
	conn_open M
	send M '{"type":"job","job_type":"req","id":"rq","body":{"payload":[1,2,3]}}'
	wait_jobs W1 1
	join_worker W2 req
	[ "$(received W2)" = "" ]
	conn_kill W1
	wait_jobs W2 1
	[ "$(jobs_of W2)" = '{"type":"job","id":"rq","body":{"payload":[1,2,3]}}' ]
	respond W2 '{"from":"W2"}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"rq","body":{"from":"W2"}}'
	[ "$(request '{"type":"status","id":"rq"}' | jq -c '[.status, .requeues]')" = '["done",1]' ]
	settle M
	[ "$(received M | wc -l)" = 1 ]
}

@test "the fourth loss of a job fails it with job_failed" {
	local i
	conn_open M
	send M '{"type":"job","job_type":"lose","id":"lost","body":"hot potato"}' \
		'{"type":"job","job_type":"lose","id":9,"body":"int potato"}'
	settle M
	for i in 1 2 3 4; do
		join_worker "W$i" lose
		wait_jobs "W$i" 1
		[ "$(jobs_of "W$i")" = '{"type":"job","id":"lost","body":"hot potato"}' ]
		conn_kill "W$i"
		if [ "$i" -lt 4 ]; then
			wait_until 10 status_is '"lost"' queued
			[ "$(request '{"type":"status","id":"lost"}' | jq .requeues)" = "$i" ]
		fi
	done
	wait_lines M 2
	same_json "$(line M 2)" '{"error":"job_failed","reason":"lost","id":"lost"}'
	[ "$(job_status '"lost"')" = failed ]
	# The next worker gets the other job, and never the failed one.
	join_worker W5 lose
	[ "$(jobs_of W5)" = '{"type":"job","id":9,"body":"int potato"}' ]
	respond W5 '"ok"'
	wait_lines M 3
	same_json "$(line M 3)" '{"id":9,"body":"ok"}'
	settle W5
	[ "$(conn_njobs W5)" = 1 ]
	[ "$(received M | wc -l)" = 2 ]
}

@test "a job with an integer id fails with that id after four losses" {
	local i
	conn_open M
	send M '{"type":"job","job_type":"lose","id":42,"body":null}'
	settle M
	for i in 1 2 3 4; do
		join_worker "W$i" lose
		wait_jobs "W$i" 1
		conn_kill "W$i"
	done
	wait_lines M 2
	# The id as sent; the reason names the job as text (as for timeout
	# and cancelled).
	[ "$(line M 2)" = '{"error":"job_failed","reason":"42","id":42}' ]
}

@test "a worker that vanishes while idle is no longer given jobs" {
	join_worker W1 idle
	join_worker W2 idle
	conn_kill W1
	wait_until 10 stat_is .types.idle.workers 1
	conn_open M
	send M '{"type":"job","job_type":"idle","id":"i1","body":1}' \
		'{"type":"job","job_type":"idle","id":"i2","body":2}'
	serve W2 2
	wait_lines M 2
	same_lines "$(received M)" '{"id":"i1","body":{"done":"i1"}}
{"id":"i2","body":{"done":"i2"}}'
}

@test "a re-join while busy takes effect after the running job" {
	join_worker W A
	conn_open M
	send M '{"type":"job","job_type":"A","id":"a1","body":"first A"}'
	wait_jobs W 1
	send M '{"type":"job","job_type":"A","id":"a2","body":"second A"}' \
		'{"type":"job","job_type":"B","id":"b1","body":"first B"}'
	send W '{"type":"join","job_type":"B"}'
	settle M W
	# Still busy with a1: nothing new, no error, and still a worker of A.
	[ "$(received W)" = '{"type":"job","id":"a1","body":"first A"}' ]
	[ "$(daemon_stat .types.A.workers)" = 1 ]
	[ "$(daemon_stat .types.B.workers)" = 0 ]
	respond W '"did a1"'
	wait_jobs W 2
	# Now of type B: b1, not the older a2.
	[ "$(jobs_of W | tail -n 1)" = '{"type":"job","id":"b1","body":"first B"}' ]
	[ "$(job_status '"a2"')" = queued ]
	respond W '"did b1"'
	wait_lines M 3   # the pong of settle, then both results
	same_lines "$(received M)" '{"id":"a1","body":"did a1"}
{"id":"b1","body":"did b1"}'
	settle W
	[ "$(conn_njobs W)" = 2 ]
	[ "$(daemon_stat .types.A.workers)" = 0 ]
	[ "$(daemon_stat .types.B.workers)" = 1 ]
}

@test "a re-join while busy, back to the same type, keeps the type" {
	join_worker W A
	conn_open M
	send M '{"type":"job","job_type":"A","id":"a1","body":1}' \
		'{"type":"job","job_type":"A","id":"a2","body":2}' \
		'{"type":"job","job_type":"B","id":"b1","body":3}'
	wait_jobs W 1
	send W '{"type":"join","job_type":"B"}' '{"type":"join","job_type":"A"}'
	settle W
	[ "$(conn_njobs W)" = 1 ]
	serve W 2
	wait_lines M 2
	[ "$(jobs_of W | jq -r .id | tr '\n' ' ')" = "a1 a2 " ]
	[ "$(job_status '"b1"')" = queued ]
}

@test "a re-join when idle changes the type at once" {
	join_worker W A
	send W '{"type":"join","job_type":"B"}'
	settle W
	[ "$(daemon_stat .types.B.workers)" = 1 ]
	conn_open M
	send M '{"type":"job","job_type":"A","id":"a1","body":"for A"}' \
		'{"type":"job","job_type":"B","id":"b1","body":"for B"}'
	wait_jobs W 1
	settle W
	[ "$(jobs_of W)" = '{"type":"job","id":"b1","body":"for B"}' ]
	[ "$(job_status '"a1"')" = queued ]
	# And back again: the queued A job comes as soon as the B job is done.
	send W '{"type":"join","job_type":"A"}'
	respond W '"B done"'
	wait_jobs W 2
	[ "$(jobs_of W | tail -n 1)" = '{"type":"job","id":"a1","body":"for A"}' ]
}

@test "a response with no job gets invalid_state and the connection stays usable" {
	conn_open W --worker
	# Before any join.
	send W '{"type":"response","body":"nobody asked"}'
	settle W
	is_error "$(line W 1)" invalid_state
	# Joined but idle.
	send W '{"type":"join","job_type":"st"}' '{"type":"response","body":"still nobody"}'
	settle W
	is_error "$(line W 3)" invalid_state
	conn_open M
	send M '{"type":"job","job_type":"st","id":"s1","body":"real"}'
	wait_jobs W 1
	respond W '"answer"'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"s1","body":"answer"}'
	# A second response to the same job.
	send W '{"type":"response","body":"again"}'
	settle W M
	is_error "$(received W | tail -n 1)" invalid_state
	[ "$(received M | wc -l)" = 1 ]
	[ "$(job_status '"s1"')" = done ]
	# Still a worker of st.
	send M '{"type":"job","job_type":"st","id":"s2","body":"next"}'
	serve W 1
	wait_lines M 3
	same_json "$(line M 3)" '{"id":"s2","body":{"done":"s2"}}'
	assert_daemon_healthy
}

@test "master messages and unknown types on the worker port get unknown_type" {
	conn_open W --worker
	send W '{"type":"job","job_type":"wp","id":"q","body":1}' \
		'{"type":"frobnicate"}' \
		'{"type":"frobnicate","id":7}' \
		'{"action":"submit","type":"wp","id":"q2","body":1}' \
		'{"type":"Join","job_type":"wp"}'
	settle W
	is_error "$(line W 1)" unknown_type '"q"'
	is_error "$(line W 2)" unknown_type
	is_error "$(line W 3)" unknown_type 7
	is_error "$(line W 4)" unknown_type '"q2"'
	is_error "$(line W 5)" unknown_type
	[ "$(line W 6)" = "$PONG" ]
	[ "$(daemon_stat .submitted)" = 0 ]
	send W '{"type":"join","job_type":"wp"}'
	conn_open M
	send M '{"type":"job","job_type":"wp","id":"q","body":"real"}'
	serve W 1
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"q","body":{"done":"q"}}'
	assert_daemon_healthy
}

@test "malformed worker messages get missing_field or invalid_type and change nothing" {
	local x256
	x256=$(printf 'x%.0s' $(seq 256))
	join_worker W good
	send W '{"type":"join"}' \
		'{"type":"join","job_type":5}' \
		'{"type":"join","job_type":null}' \
		'{"type":"join","job_type":""}' \
		'{"type":"join","job_type":"a/b"}' \
		'{"type":"join","job_type":".."}' \
		'{"type":"join","job_type":"."}' \
		'{"type":"join","job_type":"bell\u0007"}' \
		"{\"type\":\"join\",\"job_type\":\"$x256\"}"
	settle W
	same_json "$(line W 2)" '{"error":"missing_field","name":"job_type"}'
	for i in 3 4 5 6 7 8 9 10; do
		is_error "$(line W $i)" invalid_type
	done
	[ "$(line W 11)" = "$PONG" ]
	# Still a worker of "good", and only of it.
	[ "$(daemon_stat '.types | keys')" = '["good"]' ]
	conn_open M
	send M '{"type":"job","job_type":"good","id":"g","body":"x"}'
	wait_jobs W 1
	# A response without a body while running: refused, the job still runs.
	send W '{"type":"response"}' '{"type":"response","body":1,"id":{}}'
	settle W
	same_json "$(line W 13)" '{"error":"missing_field","name":"body"}'
	is_error "$(line W 14)" invalid_type
	[ "$(job_status '"g"')" = running ]
	respond W '"fine"'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"g","body":"fine"}'
	assert_daemon_healthy
}
