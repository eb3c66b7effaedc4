#!/usr/bin/env bats
# life_pause.bats — pausing a type: a paused type takes jobs and
# dispatches none, its running jobs finish; resumed, its workers take the
# queue at once.  Over TCP here; the tree's types/T/paused in life_tree.bats.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "pause keeps accepting, dispatches nothing, lets running jobs finish; resume dispatches" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"run","body":0}'
	wait_jobs W 1
	[ "$(request '{"type":"pause","job_type":"t"}' | jq -c '[.job_type,.paused]')" = '["t",true]' ]
	send M '{"type":"job","job_type":"t","id":"q1","body":1}' '{"type":"job","job_type":"t","id":"q2","body":2}'
	respond W '"r"'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"run","body":"r"}' ]
	settle W M
	[ "$(conn_njobs W)" = 1 ]
	[ "$(daemon_stat .types.t.queued)" = 2 ]
	[ "$(daemon_stat .paused)" = 1 ]
	[ "$(daemon_stat .types.t.paused)" = true ]
	[ "$(request '{"type":"resume","job_type":"t"}' | jq -c .paused)" = false ]
	serve W 2
	wait_lines M 3
	[ "$(daemon_stat .paused)" = 0 ]
	assert_daemon_healthy
}

@test "a paused type with no jobs and no workers stays until resumed; pause of a new type makes it" {
	[ "$(request '{"type":"pause","job_type":"fresh"}' | jq -c .paused)" = true ]
	[ "$(daemon_stat .types.fresh.paused)" = true ]
	join_worker W fresh
	conn_open M
	send M '{"type":"job","job_type":"fresh","id":1,"body":1}'
	settle M W
	[ "$(conn_njobs W)" = 0 ]
	request '{"action":"resume","type":"fresh"}' >/dev/null
	wait_jobs W 1
}

@test "pause and resume: bad input" {
	conn_open M
	send M '{"type":"pause"}' '{"type":"pause","job_type":"a/b"}' '{"type":"resume","job_type":5}'
	wait_lines M 3
	[ "$(line M 1)" = '{"error":"missing_field","name":"job_type"}' ]
	is_error "$(line M 2)" invalid_type
	is_error "$(line M 3)" invalid_type
	conn_open W --worker
	send W '{"type":"pause","job_type":"t"}'
	wait_lines W 1
	is_error "$(line W 1)" unknown_type
	assert_daemon_healthy
}
