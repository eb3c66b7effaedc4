#!/usr/bin/env bats
# web_durable.bats — with --data, the web face answers a submission (201)
# and shows a result only once the store has made it durable, as the TCP
# face and the tree hold their acknowledgements.  The journal's fdatasync
# is held back by an LD_PRELOAD (helpers/slow_fsync.c) while a gate file
# exists.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/durable'

setup() {
	GATE=$BATS_TEST_TMPDIR/gate
	cc -shared -fPIC -o "$BATS_TEST_TMPDIR/slow_fsync.so" \
		"$BATS_TEST_DIRNAME/helpers/slow_fsync.c" -ldl
	# Only the daemon gets the preload (through a wrapper that execs it).
	cat >"$BATS_TEST_TMPDIR/jobfs" <<-WRAP
	#!/bin/sh
	export SLOW_FSYNC_GATE='$GATE' LD_PRELOAD='$BATS_TEST_TMPDIR/slow_fsync.so'
	export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
	exec '$JOBFS' "\$@"
	WRAP
	chmod +x "$BATS_TEST_TMPDIR/jobfs"
	JOBFS=$BATS_TEST_TMPDIR/jobfs
	start_web --data "$DATA" --sync always
	wait_until 30 grep -q 'journal: .* replayed in' "$DAEMON_LOG"
}

teardown() {
	rm -f "$GATE"  # else the daemon's last sync would wait forever
	daemon_teardown
}

@test "a 201 waits until the submission is durable" {
	touch "$GATE"
	hcurl -w ' %{http_code}' --json '{"d":1}' "$H/types/d/jobs?id=d1" >"$BATS_TEST_TMPDIR/out" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .submitted 1
	wait_until 10 http_stat_is .http.waiting 1
	# Submitted, appended, not yet synced: no answer yet.
	[ ! -s "$BATS_TEST_TMPDIR/out" ]
	rm "$GATE"
	wait_until 10 test -s "$BATS_TEST_TMPDIR/out"
	[ "$(cat "$BATS_TEST_TMPDIR/out")" = $'{"id":"d1"}\n 201' ]
	other_clients_ok
}

@test "a result is shown only once durable" {
	hcurl --json '{"d":2}' "$H/types/d/jobs?id=d2" >/dev/null
	hcurl -w ' %{http_code}' "$H/jobs/d2/response" >"$BATS_TEST_TMPDIR/out" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.waiting 1
	touch "$GATE"
	bg "$JOBCTL" work d -- cat
	wait_until 10 http_job_is d2 done
	[ ! -s "$BATS_TEST_TMPDIR/out" ]
	[ "$(http_stat .http.waiting)" = 1 ]
	rm "$GATE"
	wait_until 10 test -s "$BATS_TEST_TMPDIR/out"
	[ "$(cat "$BATS_TEST_TMPDIR/out")" = $'{"d":2}\n 200' ]
	other_clients_ok
}
