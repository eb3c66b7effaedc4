#!/usr/bin/env bats
# jobctl_script.bats — jobctl as a script drives it (jobctl(1)): submit
# --no-wait prints the id once the daemon has the job and exits; -v says
# the id on stderr; a job's ending is its exit status (done 0, failed 5,
# cancelled 6, timed out 7, dead 8) and a failure prints its last error;
# status answers for every job; wait follows several jobs.  And workers
# are listed by name (their join's, or their token's under --auth) with
# their address beside, in the tree and over REST.

bats_require_minimum_version 1.5.0

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/web'
load 'helpers/fs'
load 'helpers/auth'

# failing: a command that reads its body, prints 15 lines on stderr and
# exits 4.
FAILING='cat >/dev/null; echo out; i=1; while [ $i -le 15 ]; do echo "err $i" >&2; i=$((i + 1)); done; exit 4'

@test "submit --no-wait prints the id once the daemon has the job, and exits 0; -v prints the id on stderr" {
	start_daemon
	run --separate-stderr timeout 20 "$JOBCTL" submit --no-wait --id n1 t '"x"'
	[ "$status" = 0 ]
	[ "$output" = n1 ]
	[ "$stderr" = "" ]
	# Detached and taken: queued after jobctl has gone.
	[ "$(job_status '"n1"')" = queued ]
	# A delayed job does not hold it either (the delay is longer than the
	# bound on jobctl); an id made up by jobctl is printed.
	run --separate-stderr timeout 20 "$JOBCTL" submit --no-wait --delay 600000 t '"later"'
	[ "$status" = 0 ]
	[ -n "$output" ]
	[ "$(job_status "\"$output\"")" = delayed ]
	# A job the daemon refuses: exit 1, no id.
	run --separate-stderr timeout 20 "$JOBCTL" submit --no-wait --id n1 t '"again"'
	[ "$status" = 1 ]
	[ "$output" = "" ]
	[[ $stderr == *id_exists* ]]
	# --no-wait and --stream do not go together.
	run --separate-stderr timeout 20 "$JOBCTL" submit --no-wait --stream t 1
	[ "$status" = 2 ]
	# A worker runs the queued job; wait gets its result.
	bg "$JOBCTL" work t -- cat
	run --separate-stderr timeout 20 "$JOBCTL" wait n1
	[ "$status" = 0 ]
	[ "$output" = '"x"' ]
	# -v: the id on stderr, the result on stdout.
	run --separate-stderr timeout 20 "$JOBCTL" submit -v --id v1 t '"y"'
	[ "$status" = 0 ]
	[ "$output" = '"y"' ]
	[ "$stderr" = v1 ]
	assert_daemon_healthy
}

@test "a job's ending is the exit status of submit and wait: failed 5 and dead 8 with the last error, timed out 7, cancelled 6" {
	start_daemon
	bg "$JOBCTL" work --fail f -- sh -c "$FAILING"
	# Failed, no retries: the last error and the tail of its stderr, the
	# last 10 lines (the frame has no last_error for a master that used no
	# lifecycle option: jobctl asks the job's status for it).
	run --separate-stderr timeout 20 "$JOBCTL" submit --id f1 f 1
	[ "$status" = 5 ]
	[ "$output" = "" ]
	[ "$(sed -n 1p <<<"$stderr")" = 'jobctl: job_failed: f1' ]
	[ "$(sed -n 2p <<<"$stderr")" = 'jobctl: job f1 failed after 1 attempt: command failed, exit status 4' ]
	[ "$(sed -n '3,$p' <<<"$stderr")" = "$(seq -f 'jobctl: stderr: err %g' 6 15)" ]
	# Dead: failed after its retries.
	run --separate-stderr timeout 20 "$JOBCTL" submit --id d1 --retries 1 --backoff 10 f 1
	[ "$status" = 8 ]
	[ "$(sed -n 2p <<<"$stderr")" = 'jobctl: job d1 dead after 2 attempts: command failed, exit status 4' ]
	[ "$(sed -n '$p' <<<"$stderr")" = 'jobctl: stderr: err 15' ]
	# Timed out (no worker takes type none).
	run --separate-stderr timeout 20 "$JOBCTL" submit --id t1 --timeout 100 none 1
	[ "$status" = 7 ]
	[ "$stderr" = 'jobctl: timeout: t1' ]
	# Cancelled under its submitter.
	"$JOBCTL" submit --id c1 none 1 2>"$BATS_TEST_TMPDIR/c1.err" &
	local pid=$! rc=0
	wait_until 10 status_is '"c1"' queued
	"$JOBCTL" cancel c1 >/dev/null
	wait "$pid" || rc=$?
	[ "$rc" = 6 ]
	[ "$(cat "$BATS_TEST_TMPDIR/c1.err")" = 'jobctl: cancelled: c1' ]
	# wait says the same of each, once it has ended.
	run --separate-stderr timeout 20 "$JOBCTL" wait f1
	[ "$status" = 5 ]
	[ "$(sed -n 2p <<<"$stderr")" = 'jobctl: job f1 failed after 1 attempt: command failed, exit status 4' ]
	run timeout 20 "$JOBCTL" wait d1
	[ "$status" = 8 ]
	run timeout 20 "$JOBCTL" wait t1
	[ "$status" = 7 ]
	run timeout 20 "$JOBCTL" wait c1
	[ "$status" = 6 ]
	run timeout 20 "$JOBCTL" wait nope
	[ "$status" = 1 ]
	# status answers for every one of them, and exits 0.
	run --separate-stderr timeout 20 "$JOBCTL" status f1
	[ "$status" = 0 ]
	[ "$(jq -c '[.status, .dead, .error.status]' <<<"$output")" = '["failed",true,4]' ]
	run --separate-stderr timeout 20 "$JOBCTL" status d1
	[ "$status" = 0 ]
	[ "$(jq -c '[.status, .retries, .attempts_total]' <<<"$output")" = '["failed",1,2]' ]
	run --separate-stderr timeout 20 "$JOBCTL" status t1
	[ "$status" = 0 ]
	[ "$(jq -r .status <<<"$output")" = timeout ]
	run --separate-stderr timeout 20 "$JOBCTL" status c1
	[ "$status" = 0 ]
	[ "$(jq -r .status <<<"$output")" = cancelled ]
	assert_daemon_healthy
}

@test "wait ID...: each result after its id and a tab, as the jobs end; the exit status is the highest of theirs" {
	start_daemon
	bg "$JOBCTL" work t -- cat
	"$JOBCTL" submit --no-wait --id a t '"A"' >/dev/null
	"$JOBCTL" submit --no-wait --id b later '"B"' >/dev/null
	# b waits for a worker of its type: wait follows both, a repeated id
	# once.
	"$JOBCTL" wait a b a >"$BATS_TEST_TMPDIR/ab.out" 2>&1 &
	local pid=$! rc=0
	wait_until 10 grep -q . "$BATS_TEST_TMPDIR/ab.out"
	[ "$(cat "$BATS_TEST_TMPDIR/ab.out")" = 'a	"A"' ]
	bg "$JOBCTL" work later -- cat
	wait "$pid" || rc=$?
	[ "$rc" = 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/ab.out")" = 'a	"A"
b	"B"' ]
	# A failed job among them: 5; an unknown id beside a done job: 1;
	# the highest wins whatever the order.
	bg "$JOBCTL" work --fail f -- sh -c "$FAILING"
	run timeout 20 "$JOBCTL" submit --id f1 f 1
	[ "$status" = 5 ]
	run --separate-stderr timeout 20 "$JOBCTL" wait f1 a nope
	[ "$status" = 5 ]
	[ "$output" = 'a	"A"' ]
	[[ $stderr == *'jobctl: unknown_id: '* ]]
	[[ $stderr == *'jobctl: job f1 failed after 1 attempt: command failed, exit status 4'* ]]
	run timeout 20 "$JOBCTL" wait nope a
	[ "$status" = 1 ]
	assert_daemon_healthy
}

# worker_line FILE NAME: FILE lists a worker NAME with an address beside.
worker_line() {
	grep -Eqx "$2 127\\.0\\.0\\.1:[0-9]+ (idle|busy.*)" "$1"
}

@test "workers are listed by their join's name with their address beside, in the tree and over REST" {
	require_fuse
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	start_web "$MNT"
	wait_until 10 test -e "$MNT/README"
	bg "$JOBCTL" work --name gpu1 nm -- cat
	bg "$JOBCTL" work nm -- cat
	wait_until 10 stat_is .types.nm.workers 2
	wait_until 10 worker_line "$MNT/types/nm/workers" gpu1
	# A worker that gives no name is known by its address.
	grep -Eqx '(127\.0\.0\.1:[0-9]+) \1 idle' "$MNT/types/nm/workers"
	[ "$(grep -c '' "$MNT/types/nm/workers")" = 2 ]
	hcurl "$H/types/nm" >"$BATS_TEST_TMPDIR/nm.json"
	[ "$(jq -c '[.worker_list[] | .name] | sort' "$BATS_TEST_TMPDIR/nm.json")" = "$(jq -c '[.worker_list[] | select(.name != "gpu1") | .addr] + ["gpu1"] | sort' "$BATS_TEST_TMPDIR/nm.json")" ]
	jq -e '[.worker_list[] | .addr | test("^127\\.0\\.0\\.1:[0-9]+$")] == [true, true]' "$BATS_TEST_TMPDIR/nm.json"
	# The job's worker is named so too.
	[ "$(timeout 20 "$JOBCTL" submit --worker gpu1 --id j1 nm '"hi"')" = '"hi"' ]
	[ "$(jq -r .worker "$MNT/jobs/j1/info")" = gpu1 ]
	assert_daemon_healthy
}

@test "under --auth a worker is listed by its token's name (or its join's), with its address beside, in the tree and over REST" {
	require_fuse
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	HTTP_PORT=$(random_port)
	start_auth_daemon --http "127.0.0.1:$HTTP_PORT" "$MNT"
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
	wait_until 10 test -e "$MNT/README"
	as wk bg "$JOBCTL" work na -- cat
	as wk bg "$JOBCTL" work --name gpu2 na -- cat
	wait_until 10 as root stat_is .types.na.workers 2
	wait_until 10 worker_line "$MNT/types/na/workers" wk
	worker_line "$MNT/types/na/workers" gpu2
	[ "$(grep -c '' "$MNT/types/na/workers")" = 2 ]
	hcurl -H "Authorization: Bearer $TOK_ROOT" "$H/types/na" >"$BATS_TEST_TMPDIR/na.json"
	[ "$(jq -c '[.worker_list[] | .name] | sort' "$BATS_TEST_TMPDIR/na.json")" = '["gpu2","wk"]' ]
	jq -e '[.worker_list[] | .addr | test("^127\\.0\\.0\\.1:[0-9]+$")] == [true, true]' "$BATS_TEST_TMPDIR/na.json"
	# A job run by the token's worker names it.
	[ "$(as alice timeout 20 "$JOBCTL" submit --worker wk --id j2 na '"hi"')" = '"hi"' ]
	[ "$(jq -r .worker "$MNT/jobs/j2/info")" = wk ]
	auth_healthy
}
