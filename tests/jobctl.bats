#!/usr/bin/env bats
# jobctl.bats — the client's basics against a real daemon: submit, work and
# raw (jobctl(1)).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

bats_require_minimum_version 1.5.0

setup() {
	start_daemon
}

@test "jobctl submit prints the result and exits 0" {
	bg "$JOBCTL" work echo -- cat
	run --separate-stderr timeout 20 "$JOBCTL" submit echo '{"n":1,"list":[true,null,"x"]}'
	[ "$status" = 0 ]
	[ "$output" = '{"n":1,"list":[true,null,"x"]}' ]
	[ "$stderr" = "" ]
	# Any JSON body, and a body from standard input.
	run timeout 20 "$JOBCTL" submit echo '"just a string"'
	[ "$status" = 0 ]
	[ "$output" = '"just a string"' ]
	run timeout 20 "$JOBCTL" submit echo - <<<'[1, 2, 3]'
	[ "$status" = 0 ]
	[ "$output" = '[1,2,3]' ]
}

@test "jobctl submit sends its id and priority as given" {
	conn_open M
	send M '{"type":"job","job_type":"opt","id":"first","body":0}'
	settle M
	bg "$JOBCTL" submit --id low --priority -1 opt '"low"'
	bg "$JOBCTL" submit --id high --priority 5 opt '"high"'
	wait_until 10 stat_is .types.opt.queued 3
	join_worker W opt
	serve W 3
	[ "$(jobs_of W)" = '{"type":"job","id":"high","body":"high"}
{"type":"job","id":"first","body":0}
{"type":"job","id":"low","body":"low"}' ]
}

@test "jobctl submit exits 1 on id_exists and says so" {
	conn_open M
	send M '{"type":"job","job_type":"taken","id":"mine","body":1}'
	settle M
	run --separate-stderr timeout 20 "$JOBCTL" submit --id mine taken '"again"'
	[ "$status" = 1 ]
	[ "$output" = "" ]
	[[ $stderr == *id_exists* ]]
	# The first job is untouched.
	join_worker W taken
	[ "$(jobs_of W)" = '{"type":"job","id":"mine","body":1}' ]
}

@test "jobctl submit exits 5 when the job fails" {
	bg timeout 30 "$JOBCTL" submit --id doomed lose '"x"' 2>"$BATS_TEST_TMPDIR/err"
	wait_until 10 stat_is .types.lose.queued 1
	local i
	for i in 1 2 3 4; do
		join_worker "W$i" lose
		wait_jobs "W$i" 1
		conn_kill "W$i"
	done
	local rc=0
	wait "${BG_PIDS[0]}" || rc=$?
	[ "$rc" = 5 ]
	[ "$(sed -n 1p "$BATS_TEST_TMPDIR/err")" = 'jobctl: job_failed: doomed' ]
	[ "$(sed -n 2p "$BATS_TEST_TMPDIR/err")" = 'jobctl: job doomed failed: no error reported (its worker was lost 4 times)' ]
}

@test "jobctl submit refuses a body that is not JSON" {
	run --separate-stderr timeout 20 "$JOBCTL" submit t '{not json'
	[ "$status" = 2 ]
	[ "$output" = "" ]
	[ "$(daemon_stat .submitted)" = 0 ]
}

@test "jobctl work runs the command with the body on stdin and returns its output" {
	bg "$JOBCTL" work calc -- jq -c '{sum: (.a + .b), id: env.JOBFS_JOB_ID, type: env.JOBFS_JOB_TYPE}'
	run timeout 20 "$JOBCTL" submit --id sum1 calc '{"a":2,"b":40}'
	[ "$status" = 0 ]
	same_json "$output" '{"sum":42,"id":"sum1","type":"calc"}'
	# Output that is not JSON is a string, less its trailing newline.
	bg "$JOBCTL" work text -- sh -c 'echo "plain text"'
	run timeout 20 "$JOBCTL" submit text null
	[ "$status" = 0 ]
	[ "$output" = '"plain text"' ]
}

@test "jobctl work reports a failing command in the result" {
	bg "$JOBCTL" work fail -- sh -c 'cat >/dev/null; echo partial output; echo oops >&2; exit 3'
	run --separate-stderr timeout 20 "$JOBCTL" submit fail '{"x":1}'
	[ "$status" = 0 ]
	same_json "$output" '{"error":"command failed","status":3,"stdout":"partial output\n","stderr":"oops\n"}'
	bg "$JOBCTL" work killed -- sh -c 'kill -9 $$'
	run timeout 20 "$JOBCTL" submit killed 1
	[ "$status" = 0 ]
	[ "$(jq -c '[.error, .signal]' <<<"$output")" = '["command failed",9]' ]
	# The worker goes on after a failure.
	run timeout 20 "$JOBCTL" submit fail 2
	[ "$status" = 0 ]
	[ "$(jq -r .error <<<"$output")" = "command failed" ]
}

@test "jobctl raw sends lines as frames and prints frames as lines" {
	conn_open W --worker
	send W '{"type":"join","job_type":"rawt"}'
	settle W
	# Empty line: a zero-length frame.  Spaces are sent as they are.
	run "$JOBCTL" raw -n 3 -t 500 <<'EOF'
{"type":"ping"}

{ "type" : "job", "job_type" : "rawt", "id" : "r", "body" : { "k" : [ 1 ] } }
EOF
	[ "$status" = 4 ]
	[ "${#lines[@]}" = 2 ]
	[ "${lines[0]}" = "$PONG" ]
	is_error "${lines[1]}" invalid_json
	wait_jobs W 1
	[ "$(jobs_of W)" = '{"type":"job","id":"r","body":{"k":[1]}}' ]
	# A worker answers through raw too; the result is printed as one line.
	conn_open M
	send M '{"type":"job","job_type":"rawt","id":"r2","body":2}'
	respond W '"one"'
	wait_jobs W 2
	respond W '"two"'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"r2","body":"two"}' ]
}

@test "jobctl raw exits 3 when the daemon closes before -n frames" {
	stop_daemon
	start_daemon --max-frame 64
	run "$JOBCTL" raw -n 5 -t 10000 <<<"{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"x\",\"body\":\"$(printf 'x%.0s' $(seq 100))\"}"
	[ "$status" = 3 ]
	is_error "$output" frame_too_large
}

@test "jobctl raw exits 4 when -t runs out before -n frames, 0 without -n" {
	run "$JOBCTL" raw -n 2 -t 300 <<<'{"type":"ping"}'
	[ "$status" = 4 ]
	[ "$output" = "$PONG" ]
	run "$JOBCTL" raw -t 300 <<<'{"type":"ping"}'
	[ "$status" = 0 ]
	[ "$output" = "$PONG" ]
}
