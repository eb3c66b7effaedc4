#!/usr/bin/env bats
# redis_life.bats — cluster mode: the job lifecycle across two daemons on
# one Redis, as life_*.bats check it on one: retries with backoff (a
# failed attempt on one daemon's worker retried on the other's), the dead
# set seen from both and kick from either, delays that come due on
# exactly one daemon and not before their time, a pause and a limit set
# on one daemon that hold every daemon's workers.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
	start_node A
	start_node B
}

# njobs_all: jobs given to the workers WA and WB together.
njobs_all() {
	echo $(($(conn_njobs WA) + $(conn_njobs WB)))
}

njobs_all_is() {
	[ "$(njobs_all)" = "$1" ]
}

# fail_on_A ID: WA (on A) has ID's first attempt; WB joins on B; WA fails
# the attempt, then leaves, so that its retry (after a backoff of at least
# 0.5 s) can only go to WB.
fail_on_A() {
	wait_jobs WA 1
	[ "$(jobs_of WA | jq -r .id)" = "$1" ]
	use_node B
	join_worker WB t
	use_node A
	send WA '{"type":"fail","body":"e1"}'
	settle WA
	conn_kill WA
	wait_until 10 workers_of_t_are 1
}

workers_of_t_are() {
	[ "$(rcli HGET "$(rkey t:t)" workers)" = "$1" ]
}

workers_of_d_are() {
	[ "$(rcli HGET "$(rkey t:d)" workers)" = "$1" ]
}

paused_on_B() {
	[ "$(on B daemon_stat .paused)" = 1 ]
}

@test "a failed attempt on A's worker is retried on B's worker, after its backoff" {
	use_node A
	join_worker WA t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"r1","body":1,"retries":2,"backoff":1000}'
	fail_on_A r1
	[ "$(rcli HGET "$(rkey j:r1)" fc)" = 1 ]
	wait_jobs WB 1 10
	[ "$(jobs_of WB | jq -r .id)" = r1 ]
	send WB '{"type":"response","body":"second"}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"r1","body":"second"}'
	[ "$(rcli HGET "$(rkey j:r1)" att)" = 2 ]
	[ "$(rcli HGET "$(rkey t:t)" retried)" = 1 ]
	round_trip
}

@test "out of retries a job is dead as seen from both daemons; kicked from B it completes" {
	use_node A
	join_worker WA t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"r2","body":1,"retries":1,"backoff":1000}'
	fail_on_A r2
	wait_jobs WB 1 10
	send WB '{"type":"fail","body":"e2"}'
	wait_lines M 1
	[ "$(jq -r .error <<<"$(line M 1)")" = job_failed ]
	[ -n "$(rcli ZSCORE "$(rkey dead)" r2)" ]
	[ "$(on A status_json '"r2"' | jq -c '[.status, .dead]')" = '["failed",true]' ]
	[ "$(on B status_json '"r2"' | jq -c '[.status, .dead]')" = '["failed",true]' ]
	same_json "$(on B request '{"type":"kick","id":"r2"}')" '{"kicked":1,"id":"r2"}'
	wait_jobs WB 2 10
	[ "$(jobs_of WB | sed -n 2p | jq -r .id)" = r2 ]
	[ -z "$(rcli ZSCORE "$(rkey dead)" r2)" ]
	send WB '{"type":"response","body":"after kick"}'
	wait_until 10 st_is r2 done
	[ "$(on A job_status '"r2"')" = done ]
	round_trip
}

@test "a type's default retries set on one daemon apply to jobs run on the other" {
	[ "$(on B request '{"type":"configure","job_type":"t","retries":1,"backoff":1000}' | jq -c .retries)" = 1 ]
	use_node A
	join_worker WA t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"r3","body":1}'
	fail_on_A r3
	wait_jobs WB 1 10
	send WB '{"type":"response","body":"ok"}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"r3","body":"ok"}'
	round_trip
}

@test "delayed jobs come due on exactly one daemon, never before their time" {
	local f=$BATS_TEST_TMPDIR/deliveries i
	: >"$f"
	on A "$JOBCTL" work d -- sh -c "cat >>'$f'; echo >>'$f'; echo '\"ok\"'" >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	on B "$JOBCTL" work d -- sh -c "cat >>'$f'; echo >>'$f'; echo '\"ok\"'" >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait_until 10 workers_of_d_are 2
	use_node A
	conn_open M
	for i in 1 2 3 4 5 6 7 8; do
		send M "{\"type\":\"job\",\"job_type\":\"d\",\"id\":\"d$i\",\"body\":$i,\"delay\":300}"
	done
	at=$(($(date +%s%3N) + 400))
	send M '{"type":"job","job_type":"d","id":"at1","body":9,"at":'"$at"'}'
	wait_lines M 9 20
	round_trip
	# Each job was delivered once, and started no sooner than its due time
	# (Redis's clock: submitted + delay, or at).
	[ "$(grep -c . "$f")" = 9 ]
	[ "$(sort "$f" | uniq -d)" = "" ]
	for i in 1 2 3 4 5 6 7 8; do
		sub=$(rcli HGET "$(rkey j:d$i)" sub)
		sta=$(rcli HGET "$(rkey j:d$i)" sta)
		[ "$((sta - sub))" -ge 300 ]
	done
	[ "$(rcli HGET "$(rkey j:at1)" sta)" -ge "$at" ]
	[ "$(rcli ZCARD "$(rkey dly)")" = 0 ]
	[ "$(rcli HGET "$(rkey t:d)" delayed)" = 0 ]
}

@test "a pause set on A holds B's workers; resume on A releases them" {
	[ "$(on A request '{"type":"pause","job_type":"t"}' | jq -c .paused)" = true ]
	use_node B
	join_worker WB t
	wait_until 10 paused_on_B
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"t","id":"p1","body":1}'
	settle M
	round_trip A B
	round_trip B A
	st_is p1 queued
	[ "$(conn_njobs WB)" = 0 ]
	[ "$(on A request '{"type":"resume","job_type":"t"}' | jq -c .paused)" = false ]
	wait_jobs WB 1 10
	send WB '{"type":"response","body":"p"}'
	wait_lines M 2
	same_json "$(line M 2)" '{"id":"p1","body":"p"}'
}

@test "a limit of 1 set on A holds both daemons' workers to one job at a time" {
	[ "$(on A request '{"type":"configure","job_type":"t","limit":1}' | jq -c .limit)" = 1 ]
	use_node A
	join_worker WA t
	use_node B
	join_worker WB t
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"t","id":"l1","body":1}' \
		'{"type":"job","job_type":"t","id":"l2","body":2}'
	wait_until 10 njobs_all_is 1
	round_trip A B
	round_trip B A
	[ "$(njobs_all)" = 1 ]
	[ "$(rcli HGET "$(rkey t:t)" running)" = 1 ]
	if [ "$(conn_njobs WA)" = 1 ]; then
		send WA '{"type":"response","body":"x"}'
	else
		send WB '{"type":"response","body":"x"}'
	fi
	wait_until 10 njobs_all_is 2
	[ "$(rcli HGET "$(rkey t:t)" running)" = 1 ]
}
