#!/usr/bin/env bats
# redis_leases.bats — cluster mode: a daemon that dies (kill -9)
# holds leases on the jobs its workers run; once its lease expires another
# daemon queues them again, counting a loss, and they run elsewhere exactly
# once; its masters' queued jobs are cancelled as on a disconnect.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
	start_node A
	start_node B
	start_node C
}



@test "kill -9 of a daemon whose worker holds a job: the job runs on another daemon, once, with one loss" {
	use_node B
	join_worker WB hot
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"hot","id":"j1","body":"potato"}'
	wait_jobs WB 1
	[ "$(rcli HGET "$(rkey j:j1)" d)" = 2 ]
	kill_node B
	use_node C
	join_worker WC hot
	# After the lease (1 s here) a reaper queues it again; C's worker takes it.
	wait_jobs WC 1 20
	[ "$(rcli HGET "$(rkey j:j1)" ls)" = 1 ]
	[ "$(rcli HGET "$(rkey j:j1)" d)" = 3 ]
	send WC '{"type":"response","body":"cooked"}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"j1","body":"cooked"}'
	settle M
	[ "$(received M | wc -l)" = 1 ]
	grep -q 'lost their lease' "$(node_log A)" "$(node_log C)"
	# The dead daemon is gone from Redis once reclaimed.
	wait_until 10 test -z "$(rcli HGET "$(rkey daemons)" 2)"
	round_trip A C
}

@test "a dead daemon's masters' queued jobs are cancelled after its lease; detached ones stay" {
	use_node B
	conn_open MB
	send MB '{"type":"job","job_type":"q","id":"drop","body":1}' \
		'{"type":"job","job_type":"q","id":"keep","body":2,"detach":true}'
	settle MB
	st_is drop queued
	kill_node B
	wait_until 20 st_is drop cancelled
	st_is keep queued
	on C "$JOBCTL" work q -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait_until 20 st_is keep done
	round_trip A C
}

@test "kills at random moments under load: every job ends exactly once" {
	local round i n out ids
	for round in 1 2 3 4 5; do
		on B "$JOBCTL" work --capacity 4 k -- cat >/dev/null 2>&1 &
		BG_PIDS+=("$!")
		on C "$JOBCTL" work --capacity 2 k -- cat >/dev/null 2>&1 &
		BG_PIDS+=("$!")
		use_node A
		conn_open "M$round"
		for ((i = 1; i <= 60; i++)); do
			send "M$round" "{\"type\":\"job\",\"job_type\":\"k\",\"id\":\"r$round-$i\",\"body\":$i}"
		done
		sleep "0.$((RANDOM % 10))"
		kill_node B
		wait_until 60 conn_has_lines "M$round" 60
		settle "M$round"
		out=$(received "M$round")
		n=$(wc -l <<<"$out")
		ids=$(jq -r .id <<<"$out" | sort -u | wc -l)
		[ "$n" = 60 ] || { echo "round $round: $n endings" >&2; false; }
		[ "$ids" = 60 ]
		# Each came back with its own body: nothing ran twice into one ending.
		[ "$(jq -c 'select(.body == (.id | split("-")[1] | tonumber))' <<<"$out" | wc -l)" = 60 ]
		start_node B
	done
	round_trip A C
}
