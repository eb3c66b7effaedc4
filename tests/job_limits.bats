#!/usr/bin/env bats
# job_limits.bats — --max-jobs and --max-memory bound the unfinished jobs:
# past them a submission gets the error "full" (ENOSPC
# in the tree), nothing else is disturbed, and submissions work again once
# jobs finish.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/fs'
load 'helpers/web'

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

# refusal_names_jobs_limit REASON: REASON names --max-jobs and not --max-memory.
refusal_names_jobs_limit() {
	[[ $1 == *"1 unfinished jobs: the limit (--max-jobs)"* ]] || { echo "reason: $1" >&2; return 1; }
	[[ $1 != *max-memory* ]] || { echo "reason: $1" >&2; return 1; }
}

@test "at --max-jobs with a delayed job, TCP and REST refusals name --max-jobs, not --max-memory" {
	start_web --max-jobs 1
	conn_open M
	send M '{"type":"job","job_type":"lim","id":"later","body":1,"delay":600000}'
	wait_until 10 stat_is .delayed 1
	send M '{"type":"job","job_type":"lim","id":"b","body":2}' \
		'{"action":"submit","type":"lim","id":"c","body":3}'
	wait_lines M 2
	[ "$(frames M 'has("error")' | jq -c '[.error, .id]')" = '["full","b"]
["full","c"]' ]
	refusal_names_jobs_limit "$(frames M '.id == "b"' | jq -r .reason)"
	refusal_names_jobs_limit "$(frames M '.id == "c"' | jq -r .reason)"
	run hcurl -i --json '{"n":1}' "$H/types/lim/jobs?id=d"
	[[ "${lines[0]}" == *" 503 "* ]]
	[ "$(tail -n1 <<<"$output" | jq -r .error)" = full ]
	refusal_names_jobs_limit "$(tail -n1 <<<"$output" | jq -r .reason)"
	[ "$(daemon_stat .refused_full)" = 3 ]
	[ "$(job_status '"later"')" = delayed ]
	# Room again once the delayed job goes: another client's jobs complete.
	send M '{"type":"cancel","id":"later"}'
	wait_until 10 stat_is .delayed 0
	other_clients_ok
}

@test "at --max-jobs with a delayed job, the tree's refusals name --max-jobs, not --max-memory" {
	require_fuse
	start_daemon_mounted --max-jobs 1
	mkdir "$MNT/types/q"
	conn_open M
	send M '{"type":"job","job_type":"q","id":"later","body":1,"delay":600000}'
	wait_until 10 stat_is .delayed 1
	run bash -c "echo '{\"n\":2}' >>'$MNT/types/q/queue'"
	[ "$status" != 0 ]
	[[ "$output" == *"No space left on device"* ]]
	run bash -c "echo '{\"body\":3}' >>'$MNT/types/q/submit'"
	[ "$status" != 0 ]
	[[ "$output" == *"No space left on device"* ]]
	run cut -f2,3 "$MNT/refusals"
	[ "${#lines[@]}" = 2 ]
	[[ "${lines[0]}" == $'types/q/queue\tNo space left on device: '* ]]
	[[ "${lines[1]}" == $'types/q/submit\tNo space left on device: '* ]]
	refusal_names_jobs_limit "${lines[0]}"
	refusal_names_jobs_limit "${lines[1]}"
	[ "$(daemon_stat .refused_full)" = 2 ]
	# Room again once the delayed job goes: another client's job completes.
	send M '{"type":"cancel","id":"later"}'
	wait_until 10 stat_is .delayed 0
	assert_tree_healthy
}
