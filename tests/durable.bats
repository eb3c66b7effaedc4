#!/usr/bin/env bats
# durable.bats — jobfs --data DIR keeps its jobs across kill -9:
# queued jobs in priority then submission order, running jobs queued again
# counting a loss, finished jobs with their results, tree submissions, ids
# kept; one daemon per DIR; every --sync mode; journal figures in stats.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

submit5() {
	send M '{"action":"submit","id":"a","type":"t","body":1,"priority":1}' \
		'{"action":"submit","id":"b","type":"t","body":2,"priority":5}' \
		'{"action":"submit","id":"c","type":"t","body":3,"priority":1}' \
		'{"action":"submit","id":"d","type":"t","body":4,"priority":5}' \
		'{"action":"submit","id":"e","type":"t","body":5}'
	wait_lines M 5
	[ "$(received M | jq -r .ok | sort -u)" = true ]
}

# served_in_order W: serve W's jobs one at a time; print their ids.
served_ids() {
	serve W 5
	job_ids_of W | tr -d '"' | tr '\n' ' '
}

@test "queued jobs come back after kill -9, in priority then submission order" {
	start_durable
	conn_open M
	submit5
	crash_daemon
	start_durable
	grep -q '5 jobs queued' "$DAEMON_LOG"
	join_worker W t
	[ "$(served_ids)" = "b d a c e " ]
	# Recovered jobs have no master: none was cancelled meanwhile.
	wait_until 10 stat_is .done 5
	[ "$(daemon_stat .cancelled)" = 0 ]
	assert_daemon_healthy
}

@test "without --data nothing survives (the check above can fail)" {
	start_daemon
	conn_open M
	submit5
	kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=
	start_daemon
	[ "$(daemon_stat .queued)" = 0 ]
	[ "$(job_status '"a"')" = unknown_id ]
}

@test "a running job comes back queued with one more loss; at its 4th loss it fails" {
	local i
	start_durable
	conn_open M
	send M '{"action":"submit","id":"r","type":"t","body":"x"}'
	wait_lines M 1
	for i in 1 2 3 4; do
		join_worker "W$i" t
		wait_jobs "W$i" 1
		status_is '"r"' running
		crash_daemon
		start_durable
		if [ "$i" -lt 4 ]; then
			[ "$(status_json '"r"' | jq -c '[.status, .losses]')" = "[\"queued\",$i]" ]
		fi
	done
	[ "$(status_json '"r"' | jq -c '[.status, .losses]')" = '["failed",4]' ]
	grep -q '1 failed by that loss' "$DAEMON_LOG"
	assert_daemon_healthy
}

@test "finished jobs come back with their results; a queued id that came back cannot be submitted again" {
	start_durable --keep 600
	conn_open M
	join_worker W t
	send M '{"action":"submit","id":"f1","type":"t","body":{"n":1}}' \
		'{"action":"submit","id":42,"type":"t","body":[1,2]}'
	# A response before its job has reached W would answer nothing.
	wait_jobs W 1
	respond W '{"r":"one"}'
	wait_jobs W 2
	respond W '{"r":"two"}'
	wait_lines M 4
	send M '{"action":"submit","id":"q1","type":"other","body":3}'
	wait_lines M 5
	crash_daemon
	start_durable --keep 600
	[ "$(job_status '"f1"')" = done ]
	[ "$(job_status 42)" = done ]
	# The ending a master waiting for it gets is the one its submitter got.
	same_json "$(load_py wait "$JOBFS_MASTER_PORT" '"f1"' 42 | sed -n 1p)" '{"id":"f1","body":{"r":"one"}}'
	same_json "$(load_py wait "$JOBFS_MASTER_PORT" '"f1"' 42 | sed -n 2p)" '{"id":42,"body":{"r":"two"}}'
	conn_open M2
	send M2 '{"action":"submit","id":"q1","type":"t","body":1}'
	wait_lines M2 1
	is_error "$(line M2 1)" id_exists '"q1"'
	assert_daemon_healthy
}

@test "finished jobs past --keep-max are not brought back" {
	local i
	start_durable --keep-max 2
	conn_open M
	join_worker W t
	for i in 1 2 3 4; do
		send M "{\"action\":\"submit\",\"id\":$i,\"type\":\"t\",\"body\":$i}"
		respond W "$i"
	done
	wait_lines M 8
	wait_until 10 stat_is .retained 2
	crash_daemon
	start_durable --keep-max 2
	[ "$(daemon_stat .retained)" = 2 ]
	[ "$(job_status 1)" = unknown_id ]
	[ "$(job_status 4)" = done ]
	assert_daemon_healthy
}

@test "jobs written to a queue in the tree survive kill -9 once the write returned" {
	start_durable_mounted
	mkdir "$MNT/types/tq"
	echo '{"from":"tree"}' >"$MNT/types/tq/queue"
	echo '{"from":"tree2"}' >"$MNT/types/tq/queue"
	[ "$(ls "$MNT/jobs" | wc -l)" = 2 ]
	crash_daemon
	start_durable_mounted
	[ "$(ls "$MNT/jobs" | wc -l)" = 2 ]
	join_worker W tq
	serve W 2
	[ "$(jobs_of W | jq -c .body | sort | tr '\n' ' ')" = '{"from":"tree"} {"from":"tree2"} ' ]
	wait_until 10 stat_is .done 2
	assert_daemon_healthy
}

@test "two daemons cannot use one data directory: the second exits with status 5" {
	start_durable
	run timeout 20 "$JOBFS" -f --master-port 0 --worker-port 0 --data "$DATA"
	[ "$status" = 5 ]
	[[ "$output" == *"cannot use --data: $DATA is in use by another jobfs (pid $DAEMON_PID)"* ]]
	# The first one goes on.
	conn_open M
	send M '{"action":"submit","id":"x","type":"t","body":1}'
	wait_lines M 1
	assert_daemon_healthy
}

@test "every --sync mode keeps acknowledged jobs across kill -9 of the daemon" {
	local mode
	for mode in always interval:20 never; do
		rm -rf "$DATA"
		start_durable --sync "$mode"
		conn_open M
		send M '{"action":"submit","id":"s1","type":"t","body":1}' \
			'{"action":"submit","id":"s2","type":"t","body":2}'
		wait_lines M 2
		crash_daemon
		start_durable --sync "$mode"
		[ "$(job_status '"s1"')" = queued ]
		[ "$(job_status '"s2"')" = queued ]
		stop_daemon
	done
	start_durable --sync interval:20
	if [ "$(daemon_stat .journal_syncs)" = 0 ]; then
		conn_open M2
		send M2 '{"action":"submit","id":"s3","type":"t","body":3}'
		wait_lines M2 1
	fi
	wait_until 10 bash -c "[ \"\$(printf '%s\n' '{\"type\":\"stats\"}' | '$JOBCTL' raw -n 1 | jq .stats.journal_syncs)\" -gt 0 ]"
	run "$JOBFS" --sync sometimes
	[ "$status" = 1 ]
	[[ "$output" == *"bad --sync: sometimes"* ]]
}

@test "stats show the journal, over TCP and in the tree" {
	start_durable_mounted
	conn_open M
	send M '{"action":"submit","id":"a","type":"t","body":1}'
	wait_lines M 1
	[ "$(daemon_stat .journal_bytes)" -gt 32 ]
	[ "$(daemon_stat .journal_segments)" = 1 ]
	[ "$(daemon_stat .journal_syncs)" -ge 1 ]
	[ "$(daemon_stat .journal_sync_max_us)" -ge "$(daemon_stat .journal_sync_last_us)" ]
	[ "$(daemon_stat .journal_error)" = 0 ]
	grep -qE '^journal_bytes [0-9]+$' "$MNT/stats"
	grep -qE '^journal_syncs [1-9][0-9]*$' "$MNT/stats"
	assert_daemon_healthy
}

@test "a restart with 100000 queued jobs takes no more memory than the daemon had before it" {
	local before after n=100000
	asan_build && skip "ASan's quarantine and shadow blur RSS"
	start_durable --sync never
	seq 1 "$n" | awk '{ printf "{\"action\":\"submit\",\"id\":\"q%d\",\"type\":\"t\",\"detach\":true,\"body\":{\"pad\":\"%0100d\"}}\n", $1, $1 }' |
		"$JOBCTL" raw -n "$n" -t 120000 | grep -c '"ok":true' >"$BATS_TEST_TMPDIR/acks"
	[ "$(cat "$BATS_TEST_TMPDIR/acks")" = "$n" ]
	[ "$(daemon_stat .queued)" = "$n" ]
	before=$(rss_kb)
	crash_daemon
	start_durable --sync never
	[ "$(daemon_stat .queued)" = "$n" ]
	after=$(rss_kb)
	echo "# RSS before the restart $((before / 1024)) MiB, after replay $((after / 1024)) MiB" >&3
	[ "$after" -le $((before * 13 / 10)) ]
	[ "$(submit_acked '"fresh"' t 1 | jq -r .ok)" = true ]
	assert_daemon_healthy
}
