#!/usr/bin/env bats
# life_limit.bats — a type's concurrency limit across all its workers:
# {"type":"configure","job_type":T,"limit":N}.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "limit 2: three idle workers, five jobs: two run at once; each end lets one more run" {
	[ "$(request '{"type":"configure","job_type":"t","limit":2}' | jq -c .limit)" = 2 ]
	join_worker W1 t
	join_worker W2 t
	join_worker W3 t
	conn_open M
	for i in 1 2 3 4 5; do send M "{\"type\":\"job\",\"job_type\":\"t\",\"id\":$i,\"body\":$i}"; done
	wait_until 10 stat_is .running 2
	settle M W1 W2 W3
	[ "$(daemon_stat .running)" = 2 ]
	[ "$(daemon_stat .types.t.queued)" = 3 ]
	# Whoever runs one answers; the limit lets exactly one more start.
	for w in W1 W2 W3; do
		if [ "$(conn_njobs $w)" = 1 ]; then respond $w '"x"'; break; fi
	done
	wait_lines M 1
	wait_until 10 stat_is .types.t.queued 2
	[ "$(daemon_stat .running)" = 2 ]
	# Raising the limit dispatches at once; 0 lifts it.
	request '{"type":"configure","job_type":"t","limit":0}' >/dev/null
	wait_until 10 stat_is .running 3
	assert_daemon_healthy
}

@test "limit: refused out of range, with the range named" {
	conn_open M
	send M '{"type":"configure","job_type":"t","limit":-1}' \
		'{"type":"configure","job_type":"t","limit":1000001}' \
		'{"type":"configure","job_type":"t","limit":"3"}' \
		'{"type":"configure","job_type":"t","backoff":-3}'
	wait_lines M 4
	is_error "$(line M 1)" invalid_type
	line M 1 | grep -q '0 (none) to 1000000'
	is_error "$(line M 2)" invalid_type
	is_error "$(line M 3)" invalid_type
	is_error "$(line M 4)" invalid_type
	[ "$(daemon_stat .types.t)" = null ]
	assert_daemon_healthy
}
