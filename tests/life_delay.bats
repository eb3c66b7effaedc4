#!/usr/bin/env bats
# life_delay.bats — delays: "delay":MS and "at":EPOCH_MS queue
# a job only then; status says delayed meanwhile; all delayed jobs share
# one timer (a heap by due time), so many cost no more than one.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "a delayed job is dispatched only once due, and says delayed meanwhile" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"later","body":1,"delay":600000}' \
		'{"type":"job","job_type":"t","id":"now","body":2}'
	wait_jobs W 1
	[ "$(jobs_of W | jq -c .id)" = '"now"' ]
	[ "$(job_status '"later"')" = delayed ]
	[ "$(daemon_stat .delayed)" = 1 ]
	status_json '"later"' | jq -e '.due > now'
	respond W 1
	settle W
	[ "$(conn_njobs W)" = 1 ]
	# A short delay comes due by itself.
	send M '{"type":"job","job_type":"t","id":"soon","body":3,"delay":30}'
	wait_jobs W 2
	[ "$(jobs_of W | sed -n 2p | jq -c .id)" = '"soon"' ]
	[ "$(job_status '"later"')" = delayed ]
}

@test "at: an epoch in the past queues at once; delayed jobs come due in due order" {
	conn_open W --worker
	send W '{"type":"join","job_type":"t","capacity":10}'
	settle W
	conn_open M
	# Due 2 s from now, so that all three are still delayed when they arrive
	# on a loaded machine (else they would queue at once, in arrival order).
	now=$(date +%s%3N)
	send M "{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"c\",\"body\":3,\"at\":$((now + 2200))}" \
		"{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"b\",\"body\":2,\"at\":$((now + 2100))}" \
		"{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"a\",\"body\":1,\"at\":$((now + 2000))}" \
		"{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"p\",\"body\":0,\"at\":1}"
	wait_jobs W 4
	[ "$(jobs_of W | jq -r .id | tr '\n' ' ')" = "p a b c " ]
}

@test "thousands of delayed jobs come due together and all complete" {
	n=2000
	conn_open M
	for ((i = 0; i < n; i++)); do
		printf '{"type":"job","job_type":"t","id":%d,"body":%d,"delay":300}\n' "$i" "$i"
	done >&"${CONN_FD[M]}"
	settle M
	echo_worker t 100
	wait_until 30 stat_is .done "$n"
	[ "$(daemon_stat .delayed)" = 0 ]
	[ "$(received M | wc -l)" = "$n" ]
}

@test "cancelling a delayed job takes it out; a master's disconnect cancels its delayed jobs" {
	conn_open M
	send M '{"type":"job","job_type":"t","id":"x","body":1,"delay":600000}' \
		'{"type":"cancel","id":"x"}'
	wait_lines M 1
	is_error "$(line M 1)" cancelled '"x"'
	conn_open M2
	send M2 '{"type":"job","job_type":"t","id":"y","body":1,"delay":600000}'
	settle M2
	[ "$(daemon_stat .delayed)" = 1 ]
	conn_kill M2
	wait_until 10 stat_is .delayed 0
	[ "$(job_status '"y"')" = cancelled ]
	assert_daemon_healthy
}

@test "bad delays are refused with the limit named" {
	conn_open M
	send M '{"type":"job","job_type":"t","id":1,"body":1,"delay":-1}' \
		'{"type":"job","job_type":"t","id":2,"body":1,"delay":99999999999999}' \
		'{"type":"job","job_type":"t","id":3,"body":1,"at":-5}' \
		'{"type":"job","job_type":"t","id":4,"body":1,"at":99999999999999}' \
		'{"type":"job","job_type":"t","id":5,"body":1,"delay":1.5}'
	wait_lines M 5
	for i in 1 2 3 4 5; do is_error "$(line M $i)" invalid_type "$i"; done
	line M 2 | grep -q '31622400000 milliseconds'
	[ "$(daemon_stat .submitted)" = 0 ]
	assert_daemon_healthy
}
