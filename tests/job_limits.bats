#!/usr/bin/env bats
# job_limits.bats — --max-jobs and --max-memory bound the unfinished jobs:
# past them a submission gets the error "full" (ENOSPC
# in the tree), nothing else is disturbed, and submissions work again once
# jobs finish.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/fs'

@test "past --max-jobs a submission gets full in both dialects; accepted again once jobs finish" {
	start_daemon --max-jobs 2
	conn_open M
	send M '{"type":"job","job_type":"lim","id":"a","body":1}' \
		'{"action":"submit","type":"lim","id":"b","body":2}'
	settle M
	[ "$(daemon_stat .queued)" = 2 ]
	send M '{"type":"job","job_type":"lim","id":"c","body":3}' \
		'{"action":"submit","type":"lim","id":7,"body":4}'
	settle M
	[ "$(frames M 'has("error")' | jq -c '[.error, .id]')" = '["full","c"]
["full",7]' ]
	[[ "$(frames M '.id == "c"' | jq -r .reason)" == *max-jobs* ]]
	[ "$(job_status '"c"')" = unknown_id ]
	[ "$(daemon_stat .queued)" = 2 ]
	[ "$(daemon_stat .refused_full)" = 2 ]
	# The jobs already queued are not disturbed, and run.
	conn_open W --worker
	send W '{"type":"join","job_type":"lim"}'
	wait_frame W '.id == "a"'
	send W '{"type":"response","body":"A"}'
	wait_frame W '.id == "b"'
	send W '{"type":"response","body":"B"}'
	wait_frame M '.id == "b" and has("body")'
	# Room again: the refused id is accepted and completes.
	send M '{"type":"job","job_type":"lim","id":"c","body":3}'
	wait_frame W '.id == "c"'
	send W '{"type":"response","body":"C"}'
	wait_frame M '.id == "c" and has("body")'
	[ "$(frames M 'has("body")')" = '{"id":"a","body":"A"}
{"id":"b","body":"B"}
{"id":"c","body":"C"}' ]
	assert_daemon_healthy
}

@test "past --max-memory a submission gets full; accepted again once the bodies are freed" {
	local big
	big=\"$(printf 'x%.0s' {1..60})\"  # 62 bytes of JSON
	start_daemon --max-memory 100
	conn_open M
	send M "{\"type\":\"job\",\"job_type\":\"mem\",\"id\":1,\"body\":$big}"
	settle M
	send M "{\"action\":\"submit\",\"type\":\"mem\",\"id\":2,\"body\":$big}" \
		"{\"type\":\"job\",\"job_type\":\"mem\",\"id\":3,\"body\":$big}"
	settle M
	[ "$(frames M 'has("error")' | jq -c '[.error, .id]')" = '["full",2]
["full",3]' ]
	[[ "$(frames M '.id == 3' | jq -r .reason)" == *max-memory* ]]
	# A small one still fits.
	send M '{"type":"job","job_type":"mem","id":4,"body":[1]}'
	settle M
	[ "$(job_status 4)" = queued ]
	[ "$(daemon_stat .body_bytes)" = 65 ]
	conn_open W --worker
	send W '{"type":"join","job_type":"mem","capacity":2}'
	wait_frame W '.id == 4'
	send W '{"type":"response","id":1,"body":"one"}' '{"type":"response","id":4,"body":"four"}'
	wait_frame M '.id == 4 and has("body")'
	[ "$(daemon_stat .body_bytes)" = 0 ]
	send M "{\"type\":\"job\",\"job_type\":\"mem\",\"id\":3,\"body\":$big}"
	wait_frame W '.id == 3'
	send W '{"type":"response","id":3,"body":"three"}'
	wait_frame M '.id == 3 and has("body")'
	assert_daemon_healthy
}

@test "a write to a full queue in the tree fails with ENOSPC; it works again once jobs finish" {
	require_fuse
	start_daemon_mounted --max-jobs 2
	mkdir "$MNT/types/q"
	echo '{"n":1}' >>"$MNT/types/q/queue"
	echo '{"n":2}' >>"$MNT/types/q/queue"
	run bash -c "echo '{\"n\":3}' >>'$MNT/types/q/queue'"
	[ "$status" != 0 ]
	[[ "$output" == *"No space left on device"* ]]
	[ "$(ls "$MNT/jobs" | wc -l)" = 2 ]
	# A worker takes the two; then there is room.
	gloom worker q --count 2 >/dev/null
	wait_until 10 stat_is .queued 0
	echo '{"n":3}' >>"$MNT/types/q/queue"
	[ "$(ls "$MNT/jobs" | wc -l)" = 3 ]
	gloom worker q --count 1 >/dev/null
	assert_tree_healthy
}
