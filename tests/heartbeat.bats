#!/usr/bin/env bats
# heartbeat.bats — "heartbeat":MS in join: the daemon pings a quiet worker
# and drops one silent for 3 intervals, requeueing its jobs (SPEC 1.3).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

pings_at_least() {
	[ "$(count "$1" '.type == "ping"')" -ge "$2" ]
}

@test "the daemon sends a ping after the heartbeat interval of silence" {
	conn_open W --worker
	start=$(date +%s%N)
	send W '{"type":"join","job_type":"hb","heartbeat":200}'
	wait_until 5 pings_at_least W 1
	elapsed=$((($(date +%s%N) - start) / 1000000))
	# Not before the interval, and nothing but pings.
	[ "$elapsed" -ge 200 ]
	[ "$(frames W | sort -u)" = '{"type":"ping"}' ]
	[ "$(line W 1)" = '{"type":"ping"}' ]
}

@test "a worker that answers each ping with pong stays joined and gets jobs" {
	conn_open W --worker
	conn_open M
	send W '{"type":"join","job_type":"hb","heartbeat":1000}'
	for i in 1 2 3 4 5 6; do
		wait_until 10 pings_at_least W "$i"
		send W '{"type":"pong"}'
		[ "$i" != 3 ] || send M '{"type":"job","job_type":"hb","id":"j","body":1}'
	done
	# Six intervals have passed, twice the limit for a silent worker.
	send W '{"type":"response","body":"ok"}'
	wait_lines M 1
	conn_alive W
	[ "$(workers_of hb)" = 1 ]
	[ "$(frames W '.type != "ping"')" = '{"type":"job","id":"j","body":1}' ]
	[ "$(line M 1)" = '{"id":"j","body":"ok"}' ]
}

@test "a worker that ignores pings is dropped after three intervals" {
	conn_open W --worker
	start=$(date +%s%N)
	# Intervals long enough that the join is seen before the drop on a
	# loaded machine.
	send W '{"type":"join","job_type":"hb","heartbeat":1000}'
	settle W
	[ "$(workers_of hb)" = 1 ]
	wait_until 20 conn_gone W
	elapsed=$((($(date +%s%N) - start) / 1000000))
	# Dropped (the daemon closed the connection), not before 3
	# intervals, and it was pinged on the way.
	[ "$elapsed" -ge 3000 ]
	[ "$(count W '.type == "ping"')" -ge 1 ]
	[ "$(count W '.type != "ping"')" = 0 ]
	[ "$(workers_of hb)" = 0 ]
	grep -q 'heartbeat lost' "$DAEMON_LOG"
	assert_daemon_healthy
}

@test "any frame from the worker counts as a sign of life" {
	conn_open W --worker
	send W '{"type":"join","job_type":"hb","heartbeat":1500}'
	# Chatter (here: channel subscriptions) instead of pongs, for 6
	# intervals, a frame every half interval: a loaded machine may take
	# a second to send one, and three silent intervals drop the worker.
	for i in $(seq 12); do
		send W "{\"type\":\"subscribe\",\"channel\":\"c$i\"}"
		sleep 0.75
	done
	conn_alive W
	[ "$(workers_of hb)" = 1 ]
}

@test "a silent worker's running job is requeued to another worker and its result reaches the master" {
	conn_open W --worker
	send W '{"type":"join","job_type":"hb","heartbeat":1000,"worker":"mute"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"hb","id":"r1","body":{"x":1},"notify":true}'
	wait_frame W '.type == "job"'
	[ "$(frames W '.type == "job"')" = '{"type":"job","id":"r1","body":{"x":1}}' ]
	# W never answers; a healthy worker is waiting.
	bg "$JOBCTL" work --name good hb -- cat
	wait_until 20 conn_gone W
	wait_frame M ".id == \"r1\" and $ENDING"
	[ "$(frames M)" = '{"id":"r1","status":"running","worker":"mute"}
{"id":"r1","status":"running","worker":"good"}
{"id":"r1","body":{"x":1}}' ]
	out=$(printf '%s\n' '{"type":"status","id":"r1"}' | "$JOBCTL" raw -n 1 -t 5000)
	[ "$(jq -c '[.status,.worker,.requeues]' <<<"$out")" = '["done","good",1]' ]
	[ "$(daemon_stat .requeued)" = 1 ]
}

@test "a worker whose host vanished without closing the socket loses its job to another worker" {
	# A stopped process keeps its socket open and answers nothing, as a
	# host that lost power or network would.
	"$JOBCTL" work --heartbeat 200 --name frozen hb -- sh -c 'cat; sleep 30' &
	wpid=$!
	BG_PIDS+=("$wpid")
	wait_until 5 workers_are hb 1
	conn_open M
	send M '{"type":"job","job_type":"hb","id":"v1","body":"payload"}'
	wait_until 5 status_is '"v1"' running
	out=$(printf '%s\n' '{"type":"status","id":"v1"}' | "$JOBCTL" raw -n 1 -t 5000)
	[ "$(jq -r .worker <<<"$out")" = frozen ]
	stop_proc "$wpid"
	start=$(date +%s%N)
	wait_until 5 workers_are hb 0
	elapsed=$((($(date +%s%N) - start) / 1000000))
	[ "$elapsed" -ge 150 ]
	[ "$(job_status '"v1"')" = queued ]
	bg "$JOBCTL" work --name thawed hb -- cat
	wait_lines M 1
	[ "$(out_of M)" = '{"id":"v1","body":"payload"}' ]
	out=$(printf '%s\n' '{"type":"status","id":"v1"}' | "$JOBCTL" raw -n 1 -t 5000)
	[ "$(jq -c '[.status,.worker,.requeues]' <<<"$out")" = '["done","thawed",1]' ]
	# The frozen worker wakes up to a closed connection and joins again;
	# the job stays as thawed ended it.
	cont_proc "$wpid"
	wait_until 10 workers_are hb 2
	proc_alive "$wpid"
	out=$(printf '%s\n' '{"type":"status","id":"v1"}' | "$JOBCTL" raw -n 1 -t 5000)
	[ "$(jq -c '[.status,.worker,.requeues]' <<<"$out")" = '["done","thawed",1]' ]
}

@test "a busy jobctl work answers pings and keeps its long job" {
	bg "$JOBCTL" work --heartbeat 100 hb -- sh -c 'sleep 0.8; cat'
	wait_until 5 workers_are hb 1
	# 0.8 s is 8 intervals: pongs, not the job's end, keep it joined.
	run timeout 10 "$JOBCTL" submit hb '"slow"'
	[ "$status" = 0 ]
	[ "$output" = '"slow"' ]
	[ "$(daemon_stat .requeued)" = 0 ]
}

@test "heartbeat must be 0 or at least 10 ms" {
	conn_open W --worker
	send W '{"type":"join","job_type":"hb","heartbeat":9}' \
		'{"type":"join","job_type":"hb","heartbeat":-5}' \
		'{"type":"join","job_type":"hb","heartbeat":"100"}'
	settle W
	[ "$(frames W | jq -r .error | sort | uniq -c | tr -s ' ')" = ' 3 invalid_type' ]
	[ "$(workers_of hb)" = 0 ]
	# 0 means no heartbeat: the worker is never pinged.
	send W '{"type":"join","job_type":"hb","heartbeat":0}'
	settle W
	[ "$(workers_of hb)" = 1 ]
	sleep 0.3
	settle W
	[ "$(count W '.type == "ping"')" = 0 ]
	assert_daemon_healthy
}

@test "a worker that never asked for heartbeats is never pinged" {
	conn_open W --worker
	send W '{"type":"join","job_type":"hb"}'
	settle W
	sleep 0.5
	settle W
	[ "$(frames W)" = "" ]
	conn_alive W
}

@test "the later dialect pings with an action" {
	conn_open W --worker
	send W '{"action":"join","type":"hb","heartbeat":100}'
	wait_lines W 2
	[ "$(line W 1)" = '{"ok":true}' ]
	[ "$(line W 2)" = '{"action":"ping"}' ]
}
