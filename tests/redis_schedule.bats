#!/usr/bin/env bats
# redis_schedule.bats — repeating jobs in cluster mode: schedules live in
# Redis (P:sched) and reach every daemon; every daemon's timer fires each
# due time, and a claim per due time (P:sc:TYPE/NAME:DUE, SET NX) lets
# exactly one of them submit its job: N due times, N jobs, not 2N.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

# A claim whose answer is lost with the link (a daemon drops it when its
# heartbeat waits past half the lease, as it can on a loaded machine)
# leaves its due time unfired: a 5 s lease keeps that out of these tests.
setup() {
	redis_start
	NODE_LEASE=5000 NODE_DEBUG=1 start_node A
	NODE_LEASE=5000 NODE_DEBUG=1 start_node B
}

# claims: the due times claimed for t/tick, sorted.
claims() {
	rcli --scan --pattern "$(rkey 'sc:t/tick:*')" | sed 's/.*://' | sort -n
}

claims_at_least() {
	[ "$(claims | wc -l)" -ge "$1" ]
}

# submitted: the due times of t/tick whose job some daemon submitted, one
# line per submission, every daemon's log together.
submitted() {
	cat "$BATS_TEST_TMPDIR"/node-*.log |
		sed -n 's/.*schedule t\/tick: due \([0-9]*\): job submitted.*/\1/p' | sort -n
}

submitted_are() {
	[ "$(submitted)" = "$1" ]
}

listed_on() {
	on "$1" "$JOBCTL" schedules | cut -f2 | tr '\n' ' '
}

listed_on_is() {
	[ "$(listed_on "$1")" = "$2" ]
}

@test "two daemons on one Redis: a schedule reaches both, and each due time fires once" {
	use_node A
	request '{"type":"schedule","job_type":"t","name":"tick","every":200,"body":{"c":1}}' >/dev/null
	[ -n "$(rcli HGET "$(rkey sched)" t/tick)" ]
	wait_until 20 listed_on_is B 'tick '
	wait_until 30 claims_at_least 10
	# Removed on B: gone from A too, and from Redis.
	[ "$(on B "$JOBCTL" unschedule t tick | jq -c .unscheduled)" = 1 ]
	wait_until 20 listed_on_is A ''
	[ "$(rcli HEXISTS "$(rkey sched)" t/tick)" = 0 ]
	# Every claimed due time submitted once, by one daemon, and a job in Redis each.
	c=$(claims)
	wait_until 20 submitted_are "$c"
	[ "$(wc -l <<<"$c")" -ge 10 ]
	for d in $c; do
		[ "$(rcli HGET "$(rkey "j:sched:t:tick:$d")" b)" = '{"c":1}' ]
	done
	# Both daemons' timers fired: the claims were split, or lost by one.
	[ "$(grep -c 'is another daemon' "$(node_log A)" "$(node_log B)" | awk -F: '{s += $2} END {print s}')" -ge 1 ]
	round_trip
}

@test "a daemon that starts later gets the schedules from Redis; a restart does not fire a due time again" {
	use_node A
	request '{"type":"schedule","job_type":"t","name":"tick","every":300}' >/dev/null
	request '{"type":"schedule","job_type":"t","name":"yearly","cron":"0 0 1 1 *"}' >/dev/null
	wait_until 20 listed_on_is B 'tick yearly '
	wait_until 30 claims_at_least 3
	request '{"type":"unschedule","job_type":"t","name":"tick"}' >/dev/null
	wait_until 20 listed_on_is B 'yearly '
	wait_until 20 submitted_are "$(claims)"
	request '{"type":"schedule","job_type":"t","name":"tick","every":300}' >/dev/null
	wait_until 20 listed_on_is B 'tick yearly '
	kill_node B
	NODE_LEASE=5000 NODE_DEBUG=1 start_node C
	wait_until 20 listed_on_is C 'tick yearly '
	n=$(claims | wc -l)
	wait_until 30 claims_at_least $((n + 3))
	request '{"type":"unschedule","job_type":"t","name":"tick"}' >/dev/null
	wait_until 20 listed_on_is C 'yearly '
	c=$(claims)
	wait_until 20 submitted_are "$c"
	[ -z "$(rcli --scan --pattern "$(rkey 'sc:t/yearly:*')")" ]
	round_trip A C
}
