#!/usr/bin/env bats
# job_log.bats — what a job printed: jobctl work sends the last 64 KiB of
# its command's stderr as the job's log, which the daemon keeps (and
# journals) and shows as jobs/ID/log, GET /jobs/ID/log and status's "log";
# jobctl work --progress turns the lines the command writes to fd 3 into
# partial results, seen live by a streaming master, jobs/ID/progress and
# /events.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/web'
load 'helpers/durable'
load 'helpers/fs'

# start_logs: a daemon with --data, the web face and a tree.
start_logs() {
	require_fuse
	HTTP_PORT=$(random_port)
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	start_durable --http "127.0.0.1:$HTTP_PORT" "$MNT" || return 1
	wait_for_port "$HTTP_PORT" || return 1
	wait_until 10 test -e "$MNT/README" || return 1
	H=http://127.0.0.1:$HTTP_PORT
}

# status_log ID: the "log" of jobctl status ID ("none" if it has none).
status_log() {
	"$JOBCTL" status "$1" | jq -r '.log // "none"'
}

# A worker that prints to stderr, and fails (exit 3) on a body with "bad".
LOGGER='echo "stderr of $JOBFS_JOB_ID" >&2; read b
case $b in *bad*) echo "it went wrong" >&2; exit 3;; esac
echo "{\"ok\":true}"'

@test "the log of a succeeding and of a failing job is in the tree, REST, status and the page" {
	start_logs
	bg "$JOBCTL" work --fail lg -- sh -c "$LOGGER"
	run "$JOBCTL" submit --id good lg '{"n":1}'
	[ "$status" = 0 ]
	[ "$output" = '{"ok":true}' ]
	run "$JOBCTL" submit --id bad lg '"bad"'
	[ "$status" != 0 ]

	[ "$(cat "$MNT/jobs/good/log")" = "stderr of good" ]
	[ "$(hcurl "$H/jobs/good/log")" = "stderr of good" ]
	[ "$(status_log good)" = "stderr of good" ]
	expected=$'stderr of bad\nit went wrong'
	[ "$(cat "$MNT/jobs/bad/log")" = "$expected" ]
	[ "$(hcurl "$H/jobs/bad/log")" = "$expected" ]
	[ "$(status_log bad)" = "$expected" ]
	[ "$(hcurl "$H/jobs/bad" | jq -r .log)" = "$expected" ]
	[ "$(jq -r .log "$MNT/jobs/bad/info")" = "$expected" ]
	[ "$(job_status '"bad"')" = failed ]
	# the dashboard shows it with the job's detail
	hcurl "$H/" | grep -q 'id="job-log"'
	hcurl "$H/" | grep -q 'info.log'
	[ "$(hcurl -o /dev/null -w '%{content_type}' "$H/jobs/good/log")" = "text/plain; charset=utf-8" ]
	other_clients_ok
}

@test "a job whose command prints nothing, or whose worker sends no log, has none and still works" {
	start_logs
	bg "$JOBCTL" work quiet -- cat
	run "$JOBCTL" submit --id q1 quiet '{"q":1}'
	[ "$output" = '{"q":1}' ]
	[ "$(status_log q1)" = none ]
	[ "$(cat "$MNT/jobs/q1/log")" = "" ]
	[ "$(hcurl -w ' %{http_code}' "$H/jobs/q1/log")" = " 200" ]
	# a plain Gloom worker: no "log" in its response
	"$GLOOM" worker plain --count 1 >/dev/null &
	wpid=$!
	run "$JOBCTL" submit --id p1 plain '{"p":1}'
	[ "$output" = '{"p":1}' ]
	wait "$wpid"
	[ "$(status_log p1)" = none ]
	[ "$(cat "$MNT/jobs/p1/progress")" = "" ]
	other_clients_ok
}

@test "a command printing 1 MiB to stderr leaves the last 64 KiB as its log" {
	start_logs
	# 16384 lines of 64 bytes: the last 64 KiB are the last 1024 lines
	bg "$JOBCTL" work big -- sh -c 'seq -f "%063g" 1 16384 >&2; echo 1'
	run "$JOBCTL" submit --id loud big '{}'
	[ "$output" = 1 ]
	[ "$(wc -c <"$MNT/jobs/loud/log")" = 65536 ]
	[ "$(head -n 1 "$MNT/jobs/loud/log")" = "$(printf '%063d' 15361)" ]
	[ "$(tail -n 1 "$MNT/jobs/loud/log")" = "$(printf '%063d' 16384)" ]
	[ "$(hcurl "$H/jobs/loud/log" | wc -c)" = 65536 ]
	cmp <(hcurl "$H/jobs/loud/log") "$MNT/jobs/loud/log"
	[ "$(status_log loud | head -n 1)" = "$(printf '%063d' 15361)" ]
	other_clients_ok
}

@test "the daemon cuts a longer log to its last 64 KiB, at a character" {
	start_logs
	join_worker W raw
	conn_open M
	send M '{"type":"job","job_type":"raw","id":"long","body":1}'
	wait_jobs W 1
	# 70000 bytes: "é" (2 bytes) then 69998 "x"; the cut falls in the "x"s
	long=$(python3 -c 'print("é" + "x" * 69998, end="")')
	send W "{\"type\":\"response\",\"body\":1,\"log\":\"$long\"}"
	wait_until 10 status_is '"long"' done
	[ "$(wc -c <"$MNT/jobs/long/log")" = 65536 ]
	# a cut inside a character starts the log at the next one
	send M '{"type":"job","job_type":"raw","id":"cut","body":2}'
	wait_jobs W 2
	# 23334 "€" (3 bytes each): 65536 bytes back is the last byte of one
	long=$(python3 -c 'print("€" * 23334, end="")')
	send W "{\"type\":\"response\",\"body\":2,\"log\":\"$long\"}"
	wait_until 10 status_is '"cut"' done
	[ "$(wc -c <"$MNT/jobs/cut/log")" = 65535 ]
	[ "$(head -c 3 "$MNT/jobs/cut/log")" = "€" ]
	[ "$(status_log cut | head -c 3)" = "€" ]
	other_clients_ok
}

@test "a job's log survives kill -9 and a clean restart with --data" {
	start_logs
	bg "$JOBCTL" work --fail lg -- sh -c "$LOGGER"
	run "$JOBCTL" submit --detach --id kept lg '{"n":2}'
	[ "$status" = 0 ]
	run "$JOBCTL" submit --detach --id dead lg '"bad"'
	[ "$status" != 0 ]
	kill "${BG_PIDS[@]}"
	crash_daemon
	start_logs
	[ "$(cat "$MNT/jobs/kept/log")" = "stderr of kept" ]
	[ "$(hcurl "$H/jobs/dead/log")" = $'stderr of dead\nit went wrong' ]
	[ "$(status_log dead)" = $'stderr of dead\nit went wrong' ]
	stop_daemon
	fusermount3 -u -z "$MNT" 2>/dev/null || true
	start_logs
	[ "$(status_log kept)" = "stderr of kept" ]
	[ "$(cat "$MNT/jobs/dead/log")" = $'stderr of dead\nit went wrong' ]
	other_clients_ok
}

@test "--progress lines reach a streaming master, jobs/ID/progress and /events while the job runs" {
	start_logs
	GO=$BATS_TEST_TMPDIR/go
	hcurl -N --max-time 60 "$H/events?jobs=all" >"$BATS_TEST_TMPDIR/events" &
	BG_PIDS+=("$!")
	wait_until 10 grep -q '^event: stats' "$BATS_TEST_TMPDIR/events"
	bg "$JOBCTL" work --progress pr -- sh -c '
		echo "{\"pct\":50}" >&"$JOBFS_PROGRESS_FD"
		echo "half way" >&3
		while [ ! -e "'"$GO"'" ]; do sleep 0.05; done
		echo "\"finished\""'
	"$JOBCTL" submit --stream --id prog pr '{}' >"$BATS_TEST_TMPDIR/master" &
	BG_PIDS+=("$!")
	master=$!
	# live: both lines before the job ends
	wait_until 15 file_has_lines "$BATS_TEST_TMPDIR/master" 2
	[ "$(cat "$BATS_TEST_TMPDIR/master")" = $'{"pct":50}\n"half way"' ]
	[ "$(timeout 10 head -n 2 "$MNT/jobs/prog/progress")" = $'{"pct":50}\n"half way"' ]
	wait_until 10 grep -q '"id":"prog".*"body":"half way"' "$BATS_TEST_TMPDIR/events"
	grep -q '^event: partial' "$BATS_TEST_TMPDIR/events"
	[ "$(job_status '"prog"')" = running ]
	touch "$GO"
	wait "$master"
	[ "$(cat "$BATS_TEST_TMPDIR/master")" = $'{"pct":50}\n"half way"\n"finished"' ]
	# once the job has ended, progress is its partials then EOF
	[ "$(timeout 10 cat "$MNT/jobs/prog/progress")" = $'{"pct":50}\n"half way"' ]
	[ "$(timeout 10 cat "$MNT/jobs/prog/response")" = $'{"pct":50}\n"half way"\n"finished"' ]
	other_clients_ok
}
