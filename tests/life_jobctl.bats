#!/usr/bin/env bats
# life_jobctl.bats — the job lifecycle from jobctl: work --fail
# reports a failing command as a failure (so retries and the dead set
# apply); submit --retries/--backoff/--delay/--at/--after; kick, pause,
# resume, configure.

bats_require_minimum_version 1.5.0

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "work --fail: a failing command is a failed attempt, retried, then dead with its exit status and output" {
	bg "$JOBCTL" work --fail t -- sh -c 'cat >/dev/null; echo out; echo err >&2; exit 4'
	run --separate-stderr timeout 20 "$JOBCTL" submit --id f1 --retries 1 --backoff 10 t '{"x":1}'
	[ "$status" = 8 ]
	[ "$(sed -n 2p <<<"$stderr")" = 'jobctl: job f1 dead after 2 attempts: command failed, exit status 4' ]
	[ "$(sed -n 3p <<<"$stderr")" = 'jobctl: stderr: err' ]
	info=$(status_json '"f1"')
	[ "$(jq -c '[.status, (.attempts | length), .dead]' <<<"$info")" = '["failed",2,true]' ]
	same_json "$(jq -c .error <<<"$info")" '{"error":"command failed","status":4,"stdout":"out\n","stderr":"err\n"}'
	[ "$(daemon_stat .retried)" = 1 ]
	# jobctl status shows a dead job's info, its own error among it, and
	# exits 0: the job's error is not the daemon refusing the question.
	run --separate-stderr "$JOBCTL" status f1
	[ "$status" = 0 ]
	[ "$(jq -c '[.status, (.attempts | length), .error.status]' <<<"$output")" = '["failed",2,4]' ]
	# Kicked, it fails again (the command still fails), and is dead again.
	run timeout 20 "$JOBCTL" kick f1
	[ "$status" = 0 ]
	[ "$output" = '{"kicked":1,"id":"f1"}' ]
	wait_until 10 stat_is .kicked 1
	wait_until 10 status_is '"f1"' failed
	assert_daemon_healthy
}

@test "work without --fail answers a failing command with a result, as before" {
	bg "$JOBCTL" work t -- sh -c 'cat >/dev/null; exit 2'
	run --separate-stderr timeout 20 "$JOBCTL" submit t 1
	[ "$(jq -c '[.error,.status]' <<<"$output")" = '["command failed",2]' ]
	[ "$(daemon_stat .dead)" = 0 ]
}

@test "submit --delay, --after, --at; pause, resume and configure" {
	"$JOBCTL" pause t | jq -e '.paused == true'
	"$JOBCTL" configure --limit 1 --retries 2 --backoff 30 t | jq -c '[.limit,.retries,.backoff]' | grep -qx '\[1,2,30\]'
	"$JOBCTL" submit --detach --id a t '"a"' >"$BATS_TEST_TMPDIR/a.out" &
	wait_until 10 status_is '"a"' queued
	"$JOBCTL" submit --detach --id b --after a --delay 50 t '"b"' >"$BATS_TEST_TMPDIR/b.out" &
	wait_until 10 status_is '"b"' waiting
	"$JOBCTL" submit --detach --id c --at 1 t '"c"' >"$BATS_TEST_TMPDIR/c.out" &
	wait_until 10 status_is '"c"' queued
	bg "$JOBCTL" work t -- cat
	[ "$(job_status '"a"')" = queued ]
	"$JOBCTL" resume t | jq -e '.paused == false'
	wait_until 20 status_is '"b"' done
	[ "$(job_status '"a"')" = done ]
	[ "$(job_status '"c"')" = done ]
	run "$JOBCTL" submit --retries -1 t 1
	[ "$status" != 0 ]
	[[ $stderr$output == *"0 to 100"* ]]
	run "$JOBCTL" submit --after nope t 1
	[ "$status" != 0 ]
	run "$JOBCTL" kick --type t
	[ "$output" = '{"kicked":0,"job_type":"t"}' ]
	assert_daemon_healthy
}

@test "mount.jobfs passes dead_keep and dead_max through as --dead-keep and --dead-max" {
	run "$JOBFS_BIN/mount.jobfs" -f src /m -o dead_keep=60,dead_max=7
	[ "$status" = 0 ]
	[ "$output" = "mount.jobfs: jobfs --dead-keep 60 --dead-max 7 -o fsname=src /m" ]
	run "$JOBFS" --dead-max -1
	[ "$status" = 1 ]
	[[ $output == *"--dead-max"* ]]
}
