#!/usr/bin/env bats
# life_dead.bats — the dead set: a job that ends failed after its
# attempts is kept in its type's dead set (--dead-keep, --dead-max) with
# every attempt, and a kick queues it again with fresh attempts.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

# fail_job ID: submit ID on t and have worker W fail it.
fail_job() {
	send M "{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"$1\",\"body\":1}"
	wait_until 10 stat_is .running 1
	send W "{\"type\":\"fail\",\"body\":\"no $1\"}"
	wait_until 10 stat_is .types.t.dead "$2"
}

@test "a failed job is dead; kick by id queues it again with fresh attempts" {
	start_daemon
	join_worker W t
	conn_open M
	fail_job a 1
	[ "$(daemon_stat .dead)" = 1 ]
	[ "$(request '{"type":"kick","id":"a"}')" = '{"kicked":1,"id":"a"}' ]
	wait_jobs W 2
	[ "$(jobs_of W | sed -n 2p | jq -c .id)" = '"a"' ]
	respond W '"alive"'
	wait_until 10 status_is '"a"' done
	[ "$(status_json '"a"' | jq -c '[(.attempts | length), .attempts[0].error, .failures, .dead]')" = '[2,"no a",0,null]' ]
	[ "$(daemon_stat .dead)" = 0 ]
	[ "$(daemon_stat .kicked)" = 1 ]
	assert_daemon_healthy
}

@test "kick by type queues every dead job of the type" {
	start_daemon
	join_worker W t
	conn_open M
	fail_job a 1
	fail_job b 2
	[ "$(request '{"type":"kick","job_type":"t"}')" = '{"kicked":2,"job_type":"t"}' ]
	wait_jobs W 3
	respond W 1
	wait_jobs W 4
	respond W 2
	wait_until 10 stat_is .types.t.done 2
	[ "$(request '{"type":"kick","job_type":"none"}')" = '{"kicked":0,"job_type":"none"}' ]
}

@test "kick: unknown_id, invalid_state for a job that is not dead, missing id" {
	start_daemon
	conn_open M
	send M '{"type":"kick","id":"nope"}' '{"type":"job","job_type":"t","id":"q","body":1}' \
		'{"type":"kick","id":"q"}' '{"type":"kick"}' '{"type":"kick","id":[1]}'
	wait_lines M 4
	is_error "$(line M 1)" unknown_id '"nope"'
	is_error "$(line M 2)" invalid_state '"q"'
	[ "$(line M 3)" = '{"error":"missing_field","name":"id"}' ]
	is_error "$(line M 4)" invalid_type
	assert_daemon_healthy
}

@test "--dead-max 1 keeps only the newest dead job; --dead-keep forgets them" {
	start_daemon --dead-max 1
	join_worker W t
	conn_open M
	fail_job a 1
	send M '{"type":"job","job_type":"t","id":"b","body":1}'
	wait_until 10 stat_is .running 1
	send W '{"type":"fail","body":"no b"}'
	wait_until 10 status_is '"a"' unknown_id
	[ "$(job_status '"b"')" = failed ]
	stop_daemon
	start_daemon --dead-keep 1
	join_worker W t
	conn_open M
	fail_job c 1
	wait_until 10 status_is '"c"' unknown_id
	assert_daemon_healthy
}
