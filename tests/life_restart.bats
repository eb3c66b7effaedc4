#!/usr/bin/env bats
# life_restart.bats — every lifecycle state survives kill -9 with --data:
# a retry in its backoff, a delayed job, a paused type and its
# limit and default retries, a dependency chain, a dead job and its
# attempts.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

@test "a retry in the middle of its backoff comes back delayed, with its attempts, and runs" {
	start_durable
	join_worker W t
	conn_open M
	# A backoff of 10 s: long enough that the restart (ASan, a loaded
	# machine) is over before it ends, so the job is still delayed then.
	send M '{"type":"job","job_type":"t","id":"r","body":1,"retries":2,"backoff":10000,"detach":true}'
	wait_jobs W 1
	send W '{"type":"fail","body":"first"}'
	wait_until 10 status_is '"r"' delayed
	crash_daemon
	start_durable
	[ "$(job_status '"r"')" = delayed ]
	[ "$(status_json '"r"' | jq -c '[.failures, .attempts[0].error, .retries]')" = '[1,"first",2]' ]
	join_worker W t
	wait_jobs W 1 40
	respond W '"ok"'
	wait_until 10 status_is '"r"' done
	[ "$(status_json '"r"' | jq -c '.attempts | length')" -ge 2 ]
	assert_daemon_healthy
}

@test "a delayed job keeps its due time across a restart" {
	start_durable
	now=$(date +%s%3N)
	conn_open M
	send M "{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"far\",\"body\":1,\"delay\":600000}" \
		"{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"near\",\"body\":2,\"at\":$((now + 1500)),\"detach\":true}"
	settle M
	due=$(status_json '"far"' | jq .due)
	crash_daemon
	start_durable
	[ "$(job_status '"far"')" = delayed ]
	[ "$(status_json '"far"' | jq .due)" = "$due" ]
	join_worker W t
	wait_jobs W 1 15
	[ "$(jobs_of W | jq -c .id)" = '"near"' ]
	[ "$(job_status '"far"')" = delayed ]
}

@test "a paused type with a limit and default retries stays so across a restart" {
	start_durable
	request '{"type":"pause","job_type":"p"}' >/dev/null
	request '{"type":"configure","job_type":"p","limit":1,"retries":3,"backoff":50}' >/dev/null
	submit_acked '"j1"' p 1 ',"detach":true' >/dev/null
	submit_acked '"j2"' p 2 ',"detach":true' >/dev/null
	crash_daemon
	start_durable
	[ "$(request '{"type":"stats","job_type":"p"}' | jq -c '.stats.types.p | [.paused,.limit,.queued]')" = '[true,1,2]' ]
	[ "$(request '{"type":"configure","job_type":"p"}' | jq -c '[.retries,.backoff]')" = '[3,50]' ]
	join_worker W1 p
	join_worker W2 p
	settle W1 W2
	[ "$(( $(conn_njobs W1) + $(conn_njobs W2) ))" = 0 ]
	request '{"type":"resume","job_type":"p"}' >/dev/null
	wait_until 10 stat_is .running 1
	settle W1 W2
	[ "$(( $(conn_njobs W1) + $(conn_njobs W2) ))" = 1 ]
	# And the resume is kept too.
	crash_daemon
	start_durable
	[ "$(request '{"type":"stats","job_type":"p"}' | jq -c '.stats.types.p.paused')" = false ]
}

@test "a dependency chain comes back waiting and completes in order" {
	start_durable
	submit_acked '"a"' t 1 ',"detach":true' >/dev/null
	submit_acked '"b"' t 2 ',"after":["a"],"detach":true' >/dev/null
	submit_acked '"c"' t 3 ',"after":["b"],"detach":true' >/dev/null
	crash_daemon
	start_durable
	[ "$(job_status '"b"')" = waiting ]
	[ "$(job_status '"c"')" = waiting ]
	join_worker W t
	serve W 3
	wait_until 10 status_is '"c"' done
	[ "$(jobs_of W | jq -c .id | tr '\n' ' ')" = '"a" "b" "c" ' ]
}

@test "a dead job stays dead with its attempts, and can be kicked after a restart" {
	start_durable
	join_worker W t
	submit_acked '"d"' t 1 >/dev/null
	wait_jobs W 1
	send W '{"type":"fail","body":{"exit":1}}'
	wait_until 10 stat_is .dead 1
	crash_daemon
	start_durable
	[ "$(daemon_stat .dead)" = 1 ]
	[ "$(status_json '"d"' | jq -c '[.status,.dead,.attempts[0].error.exit]')" = '["failed",true,1]' ]
	[ "$(request '{"type":"kick","id":"d"}')" = '{"kicked":1,"id":"d"}' ]
	crash_daemon
	start_durable
	[ "$(job_status '"d"')" = queued ]
	join_worker W t
	serve W 1
	wait_until 10 status_is '"d"' done
}

@test "a journal of many jobs with a life is compacted once, not over and over" {
	JOBFS_SEGMENT_BYTES=65536 start_durable
	conn_open M
	for ((i = 0; i < 2000; i++)); do
		printf '{"type":"job","job_type":"t","id":%d,"body":%d,"delay":3600000,"retries":2}\n' "$i" "$i"
	done >&"${CONN_FD[M]}"
	settle M
	wait_until 10 stat_is .delayed 2000
	c0=$(daemon_stat .journal_compactions)
	[ "$c0" -gt 0 ]
	for ((i = 0; i < 20; i++)); do request '{"type":"ping"}' >/dev/null; done
	c1=$(daemon_stat .journal_compactions)
	echo "# compactions: $c0, then $c1 after 20 idle requests" >&3
	[ "$c1" -le $((c0 + 1)) ]
	crash_daemon
	JOBFS_SEGMENT_BYTES=65536 start_durable
	[ "$(daemon_stat .delayed)" = 2000 ]
}
