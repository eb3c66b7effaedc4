#!/usr/bin/env bats
# job_losses.bats — "requeues" and "losses" in status and info say what
# they count: a job failed at its 4th loss was requeued
# 3 times.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

@test "a job failed at its 4th loss shows 4 losses and 3 requeues, in status and in the tree's info" {
	local i
	start_daemon_mounted
	conn_open M
	send M '{"type":"job","job_type":"lose","id":"lost","body":"hot potato"}'
	settle M
	for i in 1 2 3 4; do
		join_worker "W$i" lose
		wait_jobs "W$i" 1
		conn_kill "W$i"
		if [ "$i" -lt 4 ]; then
			wait_until 10 status_is '"lost"' queued
			[ "$(status_json '"lost"' | jq -c '[.requeues, .losses]')" = "[$i,$i]" ]
		fi
	done
	wait_until 10 status_is '"lost"' failed
	[ "$(status_json '"lost"' | jq -c '[.status, .requeues, .losses]')" = '["failed",3,4]' ]
	[ "$(jq -c '[.status, .requeues, .losses]' "$MNT/jobs/lost/info")" = '["failed",3,4]' ]
	# The type counts the requeues that happened.
	[ "$(daemon_stat .types.lose.requeued)" = 3 ]
	[ "$(daemon_stat .requeued)" = 3 ]
	assert_daemon_healthy
}

@test "a job that never lost its worker shows 0 losses and 0 requeues" {
	start_daemon
	conn_open M
	join_worker W calm
	send M '{"type":"job","job_type":"calm","id":1,"body":1}'
	serve W 1
	wait_lines M 1
	[ "$(status_json 1 | jq -c '[.status, .requeues, .losses]')" = '["done",0,0]' ]
	assert_daemon_healthy
}
