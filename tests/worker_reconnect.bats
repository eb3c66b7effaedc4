#!/usr/bin/env bats
# worker_reconnect.bats — jobctl work comes back after its daemon does: a
# kill -9 and a clean restart with --data, the same under --auth with a
# token file, a token reload that drops it; a command running across the
# restart ends its job once; a wrong token still ends the worker.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'
load 'helpers/auth'

# restart_here OPTIONS...: the daemon again on the same ports (the worker
# knows no others), with a fresh log; the old one is kept for failures.
restart_here() {
	[ -f "$DAEMON_LOG" ] && cat "$DAEMON_LOG" >>"$BATS_TEST_TMPDIR/daemon.before.log"
	: >"$DAEMON_LOG"
	"$JOBFS" -f --master-port "$JOBFS_MASTER_PORT" \
		--worker-port "$JOBFS_WORKER_PORT" "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_until 30 grep -q 'journal: .* replayed in' "$DAEMON_LOG"
}

# workers_are N: the daemon counts N joined workers.
workers_are() {
	"$JOBCTL" stats 2>/dev/null | grep -qx "workers $1"
}

# submit_detached ID BODY: a job of type t that outlives its master.
submit_detached() {
	submit_acked "$1" t "$2" ',"detach":true' >/dev/null
}

# worker_log_has TEXT: the worker's stderr says TEXT.
worker_log_has() {
	grep -qF "$1" "$BATS_TEST_TMPDIR/worker.err"
}

# start_worker ARGS...: jobctl work in the background, stderr kept.
start_worker() {
	"$JOBCTL" work "$@" 2>"$BATS_TEST_TMPDIR/worker.err" &
	WORKER_PID=$!
	BG_PIDS+=("$WORKER_PID")
}

# show_logs: the worker's and the daemon's logs, for a failure's output.
show_logs() {
	echo "--- worker:"; cat "$BATS_TEST_TMPDIR/worker.err"
	echo "--- daemon before the restart:"
	cat "$BATS_TEST_TMPDIR/daemon.before.log" 2>/dev/null
	echo "--- daemon:"; cat "$DAEMON_LOG"
}

# restart_cycle KIND OPTIONS...: jobs submitted while the worker is gone
# complete after the daemon comes back, with no hand on the worker.
restart_cycle() {
	local kind=$1 i
	shift
	start_worker t -- cat
	wait_until 10 workers_are 1
	submit_detached 1 '"before"'
	wait_until 10 status_is 1 done
	if [ "$kind" = kill ]; then
		crash_daemon
	else
		stop_daemon
	fi
	restart_here "$@"
	for i in 2 3 4; do
		submit_detached "$i" "\"job$i\""
	done
	wait_until 15 workers_are 1 || { show_logs; return 1; }
	for i in 2 3 4; do
		wait_until 15 status_is "$i" done
	done
	[ "$("$JOBCTL" wait 3)" = '"job3"' ]
	kill -0 "$WORKER_PID"
	worker_log_has 'connection lost ('
	worker_log_has 'reconnected after'
}

@test "a worker survives kill -9 and a restart of its daemon" {
	start_durable
	restart_cycle kill --data "$DATA"
	assert_daemon_healthy
}

@test "a worker survives a clean restart (SIGTERM) of its daemon" {
	start_durable
	restart_cycle term --data "$DATA"
	assert_daemon_healthy
}

@test "under --auth a worker with a token file comes back after kill -9 and after a clean restart" {
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	printf '%s\n' "$TOK_WK" >"$BATS_TEST_TMPDIR/wk.token"
	start_durable --auth "$TOKENS"
	export JOBFS_TOKEN=$TOK_ROOT   # the worker's own comes from its file
	"$JOBCTL" --token-file "$BATS_TEST_TMPDIR/wk.token" work t -- cat \
		2>"$BATS_TEST_TMPDIR/worker.err" &
	WORKER_PID=$!
	BG_PIDS+=("$WORKER_PID")
	wait_until 10 workers_are 1
	crash_daemon
	restart_here --data "$DATA" --auth "$TOKENS"
	submit_detached 1 '"one"'
	wait_until 15 status_is 1 done
	stop_daemon
	restart_here --data "$DATA" --auth "$TOKENS"
	submit_detached 2 '"two"'
	wait_until 15 status_is 2 done
	[ "$(grep -c 'reconnected after' "$BATS_TEST_TMPDIR/worker.err")" = 2 ]
	kill -0 "$WORKER_PID"
	auth_healthy
}

@test "a token reload that drops the worker: it reads its token file again and comes back" {
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	printf '%s\n' "$TOK_WK" >"$BATS_TEST_TMPDIR/wk.token"
	start_daemon --auth "$TOKENS"
	export JOBFS_TOKEN=$TOK_ROOT
	"$JOBCTL" --token-file "$BATS_TEST_TMPDIR/wk.token" work t -- cat \
		2>"$BATS_TEST_TMPDIR/worker.err" &
	WORKER_PID=$!
	BG_PIDS+=("$WORKER_PID")
	wait_until 10 workers_are 1
	# wk's token is withdrawn for wk2's: the daemon drops the worker; the
	# file has the new one.
	new=wk2-0123456789abcdef01234567
	printf '%s\n' "$new" >"$BATS_TEST_TMPDIR/wk.token"
	sed -i "s/^wk .*/wk2 worker $new/" "$TOKENS"
	kill -HUP "$DAEMON_PID"
	wait_until 10 worker_log_has 'connection lost (auth_failed: '
	wait_until 15 worker_log_has 'reconnected after'
	wait_until 10 grep -q 'authenticated as wk2' "$DAEMON_LOG"
	out=$(timeout 20 "$JOBCTL" submit t '"after reload"')
	[ "$out" = '"after reload"' ]
	kill -0 "$WORKER_PID"
}

@test "a command running across a restart finishes; its job ends once, with its result" {
	start_durable
	RUNS=$BATS_TEST_TMPDIR/runs GATE=$BATS_TEST_TMPDIR/gate
	export RUNS GATE
	start_worker t -- sh -c 'echo run >>"$RUNS"; while [ ! -e "$GATE" ]; do sleep 0.05; done; cat'
	wait_until 10 workers_are 1
	submit_detached 1 '"across"'
	wait_until 10 test -s "$RUNS"
	crash_daemon
	restart_here --data "$DATA"
	wait_until 15 workers_are 1
	touch "$GATE"
	wait_until 15 status_is 1 done
	[ "$("$JOBCTL" wait 1)" = '"across"' ]
	[ "$(wc -l <"$RUNS")" = 1 ]
	# It ended once: one more job runs, and job 1 stays as it was.
	out=$(timeout 20 "$JOBCTL" submit t '"next"')
	[ "$out" = '"next"' ]
	[ "$(wc -l <"$RUNS")" = 2 ]
	[ "$(job_status 1)" = done ]
	kill -0 "$WORKER_PID"
}

@test "a command that ends while the daemon is down: its kept result answers the job once" {
	start_durable
	RUNS=$BATS_TEST_TMPDIR/runs GATE=$BATS_TEST_TMPDIR/gate ENDS=$BATS_TEST_TMPDIR/ends
	export RUNS GATE ENDS
	start_worker t -- sh -c 'echo run >>"$RUNS"; while [ ! -e "$GATE" ]; do sleep 0.05; done; cat; echo end >>"$ENDS"'
	wait_until 10 workers_are 1
	submit_detached 1 '"kept"'
	wait_until 10 test -s "$RUNS"
	crash_daemon
	touch "$GATE"
	wait_until 10 test -s "$ENDS"
	restart_here --data "$DATA"
	wait_until 15 status_is 1 done
	[ "$("$JOBCTL" wait 1)" = '"kept"' ]
	[ "$(wc -l <"$RUNS")" = 1 ]
	out=$(timeout 20 "$JOBCTL" submit t '"next"')
	[ "$out" = '"next"' ]
	kill -0 "$WORKER_PID"
}

@test "a kept result ends its job though nobody was given it again (its type paused across the restart)" {
	start_durable
	RUNS=$BATS_TEST_TMPDIR/runs GATE=$BATS_TEST_TMPDIR/gate ENDS=$BATS_TEST_TMPDIR/ends
	export RUNS GATE ENDS
	start_worker t -- sh -c 'echo run >>"$RUNS"; while [ ! -e "$GATE" ]; do sleep 0.05; done; cat; echo end >>"$ENDS"'
	wait_until 10 workers_are 1
	submit_detached 1 '"kept"'
	wait_until 10 test -s "$RUNS"
	"$JOBCTL" pause t           # the running job goes on; nothing new starts
	crash_daemon
	touch "$GATE"
	wait_until 10 test -s "$ENDS"
	restart_here --data "$DATA"
	# The job is back in t's queue, which stays paused: only the kept
	# result, sent on the worker's return, can end it.
	wait_until 15 status_is 1 done || { show_logs; return 1; }
	[ "$("$JOBCTL" wait 1)" = '"kept"' ]
	[ "$(wc -l <"$RUNS")" = 1 ]
	"$JOBCTL" stats | grep -qx 'paused 1'
	run ! worker_log_has 'was not taken'
	"$JOBCTL" resume t
	out=$(timeout 20 "$JOBCTL" submit t '"next"')
	[ "$out" = '"next"' ]
	kill -0 "$WORKER_PID"
}

@test "a late result for a job another worker ended is refused; the worker logs it and goes on" {
	start_durable
	RUNS=$BATS_TEST_TMPDIR/runs GATE=$BATS_TEST_TMPDIR/gate
	export RUNS GATE
	start_worker t -- sh -c 'echo run >>"$RUNS"; while [ ! -e "$GATE" ]; do sleep 0.05; done; echo "\"A\""'
	wait_until 10 workers_are 1
	submit_detached 1 '"x"'
	wait_until 10 test -s "$RUNS"
	# Worker A is held still while the daemon restarts and B takes job 1.
	kill -STOP "$WORKER_PID"
	crash_daemon
	restart_here --data "$DATA"
	"$JOBCTL" work t -- sh -c 'cat >/dev/null; echo "\"B\""' &
	b=$!
	wait_until 15 status_is 1 done
	kill "$b"
	wait "$b" || true
	wait_until 10 workers_are 0
	kill -CONT "$WORKER_PID"
	wait_until 15 workers_are 1
	touch "$GATE"
	wait_until 15 worker_log_has 'the result of job 1 from before the reconnect was not taken (unknown_id)'
	[ "$("$JOBCTL" wait 1)" = '"B"' ]
	out=$(timeout 20 "$JOBCTL" submit t '"next"')
	[ "$out" = '"A"' ]
	kill -0 "$WORKER_PID"
}

@test "a fleet of four workers lives through five restarts; every job ends once with its result" {
	start_durable
	RUNS=$BATS_TEST_TMPDIR/runs
	export RUNS
	for w in 1 2 3 4; do
		"$JOBCTL" work --name "w$w" t -- sh -c 'echo "$JOBFS_JOB_ID" >>"$RUNS"; sleep 0.1; cat' \
			2>"$BATS_TEST_TMPDIR/worker$w.err" &
		BG_PIDS+=("$!")
	done
	wait_until 10 workers_are 4
	n=0
	for round in 1 2 3 4 5; do
		for i in 1 2 3 4 5 6; do
			n=$((n + 1))
			submit_detached "$n" "\"r$round-$i\""
		done
		# Some of this round's jobs run as the daemon goes.
		wait_until 10 test -s "$RUNS"
		if [ $((round % 2)) = 1 ]; then
			crash_daemon
		else
			stop_daemon
		fi
		restart_here --data "$DATA"
		wait_until 15 workers_are 4
	done
	n=0
	for round in 1 2 3 4 5; do
		for i in 1 2 3 4 5 6; do
			n=$((n + 1))
			[ "$(timeout 20 "$JOBCTL" wait "$n")" = "\"r$round-$i\"" ]
		done
	done
	for p in "${BG_PIDS[@]}"; do
		kill -0 "$p"
	done
	# Each loss has its return (a worker may also catch a stopping daemon
	# between its last close and its exit: one more of each).
	back=$(cat "$BATS_TEST_TMPDIR"/worker?.err | grep -c 'reconnected after')
	lost=$(cat "$BATS_TEST_TMPDIR"/worker?.err | grep -c 'connection lost (')
	echo "returns $back, losses $lost"
	[ "$back" -ge 20 ]
	[ "$back" = "$lost" ]
}

@test "a worker whose token is refused exits non-zero at once" {
	start_auth_daemon
	run -3 env JOBFS_TOKEN=wrong-token-0123456789abcdef "$JOBCTL" work t -- cat
	[[ "$output" == *"authentication refused"* ]]
	auth_healthy
}

@test "--no-reconnect keeps the old way: a lost daemon ends the worker with status 3" {
	start_daemon
	start_worker --no-reconnect t -- cat
	wait_until 10 workers_are 1
	stop_daemon
	rc=0
	wait "$WORKER_PID" || rc=$?
	[ "$rc" = 3 ]
	grep -q 'connection lost: ' "$BATS_TEST_TMPDIR/worker.err"
	start_daemon
	assert_daemon_healthy
}

@test "--retry-for gives up after an outage that long; a worker started before its daemon waits for it" {
	port=$(random_port)
	JOBFS_WORKER_PORT=$port run -3 "$JOBCTL" work --retry-for 1 t -- cat
	[[ "$output" == *"cannot connect: 127.0.0.1 port $port: Connection refused; reconnecting"* ]]
	[[ "$output" == *"gave up reconnecting after"* ]]
	# Without --retry-for it waits for the daemon to come.
	JOBFS_MASTER_PORT=$(random_port)
	JOBFS_WORKER_PORT=$port
	export JOBFS_MASTER_PORT JOBFS_WORKER_PORT
	start_worker t -- cat
	wait_until 10 worker_log_has 'Connection refused; reconnecting'
	DAEMON_LOG=$BATS_TEST_TMPDIR/daemon.log
	restart_here --data "$DATA"
	out=$(timeout 20 "$JOBCTL" submit t '"late start"')
	[ "$out" = '"late start"' ]
	worker_log_has 'reconnected after'
}
