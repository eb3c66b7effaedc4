#!/usr/bin/env bats
# dialect_action.bats — Gloom's later dialect (SPEC 1.2): "action" instead
# of "type", acknowledgements, jobs naming their type, and both dialects
# working with each other.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

# action_worker NAME TYPE: an action-dialect worker whose join was acked.
action_worker() {
	conn_open "$1" --worker
	send "$1" "{\"action\":\"join\",\"type\":\"$2\"}"
	wait_lines "$1" 1
	[ "$(line "$1" 1)" = '{"ok":true}' ]
}

@test "an action worker's join and respond are acknowledged and its jobs name their type" {
	conn_open W --worker
	send W '{"action":"join","type":"act"}'
	wait_lines W 1
	same_json "$(line W 1)" '{"ok":true}'
	conn_open M
	send M '{"type":"job","job_type":"act","id":"a1","body":{"list":[1,"two",null]}}'
	wait_lines W 2
	same_json "$(line W 2)" '{"action":"job","id":"a1","type":"act","body":{"list":[1,"two",null]}}'
	send W '{"action":"respond","body":{"answer":42}}'
	wait_lines W 3
	same_json "$(line W 3)" '{"ok":true}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"a1","body":{"answer":42}}'
	settle W M
	[ "$(received W | wc -l)" = 3 ]
	[ "$(received M | wc -l)" = 1 ]
}

@test "an action master's submit is acknowledged with its id, then answered" {
	action_worker W act
	conn_open M
	send M '{"action":"submit","id":"s1","type":"act","body":"text body","priority":0}'
	wait_lines M 1
	same_json "$(line M 1)" '{"ok":true,"id":"s1"}'
	wait_lines W 2
	same_json "$(line W 2)" '{"action":"job","id":"s1","type":"act","body":"text body"}'
	send W '{"action":"respond","body":["r"]}'
	wait_lines M 2
	same_json "$(line M 2)" '{"id":"s1","body":["r"]}'
	# An integer id stays an integer in the ack, the job and the result.
	send M '{"action":"submit","id":77,"type":"act","body":7}'
	wait_lines M 3
	[ "$(line M 3)" = '{"ok":true,"id":77}' ]
	wait_lines W 4
	same_json "$(line W 4)" '{"action":"job","id":77,"type":"act","body":7}'
	send W '{"action":"respond","body":"seventy-seven"}'
	wait_lines M 4
	[ "$(line M 4)" = '{"id":77,"body":"seventy-seven"}' ]
}

@test "a seed master and an action worker work together" {
	action_worker W mix
	conn_open M
	send M '{"type":"job","job_type":"mix","id":"sm","body":{"from":"seed"}}'
	wait_lines W 2
	same_json "$(line W 2)" '{"action":"job","id":"sm","type":"mix","body":{"from":"seed"}}'
	send W '{"action":"respond","body":{"from":"action"}}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"sm","body":{"from":"action"}}'
	# The seed master got no acknowledgement: only its result.
	settle M
	[ "$(received M | wc -l)" = 1 ]
}

@test "an action master and a seed worker work together" {
	join_worker W mix
	conn_open M
	send M '{"action":"submit","id":"am","type":"mix","body":{"from":"action"}}'
	wait_jobs W 1
	# The seed worker sees the seed shape: no "type", no acknowledgements.
	same_json "$(jobs_of W)" '{"type":"job","id":"am","body":{"from":"action"}}'
	respond W '{"from":"seed"}'
	wait_lines M 2
	same_json "$(line M 1)" '{"ok":true,"id":"am"}'
	same_json "$(line M 2)" '{"id":"am","body":{"from":"seed"}}'
	settle W
	[ "$(received W | wc -l)" = 1 ]
}

@test "action submits are dispatched by priority, then in order" {
	conn_open M
	send M '{"action":"submit","id":"lo","type":"ap","body":1,"priority":-5}' \
		'{"action":"submit","id":"mid1","type":"ap","body":2}' \
		'{"action":"submit","id":"hi","type":"ap","body":3,"priority":7}' \
		'{"action":"submit","id":"mid2","type":"ap","body":4,"priority":0}'
	wait_lines M 4
	same_lines "$(received M)" '{"ok":true,"id":"lo"}
{"ok":true,"id":"mid1"}
{"ok":true,"id":"hi"}
{"ok":true,"id":"mid2"}'
	join_worker W ap
	serve W 4
	wait_lines M 8
	[ "$(jobs_of W | jq -r .id | tr '\n' ' ')" = "hi mid1 mid2 lo " ]
}

@test "action messages get the same error frames, without acknowledgements" {
	conn_open M
	send M '{"action":"submit","id":"x1","body":1}' \
		'{"action":"submit","type":"t","id":"x2"}' \
		'{"action":"submit","type":"t","body":1}' \
		'{"action":"submit","job_type":"t","id":"x4","body":1}' \
		'{"action":"bogus"}' \
		'{"action":"join","type":"t"}' \
		'{"action":5,"id":"x7"}' \
		'{"action":"submit","type":"a/b","id":"x8","body":1}' \
		'{"action":"submit","type":"t","id":1.5,"body":1}' \
		'{"action":"submit","type":"t","id":"x10","body":1,"priority":"high"}' \
		'{"action":"job","job_type":"t","id":"x11","body":1}'
	settle M
	same_json "$(line M 1)" '{"error":"missing_field","name":"type","id":"x1"}'
	same_json "$(line M 2)" '{"error":"missing_field","name":"body","id":"x2"}'
	same_json "$(line M 3)" '{"error":"missing_field","name":"id"}'
	same_json "$(line M 4)" '{"error":"missing_field","name":"type","id":"x4"}'
	is_error "$(line M 5)" unknown_type
	is_error "$(line M 6)" unknown_type
	is_error "$(line M 7)" invalid_type '"x7"'
	is_error "$(line M 8)" invalid_type '"x8"'
	is_error "$(line M 9)" invalid_type
	is_error "$(line M 10)" invalid_type '"x10"'
	is_error "$(line M 11)" unknown_type '"x11"'
	[ "$(line M 12)" = "$PONG" ]
	[ "$(daemon_stat .submitted)" = 0 ]
	# A duplicate id: id_exists and no ack.
	send M '{"action":"submit","id":"dup","type":"t","body":1}' \
		'{"action":"submit","id":"dup","type":"t","body":2}'
	settle M
	same_json "$(line M 13)" '{"ok":true,"id":"dup"}'
	is_error "$(line M 14)" id_exists '"dup"'
	[ "$(line M 15)" = "$PONG" ]
	# The worker side.
	conn_open W --worker
	send W '{"action":"respond","body":1}' \
		'{"action":"join"}' \
		'{"action":"join","job_type":"t"}' \
		'{"action":"join","type":""}' \
		'{"action":"submit","id":"w5","type":"t","body":1}'
	settle W
	is_error "$(line W 1)" invalid_state
	same_json "$(line W 2)" '{"error":"missing_field","name":"type"}'
	same_json "$(line W 3)" '{"error":"missing_field","name":"type"}'
	is_error "$(line W 4)" invalid_type
	is_error "$(line W 5)" unknown_type '"w5"'
	[ "$(line W 6)" = "$PONG" ]
	# Both connections still work.
	send W '{"action":"join","type":"t"}'
	wait_lines W 8
	[ "$(line W 7)" = '{"ok":true}' ]
	same_json "$(line W 8)" '{"action":"job","id":"dup","type":"t","body":1}'
	send W '{"action":"respond","body":"done"}'
	wait_lines M 16
	same_json "$(line M 16)" '{"id":"dup","body":"done"}'
	assert_daemon_healthy
}

@test "an action re-join while busy is acknowledged and takes effect after the job" {
	action_worker W A
	conn_open M
	send M '{"action":"submit","id":"a1","type":"A","body":1}' \
		'{"action":"submit","id":"a2","type":"A","body":2}' \
		'{"action":"submit","id":"b1","type":"B","body":3}'
	wait_lines W 2
	send W '{"action":"join","type":"B"}'
	settle W
	same_json "$(line W 3)" '{"ok":true}'
	[ "$(jobs_of W | wc -l)" = 1 ]
	send W '{"action":"respond","body":"a1 done"}'
	wait_jobs W 2
	same_json "$(jobs_of W | tail -n 1)" '{"action":"job","id":"b1","type":"B","body":3}'
	[ "$(job_status '"a2"')" = queued ]
}

@test "a job requeued from a vanished seed worker reaches an action worker in its shape" {
	join_worker W1 rq
	conn_open M
	send M '{"action":"submit","id":"moved","type":"rq","body":{"k":"v"}}'
	wait_jobs W1 1
	action_worker W2 rq
	conn_kill W1
	wait_jobs W2 1
	same_json "$(jobs_of W2)" '{"action":"job","id":"moved","type":"rq","body":{"k":"v"}}'
	send W2 '{"action":"respond","body":"moved on"}'
	wait_lines M 2
	same_json "$(line M 2)" '{"id":"moved","body":"moved on"}'
}

@test "a worker keeps the dialect of its first join" {
	action_worker A one
	join_worker S two
	# Each re-joins in the other dialect.
	send A '{"type":"join","job_type":"two2"}'
	send S '{"action":"join","type":"one2"}'
	settle A S
	conn_open M
	send M '{"type":"job","job_type":"two2","id":"for-a","body":1}' \
		'{"type":"job","job_type":"one2","id":"for-s","body":2}'
	wait_jobs A 1
	wait_jobs S 1
	same_json "$(jobs_of A)" '{"action":"job","id":"for-a","type":"two2","body":1}'
	same_json "$(jobs_of S)" '{"type":"job","id":"for-s","body":2}'
}
