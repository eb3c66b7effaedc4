#!/usr/bin/env bats
# life_auth.bats — the job lifecycle with --auth (issues 12 and 13): pause,
# resume, configure and a kick of a whole type are the admin's; a kick by
# id and "after" see only the caller's own jobs.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'

@test "with --auth: type-wide lifecycle requests need admin; kick and after see only one's own jobs" {
	start_auth_daemon
	conn_open B
	send B "$(auth_frame bob)" '{"type":"pause","job_type":"t"}' \
		'{"type":"configure","job_type":"t","limit":1}' '{"type":"kick","job_type":"t"}'
	wait_lines B 4
	[ "$(frames B '.error == "forbidden"' | wc -l)" = 3 ]
	[ "$(as root request '{"type":"pause","job_type":"t"}' | jq -c .paused)" = true ]
	[ "$(as root request '{"type":"resume","job_type":"t"}' | jq -c .paused)" = false ]
	# alice's job fails and is dead: bob cannot kick it or wait for it.
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"t"}'
	wait_lines W 1
	conn_open A
	send A "$(auth_frame alice)" '{"type":"job","job_type":"t","id":"a1","body":1,"retries":0}'
	wait_frame W '.type == "job"'
	send W '{"type":"fail","body":"no"}'
	wait_frame A '.id == "a1" and .error == "job_failed"'
	send B '{"type":"kick","id":"a1"}' '{"type":"job","job_type":"t","id":"b1","body":1,"after":["a1"]}'
	wait_lines B 6
	[ "$(frames B '.error == "unknown_id"' | wc -l)" = 2 ]
	send A '{"type":"kick","id":"a1"}'
	wait_frame A '.kicked == 1'
	auth_healthy
}

@test "with --auth: schedule and unschedule need admin; schedules lists" {
	start_auth_daemon
	conn_open B
	send B "$(auth_frame bob)" '{"type":"schedule","job_type":"t","name":"x","every":1000}' \
		'{"type":"unschedule","job_type":"t","name":"x"}'
	wait_lines B 3
	[ "$(frames B '.error == "forbidden"' | wc -l)" = 2 ]
	[ "$(as root request '{"type":"schedule","job_type":"t","name":"x","every":60000}' | jq -r .name)" = x ]
	send B '{"type":"schedules"}'
	wait_frame B '.schedules'
	[ "$(frames B '.schedules' | jq -c '[.schedules[].name]')" = '["x"]' ]
	[ "$(as root request '{"type":"unschedule","job_type":"t","name":"x"}' | jq -c .unscheduled)" = 1 ]
	auth_healthy
}
